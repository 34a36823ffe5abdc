// SPDX-License-Identifier: BSD-3-Clause
// Scope expansion, intersection and checks (JupyterHub 3.0 semantics).
#include "app/scopes.h"

#include <algorithm>
#include <array>

namespace hubd {
namespace {

struct ScopeDefinition {
    std::string_view name;
    std::vector<std::string_view> subscopes;
};

// jupyterhub/scopes.py scope_definitions (3.0), reduced to the hierarchy.
const std::vector<ScopeDefinition>& definitions() {
    static const std::vector<ScopeDefinition> defs = {
        {"self", {}},
        {"inherit", {}},
        {"admin-ui", {}},
        {"admin:users", {"admin:auth_state", "users", "read:roles:users", "delete:users"}},
        {"admin:auth_state", {}},
        {"users", {"read:users", "list:users", "users:activity"}},
        {"delete:users", {}},
        {"list:users", {"read:users:name"}},
        {"read:users", {"read:users:name", "read:users:groups", "read:users:activity"}},
        {"read:users:name", {}},
        {"read:users:groups", {}},
        {"read:users:activity", {}},
        {"read:roles", {"read:roles:users", "read:roles:services", "read:roles:groups"}},
        {"read:roles:users", {}},
        {"read:roles:services", {}},
        {"read:roles:groups", {}},
        {"users:activity", {"read:users:activity"}},
        {"admin:servers", {"admin:server_state", "servers"}},
        {"admin:server_state", {}},
        {"servers", {"read:servers", "delete:servers"}},
        {"read:servers", {"read:users:name"}},
        {"delete:servers", {}},
        {"tokens", {"read:tokens"}},
        {"read:tokens", {}},
        {"admin:groups", {"groups", "read:roles:groups", "delete:groups"}},
        {"groups", {"read:groups", "list:groups"}},
        {"list:groups", {"read:groups:name"}},
        {"read:groups", {"read:groups:name"}},
        {"read:groups:name", {}},
        {"delete:groups", {}},
        {"list:services", {"read:services:name"}},
        {"read:services", {"read:services:name"}},
        {"read:services:name", {}},
        {"read:hub", {}},
        {"access:servers", {}},
        {"access:services", {}},
        {"proxy", {}},
        {"shutdown", {}},
        {"read:metrics", {}},
    };
    return defs;
}

const ScopeDefinition* findDefinition(std::string_view name) {
    for (const auto& d : definitions())
        if (d.name == name) return &d;
    return nullptr;
}

const std::vector<std::string> kSelfScopes = {"read:users",     "read:users:name",     "read:users:groups",
                                              "users:activity", "read:users:activity", "servers",
                                              "delete:servers", "read:servers",        "tokens",
                                              "read:tokens",    "access:servers"};

void addWithSubscopes(ScopeSet& out, std::string_view name, const ScopeFilter& filter, int depth = 0) {
    if (depth > 8) return;
    out[std::string(name)].merge(filter);
    if (const auto* def = findDefinition(name))
        for (auto sub : def->subscopes) addWithSubscopes(out, sub, filter, depth + 1);
}

// Splits "read:users!user=bob" into base and filter; owner resolves bare filters.
bool parseFilter(std::string_view raw, const ScopeOwner& owner, std::string& base, ScopeFilter& filter) {
    auto bang = raw.find('!');
    if (bang == std::string_view::npos) {
        base = std::string(raw);
        filter.all = true;
        return true;
    }
    base = std::string(raw.substr(0, bang));
    std::string_view f = raw.substr(bang + 1);
    auto eq = f.find('=');
    std::string_view kind = f.substr(0, eq);
    std::string value = eq == std::string_view::npos ? std::string() : std::string(f.substr(eq + 1));
    if (eq == std::string_view::npos) {
        // "!user" etc.: the owner's own resource.
        if (kind == "user" && owner.kind == ScopeOwner::Kind::User)
            value = owner.name;
        else if (kind == "server" && owner.kind == ScopeOwner::Kind::User)
            value = owner.name + "/";
        else if (kind == "service" && owner.kind == ScopeOwner::Kind::Service)
            value = owner.name;
        else
            return false;  // cannot apply: grants nothing
    }
    if (value.empty()) return false;
    if (kind == "user")
        filter.users.insert(value);
    else if (kind == "group")
        filter.groups.insert(value);
    else if (kind == "server")
        filter.servers.insert(value);
    else if (kind == "service")
        filter.services.insert(value);
    else
        return false;
    return true;
}

std::set<std::string> intersect(const std::set<std::string>& a, const std::set<std::string>& b) {
    std::set<std::string> out;
    std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
    return out;
}

bool userInGroups(const std::string& user, const std::set<std::string>& groups,
                  const std::map<std::string, std::vector<std::string>>& groupsOfUser) {
    auto it = groupsOfUser.find(user);
    if (it == groupsOfUser.end()) return false;
    for (const auto& g : it->second)
        if (groups.count(g)) return true;
    return false;
}

ScopeFilter intersectFilters(const ScopeFilter& a, const ScopeFilter& b,
                             const std::map<std::string, std::vector<std::string>>& groupsOfUser) {
    if (a.all) return b;
    if (b.all) return a;
    ScopeFilter out;
    out.users = intersect(a.users, b.users);
    for (const auto& u : a.users)
        if (userInGroups(u, b.groups, groupsOfUser)) out.users.insert(u);
    for (const auto& u : b.users)
        if (userInGroups(u, a.groups, groupsOfUser)) out.users.insert(u);
    out.groups = intersect(a.groups, b.groups);
    out.servers = intersect(a.servers, b.servers);
    auto serverOwner = [](const std::string& s) { return s.substr(0, s.find('/')); };
    for (const auto& s : a.servers)
        if (b.users.count(serverOwner(s)) || userInGroups(serverOwner(s), b.groups, groupsOfUser))
            out.servers.insert(s);
    for (const auto& s : b.servers)
        if (a.users.count(serverOwner(s)) || userInGroups(serverOwner(s), a.groups, groupsOfUser))
            out.servers.insert(s);
    out.services = intersect(a.services, b.services);
    return out;
}

}  // namespace

void ScopeFilter::merge(const ScopeFilter& other) {
    if (all) return;
    if (other.all) {
        *this = ScopeFilter{};
        all = true;
        return;
    }
    users.insert(other.users.begin(), other.users.end());
    groups.insert(other.groups.begin(), other.groups.end());
    servers.insert(other.servers.begin(), other.servers.end());
    services.insert(other.services.begin(), other.services.end());
}

bool isKnownScope(std::string_view name) {
    return findDefinition(name) != nullptr;
}

std::optional<std::string> validateScope(std::string_view raw) {
    if (raw.empty() || raw.size() > 255) return std::string("scope names are 1 to 255 characters");
    auto bang = raw.find('!');
    std::string_view base = raw.substr(0, bang);
    if (!isKnownScope(base)) return "unknown scope " + std::string(base);
    if (bang != std::string_view::npos) {
        std::string_view f = raw.substr(bang + 1);
        auto eq = f.find('=');
        std::string_view kind = f.substr(0, eq);
        if (kind != "user" && kind != "group" && kind != "server" && kind != "service")
            return "unknown filter !" + std::string(kind) + " in scope " + std::string(raw);
    }
    return std::nullopt;
}

ScopeSet expandScopes(const std::vector<std::string>& raw, const ScopeOwner& owner) {
    ScopeSet out;
    for (const auto& scope : raw) {
        if (scope == "self") {
            if (owner.kind == ScopeOwner::Kind::User) {
                ScopeFilter f;
                f.users.insert(owner.name);
                for (const auto& s : kSelfScopes) addWithSubscopes(out, s, f);
            }
            continue;
        }
        std::string base;
        ScopeFilter filter;
        if (!parseFilter(scope, owner, base, filter)) continue;
        if (!isKnownScope(base) || base == "inherit") continue;
        addWithSubscopes(out, base, filter);
    }
    return out;
}

ScopeSet intersectScopes(const ScopeSet& token, const ScopeSet& owner,
                         const std::map<std::string, std::vector<std::string>>& groupsOfUser) {
    ScopeSet out;
    for (const auto& [name, filter] : token) {
        auto it = owner.find(name);
        if (it == owner.end()) continue;
        ScopeFilter f = intersectFilters(filter, it->second, groupsOfUser);
        if (!f.empty()) out[name] = std::move(f);
    }
    return out;
}

std::vector<std::string> renderScopes(const ScopeSet& scopes) {
    std::vector<std::string> out;
    for (const auto& [name, f] : scopes) {
        if (f.all) {
            out.push_back(name);
            continue;
        }
        for (const auto& u : f.users) out.push_back(name + "!user=" + u);
        for (const auto& g : f.groups) out.push_back(name + "!group=" + g);
        for (const auto& s : f.servers) out.push_back(name + "!server=" + s);
        for (const auto& s : f.services) out.push_back(name + "!service=" + s);
    }
    std::sort(out.begin(), out.end());
    return out;
}

const std::vector<std::string>* builtinRoleScopes(std::string_view role) {
    static const std::vector<std::string> user = {"self"};
    static const std::vector<std::string> admin = {
        "admin-ui",        "admin:users",    "admin:servers", "tokens",      "admin:groups",
        "list:services",   "read:services",  "read:hub",      "proxy",       "shutdown",
        "access:services", "access:servers", "read:roles",    "read:metrics"};
    static const std::vector<std::string> server = {"users:activity!user", "access:servers!user"};
    static const std::vector<std::string> token = {"inherit"};
    if (role == "user") return &user;
    if (role == "admin") return &admin;
    if (role == "server") return &server;
    if (role == "token") return &token;
    return nullptr;
}

bool appliesTo(const ScopeFilter& f, const Resource& r) {
    if (f.all) return true;
    if (!r.user.empty()) {
        if (f.users.count(r.user)) return true;
        for (const auto& g : r.groups)
            if (f.groups.count(g)) return true;
    }
    if (!r.server.empty() && f.servers.count(r.server)) return true;
    if (!r.service.empty() && f.services.count(r.service)) return true;
    if (!r.group.empty() && f.groups.count(r.group)) return true;
    return false;
}

bool holds(const ScopeSet& held, std::string_view scope, const Resource& resource) {
    auto it = held.find(std::string(scope));
    return it != held.end() && appliesTo(it->second, resource);
}

bool holdsUnfiltered(const ScopeSet& held, std::string_view scope) {
    auto it = held.find(std::string(scope));
    return it != held.end() && it->second.all;
}

bool isFullAdmin(const ScopeSet& held) {
    static const ScopeSet admin = expandScopes(*builtinRoleScopes("admin"), ScopeOwner{});
    for (const auto& [name, filter] : admin) {
        // Admins reach other users' servers only with JupyterHub.admin_access
        // (Hub::userScopes narrows it); that does not make them less admin.
        if (name == "access:servers") continue;
        if (!holdsUnfiltered(held, name)) return false;
    }
    return true;
}

ScopeVerdict checkScopes(const ScopeSet& held, const std::vector<std::string>& anyOf,
                         const Resource& resource) {
    bool found = false;
    for (const auto& s : anyOf) {
        auto it = held.find(s);
        if (it == held.end()) continue;
        found = true;
        if (appliesTo(it->second, resource)) return ScopeVerdict::Allowed;
    }
    return found ? ScopeVerdict::FilteredOut : ScopeVerdict::Missing;
}

}  // namespace hubd
