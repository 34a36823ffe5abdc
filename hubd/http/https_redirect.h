// SPDX-License-Identifier: BSD-3-Clause
// The handler of the optional plain-HTTP listener (JupyterHub.redirect_http_port):
// every request is redirected to the same host and path over https.
#pragma once

#include <cstdint>

#include "http/server.h"

namespace hubd::http {

// 301 for GET and HEAD, 308 (method and body kept) for anything else, to
// https://<Host without port>[:httpsPort]<path>?<query>. A request without a
// usable Host header gets a 400 that says what the port is for.
Handler httpsRedirectHandler(uint16_t httpsPort);

}  // namespace hubd::http
