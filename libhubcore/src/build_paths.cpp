// SPDX-License-Identifier: BSD-3-Clause
// The only file compiled with the install paths (libhubcore/meson.build), so
// changing them rebuilds one file, not everything that includes config.h.
#include "hubcore/build_paths.h"

#ifndef HUBD_SUDOSPAWNER_PATH
#error "HUBD_SUDOSPAWNER_PATH comes from meson.build (sudospawner_path)"
#endif
#ifndef HUBD_SUDOSPAWNER_POLICY
#error "HUBD_SUDOSPAWNER_POLICY comes from meson.build (sudospawner_policy)"
#endif

namespace hub {

const char* const kSudospawnerPath = HUBD_SUDOSPAWNER_PATH;
const char* const kSudospawnerPolicy = HUBD_SUDOSPAWNER_POLICY;

}  // namespace hub
