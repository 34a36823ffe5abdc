// SPDX-License-Identifier: BSD-3-Clause
// Running the commands `hubd check` needs (sudo, semodule, the single-user
// interpreter): fork and execve of an argv array, never a shell, stdin from
// /dev/null, a small fixed environment (LC_ALL=C, so sudo's messages can be
// matched), output captured and bounded, killed after a timeout.
#pragma once

#include <string>
#include <vector>

namespace hubd::check {

struct CommandResult {
    bool started = false;  // false: execve failed (out holds why)
    bool timedOut = false;
    int exitCode = -1;     // -1 when killed by a signal or not started
    std::string out, err;  // at most 256 KiB each
};

CommandResult runCommand(const std::vector<std::string>& argv, int timeoutMs = 15000);

// "sudo -n -u zoe /usr/local/bin/sudospawner --check" for messages.
std::string joinArgv(const std::vector<std::string>& argv);

}  // namespace hubd::check
