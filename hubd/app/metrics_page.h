// SPDX-License-Identifier: BSD-3-Clause
// GET /hub/metrics and /hub/api/metrics (JupyterHub 3.0's MetricsHandler)
// and the hook that times the hub's own requests (app/metrics.h holds the
// store and the text format).
//
// MUST: with JupyterHub.authenticate_prometheus (the default) the page is
// served only to a token or login cookie holding `read:metrics` (admins
// hold it; a service gets it through a role); anyone else gets 403.
#pragma once

#include <string>
#include <string_view>

#include "app/hub.h"

namespace hubd {

struct ApiCall;

// Times `request` from now until its response (or a stream's head) goes
// out, under the handler label of its route. Called first in Hub::handle.
// Proxied requests never get here (Hub::handleHead takes them): the proxy
// has its own counters (hubd_proxy_*).
void timeHubRequest(const Hub& hub, const hubd::http::Request& request, hubd::http::Responder& responder);

// The whole page: every family, in a fixed order.
std::string renderMetrics(Hub& hub);

// /hub/metrics: a token in the Authorization header or the login cookie.
void serveMetricsPage(Hub& hub, hubd::http::Request& request, hubd::http::Responder responder);
// /hub/api/metrics: the API's authentication (a cookie needs its XSRF token).
void handleMetricsApi(Hub& hub, ApiCall& call);

}  // namespace hubd
