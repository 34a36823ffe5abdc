// SPDX-License-Identifier: BSD-3-Clause
// GET /hub/api/users/:name/server/progress: a start's steps as Server-Sent
// Events, in JupyterHub 3.0's format (contract §3.2).
#pragma once

#include <string>

#include "app/hub.h"
#include "http/server.h"

namespace hubd {

// Answers the request for `user`'s default server (scopes already checked):
// the ready event at once if it is running, the failed event if its last
// start failed, 400 if it is not starting, else a stream that follows the
// start to its end.
void streamServerProgress(Hub& hub, const hub::UserRecord& user, hubd::http::Responder responder);

}  // namespace hubd
