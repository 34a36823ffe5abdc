// SPDX-License-Identifier: BSD-3-Clause
// One REST API call (who asks, how to answer it) and what every route file
// shares: JupyterHub 3.0's scope check, JSON bodies, pagination, and the
// rule that nobody hands out scopes they do not hold.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app/hub.h"
#include "app/json.h"

namespace hubd {

struct ApiCall {
    hubd::http::Request& request;  // only until the first asynchronous step: see http/server.h
    hubd::http::Responder responder;
    Principal principal;
    std::string source;  // the client's address (clientView), kept for audit lines

    void send(hubd::http::Response r) { responder.send(std::move(r)); }
    void error(int status, std::string_view message) { send(jsonError(status, message)); }
    void json(int status, std::string body) { send(jsonResponse(status, std::move(body))); }
    void noContent() { send(jsonResponse(204, {})); }

    // needs_scope: true if any of anyOf applies to resource; otherwise
    // answers 403 (none held) or 404 (held, filtered out) and returns false.
    bool require(const std::vector<std::string>& anyOf, const Resource& resource);
    // The request body as JSON (null when empty); answers 400 and returns
    // nullopt when it is not JSON.
    std::optional<Json> body();
};

std::string scopeList(const std::vector<std::string>& scopes);
std::optional<int64_t> parseNonNegative(std::string_view s);

// offset/limit as 3.0's get_api_pagination: with the pagination Accept
// header the default page is api_page_default_limit, else the maximum.
struct Page {
    bool paginated = false;
    int64_t offset = 0;
    int64_t limit = 0;
};
// Answers 400 and returns nullopt for a malformed offset or limit.
std::optional<Page> parsePage(ApiCall& call, const hub::Settings& settings);
// Opens the paginated wrapper ({"items": [) or a bare list.
void beginPage(JsonWriter& w, const Page& page);
// Closes it with 3.0's "_pagination": {offset, limit, total, next}.
void endPage(JsonWriter& w, const Page& page, int64_t total, const Hub& hub,
             const hubd::http::Request& request);

// Scopes that `roles` would give user `userName` and the requester does not
// hold, rendered. Empty: granting them raises nobody above the requester.
// The built-in admin role is decided by isFullAdmin instead (CVE-2024-41942).
std::vector<std::string> scopesBeyondRequester(const Hub& hub, const Principal& requester,
                                               const std::vector<std::string>& roles,
                                               const std::string& userName);

// Route files (api_groups.cpp, api_services.cpp, api_shutdown.cpp); `seg`
// is the path split at '/', seg[0] naming the collection.
void handleGroupsApi(Hub& hub, ApiCall& call, const std::vector<std::string_view>& seg);
void handleServicesApi(Hub& hub, ApiCall& call, const std::vector<std::string_view>& seg);
void handleShutdownApi(Hub& hub, ApiCall& call);

}  // namespace hubd
