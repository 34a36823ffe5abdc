// SPDX-License-Identifier: BSD-3-Clause
// `hubd sudoers`: prints a sudoers drop-in for the installed helper path.
#pragma once

namespace hubd {

// argv after "sudoers". Returns the process exit status.
int sudoersCommand(int argc, char** argv);

}  // namespace hubd
