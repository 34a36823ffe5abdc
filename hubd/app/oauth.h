// SPDX-License-Identifier: BSD-3-Clause
// The OAuth2 provider single-user servers use (authorization-code grant),
// as JupyterHub 3.0 implements it: <base_url>hub/api/oauth2/{authorize,token}.
//
// MUST: a code is issued only to the logged-in user, only for a registered
// client, only to its exact registered redirect_uri; codes and tokens are
// stored hashed; a code works once, within 5 minutes, for its client only.
#pragma once

#include <string_view>

#include "app/hub.h"

namespace hubd {

// `path` is what follows "/oauth2", e.g. "/authorize".
void handleOAuth(Hub& hub, std::string_view path, hubd::http::Request& request,
                 hubd::http::Responder responder);

}  // namespace hubd
