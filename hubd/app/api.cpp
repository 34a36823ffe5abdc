// SPDX-License-Identifier: BSD-3-Clause
// REST API routes: status codes, JSON keys and scope checks follow
// JupyterHub 3.0 (see docs/api-compatibility.md).
#include "app/api.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "app/api_call.h"
#include "app/json.h"
#include "app/metrics_page.h"
#include "app/oauth.h"
#include "app/progress.h"
#include "hubcore/audit.h"
#include "hubcore/log.h"
#include "hubcore/username.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

namespace {

constexpr std::string_view kCompatVersion = "3.0.0";  // what single-user servers and clients compare against

std::vector<std::string_view> splitPath(std::string_view path) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    while (pos < path.size()) {
        if (path[pos] == '/') {
            ++pos;
            continue;
        }
        size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        out.push_back(path.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

void writeTimestamp(JsonWriter& w, const std::optional<hub::Timestamp>& t) {
    if (t)
        w.value(hub::isoUtc(*t));
    else
        w.null();
}

using Call = ApiCall;  // app/api_call.h

}  // namespace

namespace {

class Routes {
public:
    Routes(Hub& hub, Call& call) : hub_(hub), c_(call) {}

    void dispatch(const std::vector<std::string_view>& seg) {
        const std::string& m = c_.request.method;
        if (seg.empty()) {
            if (m == "GET" || m == "HEAD") return version();
            return methodNotAllowed();
        }
        if (seg[0] == "health" && seg.size() == 1) return c_.send(jsonResponse(200, {}));
        if (seg[0] == "info" && seg.size() == 1) return m == "GET" ? info() : methodNotAllowed();
        if (seg[0] == "user" && seg.size() == 1) return m == "GET" ? currentUser() : methodNotAllowed();
        if (seg[0] == "users") {
            if (seg.size() == 1) {
                if (m == "GET") return listUsers();
                if (m == "POST") return createUsers();
                return methodNotAllowed();
            }
            std::string name(seg[1]);
            if (seg.size() == 2) {
                if (m == "GET") return getUser(name);
                if (m == "POST") return createUser(name);
                if (m == "PATCH") return patchUser(name);
                if (m == "DELETE") return deleteUser(name);
                return methodNotAllowed();
            }
            if (seg[2] == "tokens") {
                if (seg.size() == 3) {
                    if (m == "GET") return listTokens(name);
                    if (m == "POST") return createToken(name);
                    return methodNotAllowed();
                }
                if (seg.size() == 4) {
                    if (m == "GET") return getToken(name, seg[3]);
                    if (m == "DELETE") return deleteToken(name, seg[3]);
                    return methodNotAllowed();
                }
            }
            if (seg[2] == "activity" && seg.size() == 3)
                return m == "POST" ? activity(name) : methodNotAllowed();
            if (seg[2] == "server" && seg.size() == 4 && seg[3] == "log")
                return m == "GET" ? serverLog(name) : methodNotAllowed();
            if (seg[2] == "server" && seg.size() == 4 && seg[3] == "progress")
                return m == "GET" ? serverProgress(name) : methodNotAllowed();
            if (seg[2] == "server" && seg.size() == 3) {
                if (m == "POST") return startServer(name);
                if (m == "DELETE") return stopServer(name);
                return methodNotAllowed();
            }
            if (seg[2] == "servers") return namedServersNotAvailable(name, m);
        }
        if (seg[0] == "groups") return handleGroupsApi(hub_, c_, seg);
        if (seg[0] == "services") return handleServicesApi(hub_, c_, seg);
        if (seg[0] == "shutdown" && seg.size() == 1) return handleShutdownApi(hub_, c_);
        if (seg[0] == "metrics" && seg.size() == 1) return handleMetricsApi(hub_, c_);
        c_.error(404, "Not Found");
    }

private:
    void methodNotAllowed() { c_.error(405, "Method Not Allowed"); }

    // The audit line of an action through the API: who, from where, on what.
    void audit(std::string_view event, std::string_view target, std::string_view detailKey = {},
               std::string_view detail = {}) {
        if (detailKey.empty())
            hub::audit(event, {{"user", target}, {"by", c_.principal.name}, {"source", c_.source}});
        else
            hub::audit(
                event,
                {{"user", target}, {"by", c_.principal.name}, {"source", c_.source}, {detailKey, detail}});
    }

    // needs_scope: true if allowed; otherwise answers 403/404.
    bool require(const std::vector<std::string>& anyOf, const Resource& resource) {
        return c_.require(anyOf, resource);
    }

    Resource userResource(const std::string& name) const {
        return Resource{name, hub_.groupsOf(name), name + "/", {}, {}};
    }

    std::optional<Json> body() { return c_.body(); }

    // ------------------------------------------------------------ models

    // The user model, with keys filtered by the requester's scopes (3.0's
    // access map). Returns false if no key is visible.
    bool writeUser(JsonWriter& w, const hub::UserRecord& u, bool includeStopped = false) {
        const ScopeSet& held = c_.principal.scopes;
        Resource r = userResource(u.name);
        bool full = holds(held, "read:users", r);
        bool name = full || holds(held, "read:users:name", r);
        bool groups = full || holds(held, "read:users:groups", r);
        bool activity = full || holds(held, "read:users:activity", r);
        bool servers = holds(held, "read:servers", r);
        bool roles = full || holds(held, "read:roles:users", r);
        bool authState = holds(held, "admin:auth_state", r);
        if (!(name || groups || activity || servers || roles || authState)) return false;
        (void)includeStopped;  // no server rows until the spawner lands
        unsigned mask =
            full | name << 1 | groups << 2 | activity << 3 | servers << 4 | roles << 5 | authState << 6;
        if (const std::string* cached = hub_.cachedUserModel(u.id, mask)) {
            w.raw(*cached);
            return true;
        }
        std::string model;
        JsonWriter m(model);
        writeUserKeys(m, u, full, name, groups, activity, servers, roles, authState);
        w.raw(model);
        hub_.cacheUserModel(u.id, mask, std::move(model));
        return true;
    }

    void writeUserKeys(JsonWriter& w, const hub::UserRecord& u, bool full, bool name, bool groups,
                       bool activity, bool servers, bool roles, bool authState) {
        w.beginObject();
        w.key("kind").value("user");
        w.key("name").value(u.name);
        if (name || roles) w.key("admin").value(u.admin);
        if (roles) w.key("roles").stringArray(hub_.rolesOf(u));
        if (groups) w.key("groups").stringArray(hub_.groupsOf(u.name));
        const ServerState* st = hub_.servers().state(u.id);
        std::string prefix = hub_.servers().urlOf(u.name);  // 3.0: the full URL with subdomains
        bool active = st && st->phase != ServerState::Phase::Stopped;
        const char* pending = !st                                         ? nullptr
                              : st->phase == ServerState::Phase::Spawning ? "spawn"
                              : st->phase == ServerState::Phase::Stopping ? "stop"
                                                                          : nullptr;
        if (full) {
            w.key("server");
            if (st && st->ready)
                w.value(prefix);
            else
                w.null();
            w.key("pending");
            if (pending)
                w.value(pending);
            else
                w.null();
            w.key("created");
            writeTimestamp(w, u.created);
        }
        if (activity) {
            w.key("last_activity");
            writeTimestamp(w, u.lastActivity);
        }
        if (servers) {
            w.key("servers").beginObject();
            if (active) {
                w.key("").beginObject();
                w.key("name").value("");
                w.key("last_activity");
                writeTimestamp(w, u.lastActivity);
                w.key("started");
                writeTimestamp(w, st->started);
                w.key("pending");
                if (pending)
                    w.value(pending);
                else
                    w.null();
                w.key("ready").value(st->ready);
                w.key("stopped").value(false);
                w.key("url").value(prefix);
                w.key("user_options").beginObject().endObject();
                w.key("progress_url")
                    .value(hub_.hubPrefix() + "api/users/" + urlEncode(u.name) + "/server/progress");
                w.endObject();
            }
            w.endObject();
        }
        if (authState) w.key("auth_state").null();
        w.endObject();
    }

    std::string userJson(const hub::UserRecord& u) {
        std::string out;
        JsonWriter w(out);
        if (!writeUser(w, u)) out = "{\"kind\":\"user\",\"name\":" + toJson(Json::string(u.name)) + "}";
        return out;
    }

    void writeToken(JsonWriter& w, const hub::TokenRecord& t, const std::string* plaintext = nullptr) {
        w.beginObject();
        if (t.userId) {
            const auto* u = hub_.findUserById(*t.userId);
            w.key("user").value(u ? u->name : std::string());
        } else {
            std::string service;
            for (const auto& [n, s] : hub_.services())
                if (t.serviceId && s.record.id == *t.serviceId) service = n;
            w.key("service").value(service);
        }
        w.key("id").value("a" + std::to_string(t.id));
        w.key("kind").value("api_token");
        w.key("roles").beginArray().endArray();
        w.key("scopes").stringArray(renderScopes(hub_.tokenScopes(t)));
        w.key("created");
        writeTimestamp(w, t.created);
        w.key("last_activity");
        writeTimestamp(w, t.lastActivity);
        w.key("expires_at");
        writeTimestamp(w, t.expiresAt);
        w.key("note").value(t.note);
        w.key("session_id");
        if (t.sessionId.empty())
            w.null();
        else
            w.value(t.sessionId);
        w.key("oauth_client").value(t.clientId == "jupyterhub" ? std::string("JupyterHub") : t.clientId);
        if (plaintext) w.key("token").value(*plaintext);
        w.endObject();
    }

    // ------------------------------------------------------------ routes

    void version() {
        std::string out;
        JsonWriter(out).beginObject().key("version").value(kCompatVersion).endObject();
        c_.json(200, std::move(out));
    }

    void info() {
        if (!require({"read:hub"}, {})) return;
        std::string out;
        JsonWriter w(out);
        w.beginObject();
        w.key("version").value(kCompatVersion);
        w.key("hubd").value(HUBD_VERSION);
        w.key("python").value("");
        w.key("sys_executable").value("");
        w.key("spawner").beginObject();
        w.key("class").value(hub_.settings().spawnerClass == "sudo"
                                 ? "sudospawner.SudoSpawner"
                                 : "jupyterhub.spawner.SimpleLocalProcessSpawner");
        w.key("version").value(HUBD_VERSION);
        w.endObject();
        w.key("authenticator").beginObject();
        w.key("class").value(hub_.authenticator().className());
        w.key("version").value(HUBD_VERSION);
        w.endObject();
        w.endObject();
        c_.json(200, std::move(out));
    }

    void currentUser() {
        const Principal& p = c_.principal;
        if (!p) return c_.error(403, "Forbidden");
        std::string out;
        JsonWriter w(out);
        std::vector<std::string> scopes = renderScopes(p.scopes);
        if (p.kind == Principal::Kind::User) {
            const auto* u = hub_.findUserById(p.id);
            if (!u) return c_.error(403, "Forbidden");
            // Identify scopes come with any authentication (3.0).
            std::string own = userJson(*u);
            auto model = parseJson(own);
            Json obj = model ? *model : Json::object();
            obj.set("name", Json::string(u->name));
            obj.set("kind", Json::string("user"));
            if (!obj.find("admin")) obj.set("admin", Json::boolean(u->admin));
            if (!obj.find("groups")) {
                Json g = Json::array();
                for (const auto& name : hub_.groupsOf(u->name)) g.push(Json::string(name));
                obj.set("groups", g);
            }
            obj.set("session_id", Json());
            for (const auto& extra : {"read:users:name!user=" + u->name, "read:users:groups!user=" + u->name})
                if (std::find(scopes.begin(), scopes.end(), extra) == scopes.end() &&
                    !holds(p.scopes, extra.substr(0, extra.find('!')), userResource(u->name)))
                    scopes.push_back(extra);
            std::sort(scopes.begin(), scopes.end());
            Json list = Json::array();
            for (const auto& s : scopes) list.push(Json::string(s));
            obj.set("scopes", list);
            w.value(obj);
        } else {
            const auto& svc = hub_.services().at(p.name);
            w.beginObject();
            w.key("kind").value("service");
            w.key("name").value(p.name);
            w.key("admin").value(svc.record.admin);
            w.key("roles").stringArray(svc.record.roles);
            w.key("url").value(svc.url);
            w.key("prefix").value("");
            w.key("command").beginArray().endArray();
            w.key("pid").value(0);
            w.key("info").beginObject().endObject();
            w.key("display").value(true);
            w.key("session_id").null();
            w.key("scopes").stringArray(scopes);
            w.endObject();
        }
        c_.json(200, std::move(out));
    }

    void listUsers() {
        const ScopeSet& held = c_.principal.scopes;
        auto it = held.find("list:users");
        if (it == held.end())
            return c_.error(403,
                            "Action is not authorized with current scopes; requires any of [list:users]");
        const ScopeFilter& filter = it->second;
        const Request& req = c_.request;
        auto page = parsePage(c_, hub_.settings());
        if (!page) return;
        int64_t offset = page->offset;
        int64_t limit = page->limit;
        std::optional<std::string> state = req.queryParam("state");
        if (state && *state != "active" && *state != "ready" && *state != "inactive")
            return c_.error(400, "Unrecognized state filter: " + hub::safe(*state, 50) +
                                     ". Use one of active, ready, inactive.");
        std::string nameFilter;
        if (auto v = req.queryParam("name_filter")) nameFilter = hub::normalizeUsername(*v);
        bool includeStopped = req.queryParam("include_stopped_servers").has_value();

        std::vector<const hub::UserRecord*> matches;
        for (const auto* u : hub_.users()) {
            if (!appliesTo(filter, userResource(u->name))) continue;
            if (!nameFilter.empty() && u->name.find(nameFilter) == std::string::npos) continue;
            if (state) {
                const ServerState* st = hub_.servers().state(u->id);
                bool active = st && st->phase != ServerState::Phase::Stopped;
                bool ready = st && st->ready;
                if ((*state == "active" && !active) || (*state == "ready" && !ready) ||
                    (*state == "inactive" && active))
                    continue;
            }
            matches.push_back(u);
        }
        int64_t total = static_cast<int64_t>(matches.size());
        std::string out;
        out.reserve(static_cast<size_t>(std::min<int64_t>(total, limit)) * 320 + 128);
        JsonWriter w(out);
        beginPage(w, *page);
        for (int64_t i = offset; i < total && i < offset + limit; ++i)
            writeUser(w, *matches[static_cast<size_t>(i)], includeStopped);
        endPage(w, *page, total, hub_, req);
        c_.json(200, std::move(out));
    }

    void createUsers() {
        if (!require({"admin:users"}, {})) return;
        auto b = body();
        if (!b) return;
        const Json* names = b->isObject() ? b->find("usernames") : nullptr;
        if (!names || !names->isArray() || names->items().empty())
            return c_.error(400, "Must specify at least one user to create");
        std::vector<std::string> list;
        for (const auto& n : names->items()) {
            if (!n.isString()) return c_.error(400, "usernames must be a list of strings");
            list.push_back(n.asString());
        }
        bool admin = false;
        if (const Json* a = b->find("admin")) {
            if (!a->isBool()) return c_.error(400, "admin must be true or false");
            admin = a->asBool();
        }
        if (admin && !c_.principal.admin) return c_.error(403, "Only admins can create admin users");
        // The admin page's checks (Hub::checkNewUsers); names already there are skipped.
        for (const auto& refusal : hub_.checkNewUsers(list).refused)
            if (refusal.status != 409) return c_.error(refusal.status, refusal.reason);
        auto result = hub_.createUsers(list, admin);
        if (!result.error.empty()) return c_.error(result.status, result.error);
        std::string out;
        JsonWriter w(out);
        w.beginArray();
        std::string createdNames;
        for (const auto* u : result.created) {
            audit("user.create", u->name, "admin", admin ? "true" : "false");
            w.raw(userJson(*u));
            if (createdNames.size() < 200) createdNames += (createdNames.empty() ? "" : ", ") + u->name;
        }
        w.endArray();
        hub::logInfo("Created {} user(s) (admin: {}) via API by {}: {}{}", result.created.size(), admin,
                     c_.principal.name, createdNames, createdNames.size() >= 200 ? ", …" : "");
        c_.json(201, std::move(out));
    }

    void getUser(const std::string& name) {
        Resource r = userResource(name);
        if (!require({"read:users", "read:users:name", "read:servers", "read:users:groups",
                      "read:users:activity", "read:roles:users"},
                     r))
            return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        c_.json(200, userJson(*u));
    }

    void createUser(const std::string& name) {
        if (!require({"admin:users"}, {})) return;
        auto b = body();
        if (!b) return;
        bool admin = false;
        if (b->isObject())
            if (const Json* a = b->find("admin")) {
                if (!a->isBool()) return c_.error(400, "admin must be true or false");
                admin = a->asBool();
            }
        if (admin && !c_.principal.admin) return c_.error(403, "Only admins can create admin users");
        auto check = hub_.checkNewUsers({name});
        if (!check.refused.empty()) return c_.error(check.refused[0].status, check.refused[0].reason);
        auto result = hub_.createUsers({name}, admin);
        if (!result.error.empty()) return c_.error(result.status, result.error);
        hub::logInfo("Created user {} (admin: {}) via API by {}", result.created[0]->name, admin,
                     c_.principal.name);
        audit("user.create", result.created[0]->name, "admin", admin ? "true" : "false");
        c_.json(201, userJson(*result.created[0]));
    }

    static std::string joined(const std::vector<std::string>& names) {
        std::string out;
        for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
        return out;
    }

    // A JSON list of names, without duplicates; answers 400 otherwise.
    std::optional<std::vector<std::string>> nameList(const Json& value, const std::string& key) {
        if (!value.isArray()) {
            c_.error(400, key + " must be a list of names");
            return std::nullopt;
        }
        std::vector<std::string> out;
        for (const auto& item : value.items()) {
            if (!item.isString()) {
                c_.error(400, key + " must be a list of names");
                return std::nullopt;
            }
            if (std::find(out.begin(), out.end(), item.asString()) == out.end())
                out.push_back(item.asString());
        }
        return out;
    }

    // No PATCH raises a user above the requester. Admin (flag or role) needs
    // a full admin, not just admin:users (CVE-2024-41942, as JupyterHub 4.1.6
    // fixed it); other new roles, and new groups carrying roles, need the
    // requester to hold every scope they grant. Answers 403 if not.
    bool mayRaise(const hub::UserRecord& before, const hub::UserRecord& after) {
        if (after.admin && !before.admin && !c_.principal.admin) {
            c_.error(403, "Only admins can grant admin permissions");
            return false;
        }
        std::vector<std::string> granted;
        for (const auto& r : after.roles)
            if (std::find(before.roles.begin(), before.roles.end(), r) == before.roles.end())
                granted.push_back(r);
        std::vector<std::string> oldGroups = hub_.groupsOf(before.name);
        for (const auto& g : after.groups) {
            if (std::find(oldGroups.begin(), oldGroups.end(), g) != oldGroups.end()) continue;
            const auto* group = hub_.findGroup(g);
            if (!group) continue;
            for (const auto& r : group->roles) {
                if (r == "admin" && !c_.principal.admin) {
                    c_.error(403, "Only admins can add users to group " + g + ", which has the admin role");
                    return false;
                }
                if (r != "admin") granted.push_back(r);
            }
        }
        if (granted.empty()) return true;
        auto beyond = scopesBeyondRequester(hub_, c_.principal, granted, after.name);
        if (beyond.empty()) return true;
        c_.error(403, "Cannot give " + after.name + " roles " + scopeList(granted) +
                          ": they grant scopes you do not hold " + scopeList(beyond));
        return false;
    }

    void patchUser(const std::string& name) {
        if (!require({"admin:users"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        auto b = body();
        if (!b) return;
        if (!b->isObject()) return c_.error(400, "Request body must be a JSON object");
        hub::UserRecord changed = *u;
        std::optional<bool> admin;
        std::optional<std::vector<std::string>> roles;
        bool groupsGiven = false;
        for (const auto& [key, value] : b->members()) {
            if (key == "name") {
                if (!value.isString()) return c_.error(400, "name must be a string");
                std::string newName = hub::normalizeUsername(value.asString());
                if (auto err = hub::validateUsername(newName))
                    return c_.error(400, "Invalid username: " + *err);
                if (newName != u->name && hub_.findUser(newName))
                    return c_.error(400, "User " + newName + " already exists, username must be unique");
                if (const ServerState* st = hub_.servers().state(u->id);
                    newName != u->name && st && st->phase != ServerState::Phase::Stopped)
                    return c_.error(400, "Cannot rename " + u->name +
                                             " while their server is running: stop it "
                                             "first");
                changed.name = newName;
            } else if (key == "admin") {
                if (!value.isBool()) return c_.error(400, "admin must be true or false");
                admin = value.asBool();
            } else if (key == "groups") {
                auto list = nameList(value, "groups");
                if (!list) return;
                for (const auto& g : *list)
                    if (!hub_.findGroup(g)) return c_.error(400, "No such group: " + hub::safe(g, 100));
                changed.groups = std::move(*list);
                groupsGiven = true;
            } else if (key == "roles") {
                auto list = nameList(value, "roles");
                if (!list) return;
                for (const auto& r : *list)
                    if (!hub_.roleExists(r)) return c_.error(400, "No such role: " + hub::safe(r, 100));
                roles = std::move(*list);
            } else if (key == "auth_state") {
                // Accepted as 3.0 does; hubd keeps no auth state to store it in.
            } else {
                return c_.error(400, "Invalid key in request body: " + hub::safe(key, 50));
            }
        }
        if (roles) {
            // The admin role and the admin flag are one thing, as in GET's "roles".
            bool adminRole = std::find(roles->begin(), roles->end(), "admin") != roles->end();
            if (admin && *admin != adminRole)
                return c_.error(400,
                                "admin and roles disagree: list the admin role exactly when admin is true");
            admin = adminRole;
            changed.roles.clear();
            for (const auto& r : *roles)
                if (r != "user" && r != "admin") changed.roles.push_back(r);
        }
        if (admin) changed.admin = *admin;
        if (!mayRaise(*u, changed)) return;
        const hub::UserRecord before = *u;  // updateUser changes *u in place
        hub_.updateUser(changed);
        // Group records list members by name: a rename changes them too.
        if (groupsGiven || changed.name != before.name) hub_.groupsChanged();
        hub::logInfo("Updated user {} via API by {}", changed.name, c_.principal.name);
        if (changed.admin != before.admin)
            audit("user.admin", changed.name, "admin", changed.admin ? "true" : "false");
        if (changed.roles != before.roles) audit("user.roles", changed.name, "roles", joined(changed.roles));
        if (groupsGiven) audit("user.groups", changed.name, "groups", joined(changed.groups));
        if (changed.name != before.name) audit("user.rename", before.name, "new_name", changed.name);
        const auto* updated = hub_.findUserById(changed.id);
        std::string out = userJson(*updated);
        c_.json(200, std::move(out));
    }

    void deleteUser(const std::string& name) {
        if (!require({"delete:users"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        if (c_.principal.kind == Principal::Kind::User && c_.principal.id == u->id)
            return c_.error(400, "Cannot delete yourself!");
        if (const ServerState* st = hub_.servers().state(u->id);
            st && st->phase != ServerState::Phase::Stopped)
            return c_.error(400, "User " + name +
                                     "'s server is running or pending: stop it first (DELETE "
                                     "/hub/api/users/" +
                                     name + "/server)");
        hub_.deleteUser(u->id);
        hub::logInfo("Deleted user {} via API by {}", name, c_.principal.name);
        audit("user.delete", name);
        c_.noContent();
    }

    void listTokens(const std::string& name) {
        if (!require({"read:tokens"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        std::string out;
        JsonWriter w(out);
        w.beginObject().key("api_tokens").beginArray();
        hub::Timestamp now = hub::now();
        for (const auto& t : hub_.tokensOfUser(u->id)) {
            if (t.expiresAt && *t.expiresAt <= now) {
                hub_.revokeToken(t.id);
                continue;
            }
            writeToken(w, t);
        }
        w.endArray().endObject();
        c_.json(200, std::move(out));
    }

    std::optional<int64_t> tokenId(std::string_view raw) const {
        if (raw.size() < 2 || raw[0] != 'a') return std::nullopt;
        return parseNonNegative(raw.substr(1));
    }

    void getToken(const std::string& name, std::string_view rawId) {
        if (!require({"read:tokens"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        auto id = tokenId(rawId);
        const hub::TokenRecord* t = id ? hub_.findToken(*id) : nullptr;
        if (!u || !t || t->userId != u->id) return c_.error(404, "No such token");
        std::string out;
        JsonWriter w(out);
        writeToken(w, *t);
        c_.json(200, std::move(out));
    }

    void deleteToken(const std::string& name, std::string_view rawId) {
        if (!require({"tokens"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        auto id = tokenId(rawId);
        // Hub::revokeUserToken: the same ownership check, revocation, log and audit as the token page.
        if (!u || !id || !hub_.revokeUserToken(*u, *id, c_.principal, c_.source, "api"))
            return c_.error(404, "No such token");
        c_.noContent();
    }

    void createToken(const std::string& name) {
        auto b = body();
        if (!b) return;
        if (!b->isNull() && !b->isObject()) return c_.error(400, "Request body must be a JSON object");
        if (!c_.principal) {
            // 3.0 accepts {"auth": {"username", "password"}} instead of a token.
            const Json* auth = b->isObject() ? b->find("auth") : nullptr;
            if (!auth || !auth->isObject()) return c_.error(403, "Missing or invalid credentials");
            return authenticateThenCreate(name, *b, *auth);
        }
        if (!require({"tokens"}, userResource(name))) return;
        finishCreateToken(name, *b);
    }

    void authenticateThenCreate(const std::string& name, const Json& request, const Json& auth) {
        const Json* user = auth.find("username");
        const Json* pass = auth.find("password");
        if (!user || !pass || !user->isString() || !pass->isString())
            return c_.error(400, "auth must contain username and password strings");
        std::string username = user->asString();
        std::string password = pass->asString();
        std::string source = c_.source;
        if (auto wait = hub_.loginBlocked(source, username)) {
            Response r = jsonError(429, fmt::format("Too many failed sign-ins from your address or for this "
                                                    "username. Try again in {} seconds.",
                                                    wait->count()));
            r.set("Retry-After", std::to_string(wait->count()));
            return c_.send(std::move(r));
        }
        auto shared = std::make_shared<Call>(std::move(c_));
        Hub* hub = &hub_;
        Json copy = request;
        hub->workers().submit(
            [hub, username, password] { return hub->authenticator().authenticate(username, password); },
            [hub, shared, name, copy, source, username](hub::AuthResult result) {
                if (!result.ok || result.username != hub::normalizeUsername(name)) {
                    hub->loginFinished(false, source, username, "api",
                                       result.ok ? "authenticated as another user" : result.failureReason);
                    hub->replyAfterFailureDelay(
                        [shared] { shared->error(403, "Missing or invalid credentials"); });
                    return;
                }
                hub->loginFinished(true, source, result.username, "api");
                const auto* u = hub->findUser(result.username);
                if (!u) {
                    shared->error(403, "Missing or invalid credentials");
                    return;
                }
                shared->principal.kind = Principal::Kind::User;
                shared->principal.id = u->id;
                shared->principal.name = u->name;
                shared->principal.scopes = hub->userScopes(*u);
                shared->principal.admin = isFullAdmin(shared->principal.scopes);
                Routes(*hub, *shared).finishCreateToken(name, copy);
            });
    }

public:
    void finishCreateToken(const std::string& name, const Json& b) {
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        // JSON types here; the rest in Hub::requestUserToken, shared with the token page.
        Hub::TokenRequest req;
        if (b.isObject()) {
            for (const auto& [key, value] : b.members()) {
                if (key == "note") {
                    if (!value.isString() && !value.isNull()) return c_.error(400, "note must be a string");
                    if (value.isString()) req.note = value.asString();
                } else if (key == "expires_in") {
                    if (value.isNull()) continue;
                    if (!value.isNumber())
                        return c_.error(400, "expires_in must be a positive number of seconds");
                    req.expiresIn = value.asNumber();
                } else if (key == "scopes" || key == "roles") {
                    if (!value.isArray()) return c_.error(400, key + " must be a list of strings");
                    for (const auto& s : value.items()) {
                        if (!s.isString()) return c_.error(400, key + " must be a list of strings");
                        (key == "scopes" ? req.scopes : req.roles).push_back(s.asString());
                    }
                } else if (key == "auth") {
                    continue;
                } else {
                    return c_.error(400, "Invalid key in request body: " + hub::safe(key, 50));
                }
            }
        }
        auto outcome = hub_.requestUserToken(*u, std::move(req), c_.principal, c_.source, "api");
        if (!outcome.issued) return c_.error(400, outcome.error);
        const auto& issued = *outcome.issued;
        std::string out;
        JsonWriter w(out);
        writeToken(w, issued.record, &issued.token);
        c_.json(201, std::move(out));
    }

private:
    void activity(const std::string& name) {
        if (!require({"users:activity"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        auto b = body();
        if (!b) return;
        if (!b->isObject() || (!b->find("last_activity") && !b->find("servers")))
            return c_.error(400, "body must be a dict containing last_activity or servers");
        std::optional<hub::Timestamp> newest;
        auto consider = [&](const Json& v) -> bool {
            if (!v.isString()) return false;
            auto t = hub::parseUtc(v.asString());
            if (!t) return false;
            if (*t > hub::now() + std::chrono::minutes(59)) return false;
            if (!newest || *t > *newest) newest = *t;
            return true;
        };
        if (const Json* la = b->find("last_activity"))
            if (!consider(*la))
                return c_.error(400, "last_activity must be an ISO 8601 timestamp, not in the future");
        if (const Json* servers = b->find("servers")) {
            if (!servers->isObject()) return c_.error(400, "servers must be a dict");
            for (const auto& [server, model] : servers->members()) {
                // No server rows until the spawner lands: only the default name is known.
                if (!server.empty())
                    return c_.error(400, "No such server '" + hub::safe(server, 50) + "' for user " + name);
                const Json* la = model.isObject() ? model.find("last_activity") : nullptr;
                if (la && !consider(*la))
                    return c_.error(400, "last_activity must be an ISO 8601 timestamp, not in the future");
            }
        }
        if (newest) hub_.recordActivity(u->id, *newest);
        c_.json(200, {});
    }

    void namedServersNotAvailable(const std::string& name, const std::string& method) {
        if (method == "POST" && !require({"servers"}, userResource(name))) return;
        if (method == "DELETE" && !require({"delete:servers"}, userResource(name))) return;
        if (method != "POST" && method != "DELETE") return methodNotAllowed();
        c_.error(400, "Named servers are not enabled on this hub (JupyterHub.allow_named_servers)");
    }

    // 3.0: 201 when ready within slow_spawn_timeout (10 s), else 202; 400 if
    // already running. The answer waits on a timer, never on a thread.
    void startServer(const std::string& name) {
        if (!require({"servers"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        auto body = this->body();
        if (!body) return;
        const ServerState* st = hub_.servers().state(u->id);
        if (st && st->phase == ServerState::Phase::Running)
            return c_.error(400, name + " is already running");
        if (st && st->phase == ServerState::Phase::Spawning) return c_.json(202, {});
        audit("server.start", name);
        auto reply = std::make_shared<Call>(std::move(c_));
        int64_t id = u->id;
        Hub* hub = &hub_;
        auto answered = std::make_shared<bool>(false);
        auto settled = [hub, id, reply, answered] {
            if (*answered) return;
            *answered = true;
            const ServerState* s = hub->servers().state(id);
            if (s && s->phase == ServerState::Phase::Running) return reply->json(201, {});
            reply->error(500, s ? s->lastError : std::string("the server did not start"));
        };
        if (auto err = hub_.servers().start(*u, settled)) {
            *answered = true;
            return reply->error(400, *err);
        }
        hub::logInfo("{} requested a server for {}", reply->principal.name, name);
        hub_.loop().addTimer(std::chrono::seconds(10), [reply, answered] {
            if (*answered) return;
            *answered = true;
            reply->json(202, {});
        });
    }

    // hubd extension: the last lines of the server's log, read by the helper
    // as the user. Plain text: it is the server's untrusted output.
    void serverLog(const std::string& name) {
        if (!require({"read:servers"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        int64_t lines = 200;
        if (auto v = c_.request.queryParam("lines")) {
            auto n = parseNonNegative(*v);
            if (!n || *n < 1 || *n > 1000) return c_.error(400, "lines must be an integer from 1 to 1000");
            lines = *n;
        }
        auto reply = std::make_shared<Call>(std::move(c_));
        hub_.servers().readLog(*u, static_cast<uint32_t>(lines),
                               [reply](std::string text, std::string error) {
                                   if (!error.empty()) return reply->error(409, error);
                                   Response r;
                                   r.body = std::move(text);
                                   r.set("Content-Type", "text/plain; charset=utf-8");
                                   r.set("X-Content-Type-Options", "nosniff");
                                   r.set("Content-Security-Policy", "default-src 'none'; sandbox");
                                   r.set("X-JupyterHub-Version", "3.0.0");
                                   reply->send(std::move(r));
                               });
    }

    void serverProgress(const std::string& name) {
        if (!require({"read:servers"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        streamServerProgress(hub_, *u, std::move(c_.responder));
    }

    void stopServer(const std::string& name) {
        if (!require({"delete:servers"}, userResource(name))) return;
        const auto* u = hub_.findUser(name);
        if (!u) return c_.error(404, "No such user " + hub::safe(name, 100));
        const ServerState* st = hub_.servers().state(u->id);
        if (!st || st->phase == ServerState::Phase::Stopped) return c_.noContent();
        if (st->phase == ServerState::Phase::Stopping) return c_.json(202, {});
        audit("server.stop", name);
        auto reply = std::make_shared<Call>(std::move(c_));
        auto answered = std::make_shared<bool>(false);
        int64_t id = u->id;
        Hub* hub = &hub_;
        auto settled = [hub, id, reply, answered] {
            if (*answered) return;
            *answered = true;
            const ServerState* s = hub->servers().state(id);
            if (s && s->phase == ServerState::Phase::Stopped) return reply->noContent();
            reply->error(500, s ? s->lastError : std::string("the server did not stop"));
        };
        if (auto err = hub_.servers().stop(*u, settled)) {
            *answered = true;
            return reply->noContent();
        }
        hub_.loop().addTimer(std::chrono::seconds(10), [reply, answered] {
            if (*answered) return;
            *answered = true;
            reply->json(202, {});
        });
    }

    Hub& hub_;
    Call& c_;
};

}  // namespace

void Hub::Api::handle(std::string_view path, Request& request, Responder responder) {
    if (request.method == "OPTIONS") {
        responder.send(jsonResponse(200, {}));
        return;
    }
    // OAuth is browser navigation (hub cookie) and client credentials, not
    // the API's token/Referer rules.
    if (path.substr(0, 8) == "/oauth2/")
        return handleOAuth(hub_, path.substr(7), request, std::move(responder));
    Call call{request, std::move(responder), {}, {}};
    call.source = hub_.clientView(request).address;
    call.principal = hub_.authenticate(request, true);
    Routes routes(hub_, call);
    routes.dispatch(splitPath(path));
}

}  // namespace hubd
