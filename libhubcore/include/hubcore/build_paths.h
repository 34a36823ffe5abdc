// SPDX-License-Identifier: BSD-3-Clause
// Where `meson install` puts the sudospawner helper and its policy. The values
// are set in one place, the top-level meson.build, which also installs the
// helper there and writes the same paths into the sudoers example, the man
// pages and the systemd unit: so hubd's defaults can never name another path
// than the one the helper is installed at.
#pragma once

namespace hub {

// Absolute path of the helper; the default of SudoSpawner.sudospawner_path
// and of `hubd sudoers --helper`.
extern const char* const kSudospawnerPath;
// Absolute path of the root-owned helper policy compiled into sudospawner.
extern const char* const kSudospawnerPolicy;

}  // namespace hub
