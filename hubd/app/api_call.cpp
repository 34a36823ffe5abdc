// SPDX-License-Identifier: BSD-3-Clause
// Helpers shared by the REST API's route files (see api_call.h).
#include "app/api_call.h"

#include <algorithm>
#include <charconv>

namespace hubd {

bool ApiCall::require(const std::vector<std::string>& anyOf, const Resource& resource) {
    switch (checkScopes(principal.scopes, anyOf, resource)) {
        case ScopeVerdict::Allowed:
            return true;
        case ScopeVerdict::FilteredOut:
            error(404, "No access to resources or resources not found");
            return false;
        case ScopeVerdict::Missing:
            error(403, "Action is not authorized with current scopes; requires any of " + scopeList(anyOf));
            return false;
    }
    return false;
}

std::optional<Json> ApiCall::body() {
    if (request.body.empty()) return Json();
    JsonParseError err;
    auto parsed = parseJson(request.body, &err);
    if (!parsed) {
        error(400,
              "Invalid JSON in request body: " + err.message + " at offset " + std::to_string(err.offset));
        return std::nullopt;
    }
    return parsed;
}

std::string scopeList(const std::vector<std::string>& scopes) {
    std::string out = "[";
    for (size_t i = 0; i < scopes.size(); ++i) out += (i ? ", " : "") + scopes[i];
    return out + "]";
}

std::optional<int64_t> parseNonNegative(std::string_view s) {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) return std::nullopt;
    return v;
}

std::optional<Page> parsePage(ApiCall& call, const hub::Settings& settings) {
    Page page;
    page.paginated = call.request.header("Accept").find("application/jupyterhub-pagination+json") !=
                     std::string_view::npos;
    page.limit = page.paginated ? settings.apiPageDefaultLimit : settings.apiPageMaxLimit;
    if (auto v = call.request.queryParam("offset")) {
        auto n = parseNonNegative(*v);
        if (!n) {
            call.error(400, "offset must be a non-negative integer");
            return std::nullopt;
        }
        page.offset = *n;
    }
    if (auto v = call.request.queryParam("limit")) {
        auto n = parseNonNegative(*v);
        if (!n) {
            call.error(400, "limit must be a non-negative integer");
            return std::nullopt;
        }
        page.limit = std::min<int64_t>(*n, settings.apiPageMaxLimit);
        if (page.limit == 0) page.limit = settings.apiPageMaxLimit;
    }
    return page;
}

void beginPage(JsonWriter& w, const Page& page) {
    if (page.paginated) w.beginObject().key("items");
    w.beginArray();
}

namespace {
// The same request with offset and limit replaced: clients follow it as is.
std::string nextUrl(const Hub& hub, const hubd::http::Request& request, int64_t offset, int64_t limit) {
    Origin o = hub.originOf(request);
    std::string query;
    std::string_view q = request.query;
    size_t pos = 0;
    while (pos <= q.size() && !q.empty()) {
        size_t amp = q.find('&', pos);
        std::string_view part =
            q.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
        if (!part.empty() && part.substr(0, 7) != "offset=" && part.substr(0, 6) != "limit=")
            query += std::string(part) + "&";
        if (amp == std::string_view::npos) break;
        pos = amp + 1;
    }
    query += "offset=" + std::to_string(offset) + "&limit=" + std::to_string(limit);
    return o.scheme + "://" + o.host + request.rawPath + "?" + query;
}
}  // namespace

void endPage(JsonWriter& w, const Page& page, int64_t total, const Hub& hub,
             const hubd::http::Request& request) {
    w.endArray();
    if (!page.paginated) return;
    w.key("_pagination").beginObject();
    w.key("offset").value(page.offset);
    w.key("limit").value(page.limit);
    w.key("total").value(total);
    w.key("next");
    if (page.offset + page.limit < total) {
        w.beginObject();
        w.key("offset").value(page.offset + page.limit);
        w.key("limit").value(page.limit);
        w.key("url").value(nextUrl(hub, request, page.offset + page.limit, page.limit));
        w.endObject();
    } else {
        w.null();
    }
    w.endObject().endObject();
}

std::vector<std::string> scopesBeyondRequester(const Hub& hub, const Principal& requester,
                                               const std::vector<std::string>& roles,
                                               const std::string& userName) {
    std::vector<std::string> raw;
    for (const auto& role : roles) {
        auto scopes = hub.roleScopes(role);
        raw.insert(raw.end(), scopes.begin(), scopes.end());
    }
    ScopeSet wanted = expandScopes(raw, ScopeOwner{ScopeOwner::Kind::User, userName});
    ScopeSet covered = intersectScopes(wanted, requester.scopes, hub.groupMembership());
    std::vector<std::string> wantedList = renderScopes(wanted);
    std::vector<std::string> coveredList = renderScopes(covered);
    std::vector<std::string> beyond;
    std::set_difference(wantedList.begin(), wantedList.end(), coveredList.begin(), coveredList.end(),
                        std::back_inserter(beyond));
    return beyond;
}

}  // namespace hubd
