// SPDX-License-Identifier: BSD-3-Clause
// Reads the command of a JupyterHub.services entry that runs
// jupyterhub-idle-culler (`python3 -m jupyterhub_idle_culler --timeout=3600`),
// so that hubd, which launches no services, can run its built-in culler with
// the same flags instead (docs/config.md, "Idle culling").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "hubcore/config.h"

namespace hub {

struct IdleCullerCommand {
    // The flags in IdleCuller terms, with the culler's own defaults for the
    // flags not given (--timeout 600, --cull-admin-users true).
    IdleCullerSettings settings;
    std::vector<std::string> ignored;   // flags without a built-in meaning, as written
    std::vector<std::string> problems;  // sentences: values the culler itself would refuse
};

// nullopt when `command` does not run jupyterhub_idle_culler. A word may hold
// several space-separated words ("python3 -m jupyterhub_idle_culler
// --timeout=3600" as one string). Flags follow tornado's options parser, as
// the culler does: --name=value, '-' or '_' alike, a bool flag alone is true.
std::optional<IdleCullerCommand> readIdleCullerCommand(const std::vector<std::string>& command);

}  // namespace hub
