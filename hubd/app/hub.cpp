// SPDX-License-Identifier: BSD-3-Clause
// Hub state (users, tokens, roles, services), request attribution and routing.
#include "app/hub.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "app/api.h"
#include "app/idle_culler.h"
#include "app/json.h"
#include "app/metrics.h"
#include "app/metrics_page.h"
#include "app/pages.h"
#include "app/subdomains.h"
#include "app/xsrf.h"
#include "hubcore/audit.h"
#include "hubcore/cookie.h"
#include "hubcore/log.h"
#include "hubcore/token.h"
#include "hubcore/username.h"

namespace hubd {

using hubd::http::Request;
using hubd::http::Responder;
using hubd::http::Response;

namespace {

constexpr std::string_view kLoginCookie = "jupyterhub-hub-login";
// The hub session on /user/ paths: the proxy checks it and strips it, so a
// user's server never sees it (docs/security-model.md).
constexpr std::string_view kUserSessionCookie = "hubd-user-session";
// Activity is persisted at most this often per user or token, as JupyterHub's
// activity_resolution does: a busy client must not turn reads into writes.
constexpr auto kActivityResolution = std::chrono::seconds(30);

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

// "token abc" / "bearer abc" (case-insensitive), exactly one token.
std::optional<std::string_view> tokenFromAuthorization(std::string_view header) {
    auto space = header.find_first_of(" \t");
    if (space == std::string_view::npos) return std::nullopt;
    std::string_view scheme = header.substr(0, space);
    if (!iequals(scheme, "token") && !iequals(scheme, "bearer")) return std::nullopt;
    std::string_view rest = header.substr(space);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
    if (rest.empty() || rest.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
    return rest;
}

}  // namespace

// ---------------------------------------------------------------- helpers

Response jsonResponse(int status, std::string body) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    r.set("Content-Type", "application/json");
    r.set("X-JupyterHub-Version", "3.0.0");
    r.set("Access-Control-Allow-Headers", "accept, content-type, authorization");
    r.set("Content-Security-Policy", "frame-ancestors 'self'; default-src 'none'");
    return r;
}

Response jsonError(int status, std::string_view message) {
    std::string body;
    body += "{\"status\":";
    body += std::to_string(status);
    body += ",\"message\":";
    appendJsonString(body, message);
    body += '}';
    return jsonResponse(status, std::move(body));
}

Response redirect(int status, std::string location) {
    Response r;
    r.status = status;
    r.set("Location", std::move(location));
    r.set("Content-Type", "text/plain; charset=utf-8");
    r.set("X-JupyterHub-Version", "3.0.0");
    // The same protection as pages: a redirect is a response a browser
    // may render (an empty body here), and scanners rightly ask for it.
    r.set("Content-Security-Policy", "frame-ancestors 'self'; default-src 'none'");
    r.set("X-Content-Type-Options", "nosniff");
    r.set("Referrer-Policy", "same-origin");
    return r;
}

std::string urlEncode(std::string_view s) {
    return percentEncode(s, "-_.~/");
}

std::string percentEncode(std::string_view s, std::string_view keep) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || keep.find(static_cast<char>(c)) != std::string_view::npos) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 15];
        }
    }
    return out;
}

std::string urlDecode(std::string_view s, bool plusAsSpace) {
    std::string out;
    out.reserve(s.size());
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else if (s[i] == '+' && plusAsSpace) {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

std::map<std::string, std::string> parseForm(std::string_view body) {
    std::map<std::string, std::string> out;
    size_t pos = 0;
    while (pos <= body.size()) {
        size_t amp = body.find('&', pos);
        std::string_view pair =
            body.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
        if (!pair.empty()) {
            size_t eq = pair.find('=');
            std::string key = urlDecode(pair.substr(0, eq), true);
            std::string value =
                eq == std::string_view::npos ? std::string() : urlDecode(pair.substr(eq + 1), true);
            out.emplace(std::move(key), std::move(value));  // first occurrence wins
        }
        if (amp == std::string_view::npos) break;
        pos = amp + 1;
    }
    return out;
}

std::string htmlEscape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string sha256Hex(std::string_view data) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);
    return hub::hexEncode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

namespace {
// Validated by the configuration loader; a list that fails here is a bug.
hub::IpNetworkList trustedNetworks(const hub::Settings& settings) {
    std::string why;
    auto list = hub::IpNetworkList::parse(settings.trustedDownstreamIps, why);
    if (!list) throw std::invalid_argument("JupyterHub.trusted_downstream_ips: " + why);
    return std::move(*list);
}

hubd::proxy::ProxyConfig proxyConfig(const hub::IpNetworkList& trusted) {
    hubd::proxy::ProxyConfig config;
    config.trustedProxies = trusted;
    return config;
}
}  // namespace

// ---------------------------------------------------------------- Hub

Hub::Hub(hub::Settings settings, std::unique_ptr<hub::Store> store, std::unique_ptr<hub::Authenticator> auth,
         std::string cookieSecret, hubd::http::EventLoop& loop, hubd::http::WorkerPool& workers)
    : settings_(std::move(settings)),
      store_(std::move(store)),
      auth_(std::move(auth)),
      cookieSecret_(std::move(cookieSecret)),
      loop_(loop),
      workers_(workers),
      hubPrefix_(settings_.baseUrl + "hub/"),
      trustedDownstream_(trustedNetworks(settings_)),
      servers_(std::make_unique<ServerManager>(*this)),
      api_(std::make_unique<Api>(*this)),
      pages_(std::make_unique<Pages>(*this)),
      proxy_(std::make_unique<hubd::proxy::Proxy>(loop_, proxyConfig(trustedDownstream_))) {
    std::string why;  // "" when unset; the configuration loader has refused anything invalid
    if (auto host = hub::parseSubdomainHost(settings_.subdomainHost, why))
        subdomains_ = std::make_unique<Subdomains>(*this, std::move(*host), cookieSecret_);
}

Hub::~Hub() = default;

void Hub::serverChanged(int64_t userId) {
    invalidateUser(userId);
}

std::vector<std::string> Hub::start() {
    std::vector<std::string> errors;
    try {
        store_->transaction([&] {
            using Step = std::vector<std::string> (Hub::*)();
            for (Step step : {&Hub::applyRoles, &Hub::applyUsers, &Hub::applyServices}) {
                auto e = (this->*step)();
                errors.insert(errors.end(), e.begin(), e.end());
            }
            if (!errors.empty()) throw hub::StoreError("configuration rejected");
        });
    } catch (const hub::StoreError& e) {
        if (errors.empty()) errors.push_back(e.what());
        return errors;
    }
    int purged = store_->purgeExpiredTokens(hub::now());
    if (purged > 0) hub::logInfo("Removed {} expired API tokens", purged);
    loadCaches();
    addServiceRoutes();  // proxy (issue 4)
    warnAboutDisallowedUsers();
    const auto reattachStart = std::chrono::steady_clock::now();
    servers_->reattachAll();
    metrics::registry().observeInitSpawners(metrics::since(reattachStart));
    if (CullPolicy policy = CullPolicy::from(settings_.idleCuller); policy.enabled()) {
        culler_ = std::make_unique<IdleCuller>(*this, std::move(policy));
        culler_->start();
    }
    return errors;
}

std::vector<std::string> Hub::applyRoles() {
    std::vector<std::string> errors;
    // Built-in roles have rows too, as in JupyterHub, so assignments can refer to them.
    for (const char* name : {"user", "admin", "server", "token"})
        store_->upsertRole(hub::RoleRecord{name, "built-in role", *builtinRoleScopes(name)});
    for (const auto& spec : settings_.loadRoles) {
        if (builtinRoleScopes(spec.name) && !spec.scopes.empty() && spec.name != "user" &&
            spec.name != "admin") {
            errors.push_back(
                fmt::format("load_roles: the built-in role {} cannot be redefined; give your role "
                            "another name",
                            spec.name));
            continue;
        }
        for (const auto& scope : spec.scopes)
            if (auto err = validateScope(scope))
                errors.push_back(fmt::format("load_roles: role {}: {}", spec.name, *err));
        if (!builtinRoleScopes(spec.name)) {
            hub::RoleRecord role{spec.name, spec.description, spec.scopes};
            store_->upsertRole(role);
        }
    }
    return errors;
}

std::vector<std::string> Hub::applyUsers() {
    std::vector<std::string> errors;
    std::set<std::string> admins;
    for (const auto& raw : settings_.adminUsers) admins.insert(hub::normalizeUsername(raw));
    std::vector<std::string> wanted(admins.begin(), admins.end());
    for (const auto& raw : settings_.allowedUsers) wanted.push_back(hub::normalizeUsername(raw));
    for (const auto& spec : settings_.loadRoles)
        for (const auto& u : spec.users) wanted.push_back(hub::normalizeUsername(u));
    for (const auto& [token, user] : settings_.apiTokens) wanted.push_back(hub::normalizeUsername(user));
    for (const auto& name : wanted) {
        if (auto err = hub::validateUsername(name)) {
            errors.push_back(
                fmt::format("configured user '{}' is not a valid username: {}", hub::safe(name), *err));
            continue;
        }
        auto existing = store_->findUser(name);
        if (!existing) {
            store_->createUser(name, admins.count(name) > 0);
            hub::logInfo("Added user {} from the configuration", name);
        } else if (admins.count(name) && !existing->admin) {
            existing->admin = true;
            store_->updateUser(*existing);
        }
    }
    // Role assignments from load_roles (users and groups).
    for (const auto& spec : settings_.loadRoles) {
        for (const auto& raw : spec.users) {
            auto user = store_->findUser(hub::normalizeUsername(raw));
            if (!user) continue;
            if (std::find(user->roles.begin(), user->roles.end(), spec.name) == user->roles.end()) {
                user->roles.push_back(spec.name);
                store_->setUserRoles(user->id, user->roles);
            }
        }
        for (const auto& groupName : spec.groups) {
            auto groups = store_->allGroups();
            auto it =
                std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.name == groupName; });
            hub::GroupRecord group = it != groups.end() ? *it : store_->createGroup(groupName);
            if (std::find(group.roles.begin(), group.roles.end(), spec.name) == group.roles.end()) {
                group.roles.push_back(spec.name);
                store_->setGroupRoles(group.id, group.roles);
            }
        }
    }
    // Users named in JupyterHub.api_tokens get those tokens.
    for (const auto& [token, rawUser] : settings_.apiTokens) {
        auto user = store_->findUser(hub::normalizeUsername(rawUser));
        if (!user) continue;
        if (token.size() < 8 || token.size() > 256) {
            errors.push_back(
                fmt::format("JupyterHub.api_tokens: the token for {} must be 8 to 256 characters long; "
                            "generate one with `openssl rand -hex 32`",
                            user->name));
            continue;
        }
        bool present = false;
        for (const auto& t : store_->tokensWithPrefix(hub::tokenPrefix(token)))
            if (t.userId == user->id && hub::verifyToken(token, t.hashed)) present = true;
        if (!present) {
            hub::TokenRecord rec;
            rec.userId = user->id;
            rec.prefix = hub::tokenPrefix(token);
            rec.hashed = hub::hashToken(token, hub::kUserTokenRounds);
            rec.created = hub::now();
            rec.note = "from config";
            rec.scopes = {"inherit"};
            store_->insertToken(rec);
        }
    }
    return errors;
}

std::vector<std::string> Hub::applyServices() {
    std::vector<std::string> errors;
    for (const auto& spec : settings_.services) {
        if (spec.name.empty() || spec.name.size() > 255 || hub::validateUsername(spec.name)) {
            errors.push_back(
                fmt::format("JupyterHub.services: '{}' is not a valid service name", hub::safe(spec.name)));
            continue;
        }
        hub::ServiceRecord rec = store_->ensureService(spec.name, spec.admin);
        std::vector<std::string> roles = rec.roles;
        for (const auto& role : settings_.loadRoles)
            if (std::find(role.services.begin(), role.services.end(), spec.name) != role.services.end() &&
                std::find(roles.begin(), roles.end(), role.name) == roles.end())
                roles.push_back(role.name);
        if (spec.admin && std::find(roles.begin(), roles.end(), "admin") == roles.end())
            roles.push_back("admin");
        store_->setServiceRoles(rec.id, roles);
        if (spec.apiToken.empty()) continue;
        if (spec.apiToken.size() < 8 || spec.apiToken.size() > 256) {
            errors.push_back(
                fmt::format("JupyterHub.services: the api_token of service {} must be 8 to 256 "
                            "characters long; generate one with `openssl rand -hex 32`",
                            spec.name));
            continue;
        }
        // The configured token is the service's only config token: replace
        // an older one if the admin rotated it.
        bool present = false;
        for (const auto& t : store_->tokensOfService(rec.id)) {
            if (t.note != "from config") continue;
            if (hub::verifyToken(spec.apiToken, t.hashed))
                present = true;
            else
                store_->deleteToken(t.id);
        }
        if (!present) {
            hub::TokenRecord tok;
            tok.serviceId = rec.id;
            tok.prefix = hub::tokenPrefix(spec.apiToken);
            tok.hashed = hub::hashToken(spec.apiToken, hub::kUserTokenRounds);
            tok.created = hub::now();
            tok.note = "from config";
            tok.scopes = {"inherit"};
            store_->insertToken(tok);
        }
    }
    return errors;
}

void Hub::loadCaches() {
    modelCache_.clear();
    usersById_.clear();
    userIdByName_.clear();
    userIdByCookie_.clear();
    for (auto& u : store_->allUsers()) {
        int64_t id = u.id;
        userIdByName_[u.name] = id;
        userIdByCookie_[u.cookieId] = id;
        usersById_.emplace(id, std::move(u));
    }
    groups_ = store_->allGroups();
    customRoles_.clear();
    for (auto& r : store_->allRoles()) customRoles_[r.name] = r;
    services_.clear();
    for (auto& s : store_->allServices()) {
        ServiceInfo info{s, {}};
        for (const auto& spec : settings_.services)
            if (spec.name == s.name) info.url = spec.url;
        services_[s.name] = std::move(info);
    }
    tokens_.clear();
    tokenIdsByPrefix_.clear();
    verifiedTokens_.clear();
    std::vector<hub::TokenRecord> all;
    for (const auto& [id, u] : usersById_)
        for (auto& t : store_->tokensOfUser(id)) all.push_back(std::move(t));
    for (const auto& [name, s] : services_)
        for (auto& t : store_->tokensOfService(s.record.id)) all.push_back(std::move(t));
    for (auto& t : all) {
        tokenIdsByPrefix_.emplace(t.prefix, t.id);
        tokens_.emplace(t.id, std::move(t));
    }
}

void Hub::warnAboutDisallowedUsers() {
    if (settings_.allowedUsers.empty() && settings_.allowedGroups.empty()) return;
    std::set<std::string> allowed;
    for (const auto& u : settings_.allowedUsers) allowed.insert(hub::normalizeUsername(u));
    for (const auto& u : settings_.adminUsers) allowed.insert(hub::normalizeUsername(u));
    std::vector<std::string> stale;
    for (const auto& [id, u] : usersById_)
        if (!allowed.count(u.name) && !u.admin) stale.push_back(u.name);
    if (stale.empty()) return;
    std::string names;
    for (const auto& n : stale) names += (names.empty() ? "" : ", ") + n;
    hub::logWarning(
        "{} user(s) in the database are not in Authenticator.allowed_users and can still log in: {}. "
        "Remove them with DELETE /hub/api/users/NAME (or the admin page) if they should not.",
        stale.size(), names);
}

// ---------------------------------------------------------------- users

const hub::UserRecord* Hub::findUser(std::string_view name) const {
    auto it = userIdByName_.find(std::string(name));
    return it == userIdByName_.end() ? nullptr : &usersById_.at(it->second);
}

const hub::UserRecord* Hub::findUserById(int64_t id) const {
    auto it = usersById_.find(id);
    return it == usersById_.end() ? nullptr : &it->second;
}

const hub::UserRecord* Hub::findUserByCookieId(std::string_view cookieId) const {
    auto it = userIdByCookie_.find(std::string(cookieId));
    return it == userIdByCookie_.end() ? nullptr : findUserById(it->second);
}

std::vector<const hub::UserRecord*> Hub::users() const {
    std::vector<const hub::UserRecord*> out;
    out.reserve(usersById_.size());
    for (const auto& [id, u] : usersById_) out.push_back(&u);
    return out;
}

hub::UserRecord& Hub::mutableUser(int64_t id) {
    return usersById_.at(id);
}

Hub::CreateResult Hub::createUsers(const std::vector<std::string>& names, bool admin) {
    CreateResult result;
    std::vector<std::string> toCreate;
    std::set<std::string> seen;
    for (const auto& raw : names) {
        std::string name = hub::normalizeUsername(raw);
        if (auto err = hub::validateUsername(name)) {
            result.status = 400;
            result.error = fmt::format("Invalid username: {}", *err);
            return result;
        }
        if (findUser(name) || !seen.insert(name).second) continue;
        toCreate.push_back(name);
    }
    if (toCreate.empty()) {
        result.status = 409;
        result.error = names.size() == 1
                           ? fmt::format("User {} already exists", hub::normalizeUsername(names[0]))
                           : std::string("All 0 users already exist");
        if (names.size() != 1) result.error = fmt::format("All {} users already exist", names.size());
        return result;
    }
    std::vector<hub::UserRecord> created;
    store_->transaction([&] {
        for (const auto& name : toCreate) created.push_back(store_->createUser(name, admin));
    });
    for (auto& u : created) {
        int64_t id = u.id;
        userIdByName_[u.name] = id;
        userIdByCookie_[u.cookieId] = id;
        auto [it, ok] = usersById_.emplace(id, std::move(u));
        result.created.push_back(&it->second);
    }
    return result;
}

const std::string* Hub::cachedUserModel(int64_t userId, unsigned mask) const {
    auto it = modelCache_.find(userId);
    return it != modelCache_.end() && it->second.mask == mask ? &it->second.json : nullptr;
}

void Hub::cacheUserModel(int64_t userId, unsigned mask, std::string json) {
    modelCache_[userId] = CachedModel{mask, std::move(json)};
}

void Hub::updateUser(const hub::UserRecord& changed) {
    invalidateUser(changed.id);
    hub::UserRecord& current = mutableUser(changed.id);
    store_->updateUser(changed);
    if (current.name != changed.name) {
        userIdByName_.erase(current.name);
        userIdByName_[changed.name] = changed.id;
    }
    if (current.cookieId != changed.cookieId) {
        userIdByCookie_.erase(current.cookieId);
        userIdByCookie_[changed.cookieId] = changed.id;
    }
    current = changed;
}

void Hub::deleteUser(int64_t id) {
    const hub::UserRecord* u = findUserById(id);
    if (!u) return;
    invalidateUser(id);
    store_->deleteUser(id);
    userIdByName_.erase(u->name);
    userIdByCookie_.erase(u->cookieId);
    for (auto it = tokens_.begin(); it != tokens_.end();) {
        if (it->second.userId == id) {
            revokeToken((it++)->first);
        } else {
            ++it;
        }
    }
    for (auto& g : groups_)
        g.users.erase(std::remove(g.users.begin(), g.users.end(), u->name), g.users.end());
    lastPersistedActivity_.erase(id);
    usersById_.erase(id);
}

void Hub::recordActivity(int64_t userId, hub::Timestamp when) {
    auto it = usersById_.find(userId);
    if (it == usersById_.end()) return;
    if (it->second.lastActivity && *it->second.lastActivity >= when) return;
    it->second.lastActivity = when;
    invalidateUser(userId);
    auto& persisted = lastPersistedActivity_[userId];
    if (when - persisted >= kActivityResolution) {
        persisted = when;
        store_->touchUser(userId, when);
    }
}

std::vector<std::string> Hub::groupsOf(std::string_view user) const {
    std::vector<std::string> out;
    for (const auto& g : groups_)
        if (std::find(g.users.begin(), g.users.end(), user) != g.users.end()) out.push_back(g.name);
    return out;
}

std::vector<std::string> Hub::rolesOf(const hub::UserRecord& user) const {
    std::vector<std::string> roles = {"user"};
    if (user.admin) roles.push_back("admin");
    for (const auto& r : user.roles)
        if (std::find(roles.begin(), roles.end(), r) == roles.end()) roles.push_back(r);
    return roles;
}

std::map<std::string, std::vector<std::string>> Hub::groupMembership() const {
    std::map<std::string, std::vector<std::string>> out;
    for (const auto& g : groups_)
        for (const auto& u : g.users) out[u].push_back(g.name);
    return out;
}

// ---------------------------------------------------------------- scopes

namespace {
void addRoleScopes(std::vector<std::string>& out, const std::string& role,
                   const std::map<std::string, hub::RoleRecord>& custom) {
    if (const auto* builtin = builtinRoleScopes(role)) {
        out.insert(out.end(), builtin->begin(), builtin->end());
    } else if (auto it = custom.find(role); it != custom.end()) {
        out.insert(out.end(), it->second.scopes.begin(), it->second.scopes.end());
    }
}
}  // namespace

ScopeSet Hub::userScopes(const hub::UserRecord& user) const {
    std::vector<std::string> raw;
    for (const auto& role : rolesOf(user)) addRoleScopes(raw, role, customRoles_);
    // Admins reach other users' servers only while admin_access is on (3.0).
    if (user.admin && !settings_.adminAccess) {
        std::string own = "access:servers!user=" + user.name;
        for (auto& s : raw)
            if (s == "access:servers") s = own;
    }
    for (const auto& g : groups_)
        if (std::find(g.users.begin(), g.users.end(), user.name) != g.users.end())
            for (const auto& role : g.roles) addRoleScopes(raw, role, customRoles_);
    return expandScopes(raw, ScopeOwner{ScopeOwner::Kind::User, user.name});
}

ScopeSet Hub::serviceScopes(const ServiceInfo& service) const {
    std::vector<std::string> raw;
    for (const auto& role : service.record.roles) addRoleScopes(raw, role, customRoles_);
    return expandScopes(raw, ScopeOwner{ScopeOwner::Kind::Service, service.record.name});
}

ScopeSet Hub::tokenScopes(const hub::TokenRecord& token) const {
    ScopeSet owner;
    ScopeOwner who;
    if (token.userId) {
        const auto* u = findUserById(*token.userId);
        if (!u) return {};
        owner = userScopes(*u);
        who = {ScopeOwner::Kind::User, u->name};
    } else if (token.serviceId) {
        for (const auto& [name, s] : services_)
            if (s.record.id == *token.serviceId) {
                owner = serviceScopes(s);
                who = {ScopeOwner::Kind::Service, name};
            }
    }
    if (std::find(token.scopes.begin(), token.scopes.end(), "inherit") != token.scopes.end()) return owner;
    return intersectScopes(expandScopes(token.scopes, who), owner, groupMembership());
}

// ---------------------------------------------------------------- tokens

Hub::IssuedToken Hub::issueToken(std::optional<int64_t> userId, std::optional<int64_t> serviceId,
                                 std::string note, std::vector<std::string> scopes,
                                 std::optional<double> expiresIn, std::string clientId,
                                 std::string sessionId) {
    IssuedToken out;
    out.token = hub::generateToken();
    auto& rec = out.record;
    rec.userId = userId;
    rec.serviceId = serviceId;
    rec.prefix = hub::tokenPrefix(out.token);
    rec.hashed = hub::hashToken(out.token, hub::kGeneratedTokenRounds);
    rec.clientId = std::move(clientId);
    rec.created = hub::now();
    if (expiresIn && *expiresIn > 0)
        rec.expiresAt = rec.created + std::chrono::microseconds(static_cast<int64_t>(*expiresIn * 1e6));
    rec.note = std::move(note);
    rec.sessionId = std::move(sessionId);
    rec.scopes = scopes.empty() ? std::vector<std::string>{"inherit"} : std::move(scopes);
    rec.id = store_->insertToken(rec);
    tokenIdsByPrefix_.emplace(rec.prefix, rec.id);
    tokens_.emplace(rec.id, rec);
    return out;
}

std::vector<hub::TokenRecord> Hub::tokensOfUser(int64_t userId) const {
    std::vector<hub::TokenRecord> out;
    for (const auto& [id, t] : tokens_)
        if (t.userId == userId) out.push_back(t);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

int Hub::revokeSession(std::string_view sessionId) {
    if (sessionId.empty()) return 0;
    if (subdomains_) subdomains_->sessionEnded(sessionId);
    std::vector<int64_t> ids;
    for (const auto& [id, t] : tokens_)
        if (t.sessionId == sessionId) ids.push_back(id);
    for (int64_t id : ids) revokeToken(id);
    return static_cast<int>(ids.size());
}

const hub::TokenRecord* Hub::findToken(int64_t id) const {
    auto it = tokens_.find(id);
    return it == tokens_.end() ? nullptr : &it->second;
}

void Hub::revokeToken(int64_t id) {
    auto it = tokens_.find(id);
    if (it == tokens_.end()) return;
    store_->deleteToken(id);
    auto range = tokenIdsByPrefix_.equal_range(it->second.prefix);
    for (auto p = range.first; p != range.second; ++p)
        if (p->second == id) {
            tokenIdsByPrefix_.erase(p);
            break;
        }
    for (auto v = verifiedTokens_.begin(); v != verifiedTokens_.end();) {
        if (v->second == id)
            v = verifiedTokens_.erase(v);
        else
            ++v;
    }
    tokens_.erase(it);
}

std::string Hub::tokenOwnerName(const hub::TokenRecord& token) const {
    if (token.userId) {
        const auto* user = findUserById(*token.userId);
        return user ? user->name : std::string();
    }
    for (const auto& [name, s] : services_)
        if (s.record.id == token.serviceId) return "service:" + name;
    return {};
}

const hub::TokenRecord* Hub::lookupToken(std::string_view token, std::string_view source) {
    if (token.size() < 8 || token.size() > 256) return nullptr;
    hub::Timestamp now = hub::now();
    std::string key = sha256Hex(token);
    const hub::TokenRecord* found = nullptr;
    if (auto v = verifiedTokens_.find(key); v != verifiedTokens_.end()) {
        found = findToken(v->second);
    } else {
        auto range = tokenIdsByPrefix_.equal_range(hub::tokenPrefix(token));
        for (auto p = range.first; p != range.second && !found; ++p) {
            const auto& rec = tokens_.at(p->second);
            if (hub::verifyToken(token, rec.hashed)) found = &rec;
        }
        if (found) {
            // Bounded: a flood of distinct valid tokens cannot grow it forever.
            if (verifiedTokens_.size() > 100'000) verifiedTokens_.clear();
            verifiedTokens_[key] = found->id;
        }
    }
    if (!found) return nullptr;
    if (found->expiresAt && *found->expiresAt <= now) {
        revokeToken(found->id);
        return nullptr;
    }
    auto& rec = tokens_.at(found->id);
    if (!rec.lastActivity || now - *rec.lastActivity >= kActivityResolution) {
        rec.lastActivity = now;
        store_->touchToken(rec.id, now);
        // Once per activity_resolution per token: an audit trail of use
        // without a line per request.
        std::string id = "a" + std::to_string(rec.id);
        hub::audit("token.use", {{"token", id}, {"owner", tokenOwnerName(rec)}, {"source", source}});
    }
    return &rec;
}

// ---------------------------------------------------------------- requests

void Hub::replyAfterFailureDelay(std::function<void()> reply) {
    loop_.addTimer(std::chrono::seconds(2), std::move(reply));
}

std::optional<std::chrono::seconds> Hub::loginBlocked(std::string_view source, std::string_view username) {
    if (!settings_.throttleLogins) return std::nullopt;
    auto wait = loginThrottle_.blocked(source, username, std::chrono::steady_clock::now());
    if (wait) {
        hub::logWarning("Login for {} from {} throttled for {} s", hub::safe(username, 64), source,
                        wait->count());
        hub::audit("login.throttled",
                   {{"user", username}, {"source", source}, {"retry_after", std::to_string(wait->count())}});
        metrics::registry().countLogin(metrics::LoginOutcome::Throttled);
    }
    return wait;
}

void Hub::loginFinished(bool ok, std::string_view source, std::string_view username, std::string_view how,
                        std::string_view reason, bool accountLocked) {
    metrics::registry().countLogin(ok              ? metrics::LoginOutcome::Success
                                   : accountLocked ? metrics::LoginOutcome::Locked
                                                   : metrics::LoginOutcome::Failure);
    if (ok) {
        loginThrottle_.succeeded(username);
        hub::audit("login.success", {{"user", username}, {"source", source}, {"via", how}});
        return;
    }
    loginThrottle_.failed(source, username, std::chrono::steady_clock::now());
    hub::audit("login.failure", {{"user", username}, {"source", source}, {"via", how}, {"reason", reason}});
}

hubd::http::ClientView Hub::clientView(const Request& request) const {
    return hubd::http::clientView(request, trustedDownstream_);
}

Origin Hub::originOf(const Request& request) const {
    auto view = clientView(request);
    return Origin{std::move(view.scheme), std::move(view.host)};
}

std::string Hub::loginCookieValue(const hub::UserRecord& user) const {
    return hub::signCookie(
        cookieSecret_, kLoginCookie, user.cookieId,
        std::chrono::duration_cast<std::chrono::seconds>(hub::Clock::now().time_since_epoch()).count());
}

const hub::UserRecord* Hub::cookieUser(const Request& request) {
    std::string_view header = request.header("Cookie");
    if (header.empty()) return nullptr;
    int64_t nowUnix =
        std::chrono::duration_cast<std::chrono::seconds>(hub::Clock::now().time_since_epoch()).count();
    for (const auto& [name, value] : hub::parseCookieHeader(header)) {
        if (name != kLoginCookie) continue;
        auto cookieId =
            hub::verifyCookie(cookieSecret_, kLoginCookie, value, nowUnix, settings_.cookieMaxAgeDays);
        if (!cookieId) continue;
        if (const auto* user = findUserByCookieId(*cookieId)) return user;
    }
    return nullptr;
}

std::string Hub::browserSessionId(const Request& request) {
    for (const auto& [name, value] : hub::parseCookieHeader(request.header("Cookie")))
        if (name == "jupyterhub-session-id" && !value.empty() && value.size() <= 64) return value;
    return {};
}

namespace {
std::string xsrfUserKey(const hub::UserRecord* user) {
    return user ? std::to_string(user->id) : std::string();
}
int64_t unixNow() {
    return std::chrono::duration_cast<std::chrono::seconds>(hub::Clock::now().time_since_epoch()).count();
}
}  // namespace

std::string Hub::xsrfToken(std::string_view sessionId, const hub::UserRecord* user) const {
    return makeXsrfToken(cookieSecret_, sessionId, xsrfUserKey(user), unixNow());
}

bool Hub::xsrfValid(const Request& request, const hub::UserRecord* user, std::string_view formValue) const {
    std::string sessionId = browserSessionId(request);
    // Anonymous forms need a session of their own: without one, a token
    // fetched by an attacker would fit every cookieless browser.
    if (!user && sessionId.empty()) return false;
    std::string token(request.header(kXsrfHeader));
    if (token.empty()) token = request.queryParam(kXsrfField).value_or(std::string(formValue));
    // A posted HTML form. (authenticate() refuses an API POST with a form
    // body anyway: API bodies must be JSON.)
    if (token.empty() && request.method == "POST" &&
        request.header("Content-Type").substr(0, 33) == "application/x-www-form-urlencoded")
        token = parseForm(request.body)[std::string(kXsrfField)];
    if (token.empty()) return false;
    auto maxAge = static_cast<int64_t>(settings_.cookieMaxAgeDays * 86400);
    return xsrfTokenValid(cookieSecret_, sessionId, xsrfUserKey(user), token, unixNow(), maxAge);
}

Principal Hub::authenticate(const Request& request, bool forApi) {
    Principal p;
    std::string_view authz = request.header("Authorization");
    if (!authz.empty()) {
        auto token = tokenFromAuthorization(authz);
        if (!token) return p;
        const hub::TokenRecord* rec = lookupToken(*token, clientView(request).address);
        if (!rec) return p;
        p.tokenId = rec->id;
        p.scopes = tokenScopes(*rec);
        if (rec->userId) {
            const auto* user = findUserById(*rec->userId);
            if (!user) return Principal{};
            p.kind = Principal::Kind::User;
            p.id = user->id;
            p.name = user->name;
            // Server tokens report activity themselves; other token use counts.
            if (rec->note.rfind("Server at ", 0) != 0) recordActivity(user->id, hub::now());
        } else {
            for (const auto& [name, s] : services_)
                if (s.record.id == rec->serviceId) {
                    p.kind = Principal::Kind::Service;
                    p.id = s.record.id;
                    p.name = name;
                }
            if (!p) return Principal{};
        }
        p.admin = isFullAdmin(p.scopes);
        return p;
    }
    const hub::UserRecord* user = cookieUser(request);
    if (!user) return p;
    if (forApi) {
        // The XSRF token is the proof of origin; Referer, Origin and
        // Sec-Fetch-* are not (CVE-2026-40864).
        if (!xsrfValid(request, user)) return p;
        std::string_view ct = request.header("Content-Type");
        if (request.method == "POST" && !ct.empty() && ct.substr(0, 16) != "application/json") return p;
    }
    p.kind = Principal::Kind::User;
    p.id = user->id;
    p.name = user->name;
    p.viaCookie = true;
    p.scopes = userScopes(*user);
    p.admin = isFullAdmin(p.scopes);
    recordActivity(user->id, hub::now());
    return p;
}

// ---------------------------------------------------------------- proxy
// Added with the proxy engine (issue 4). Service routes: like JupyterHub,
// <base_url>services/<name>/ goes to a service's url without hub auth (the
// service authenticates). User routes: the hub decides (mayUseUserRoute),
// then hands the request to the proxy.

void Hub::addServiceRoutes() {
    for (const auto& [name, service] : services_) {
        if (service.url.empty()) continue;
        std::string error;
        if (!proxy_->routes().add(settings_.baseUrl + "services/" + name + "/", service.url, &error))
            hub::logWarning("service {} is not proxied: {}", name, error);
    }
}

bool Hub::addUserRoute(std::string_view user, std::string_view targetUrl, std::string* error) {
    // https (internal TLS): the server's certificate must name this user.
    const auto start = std::chrono::steady_clock::now();
    const bool added =
        proxy_->routes().add(settings_.baseUrl + "user/" + std::string(user) + "/", targetUrl, error, user);
    metrics::registry().observeProxyAdd(added ? metrics::OpStatus::Success : metrics::OpStatus::Failure,
                                        metrics::since(start));
    return added;
}

void Hub::setInternalTls(std::shared_ptr<const InternalTls> tls) {
    internalTls_ = std::move(tls);
    proxy_->setUpstreamTls(internalTls_ ? internalTls_->clientContext() : nullptr);
}

bool Hub::removeUserRoute(std::string_view user) {
    const auto start = std::chrono::steady_clock::now();
    const bool removed = proxy_->routes().remove(settings_.baseUrl + "user/" + std::string(user) + "/");
    // Every stop asks, routed or not; only a route that existed was deleted.
    if (removed) metrics::registry().observeProxyDelete(metrics::OpStatus::Success, metrics::since(start));
    return removed;
}

// Defense in depth that JupyterHub lacks (docs/security-model.md): a request
// reaches owner's server only with credentials for it — a token holding
// access:servers for that server, or the hub session of a user who may use
// it (the owner; an admin only while admin_access is on). Everyone else gets
// the hub's own answer from handle() and never touches the server.
bool Hub::mayUseUserRoute(const Request& request, std::string_view owner) {
    Resource target{std::string(owner), groupsOf(owner), std::string(owner) + "/", {}, {}};
    if (!request.header("Authorization").empty()) {
        Principal p = authenticate(request, false);
        if (p && holds(p.scopes, "access:servers", target)) return true;
        // Not a hub token for this server (it may be one for the server
        // itself): the browser's session below still decides.
    }
    const hub::UserRecord* user = userSessionUser(request);
    if (!user) return false;
    if (user->name == owner) return true;
    return holds(userScopes(*user), "access:servers", target);
}

const hub::UserRecord* Hub::userSessionUser(const Request& request) {
    std::string_view header = request.header("Cookie");
    if (header.empty()) return nullptr;
    int64_t nowUnix =
        std::chrono::duration_cast<std::chrono::seconds>(hub::Clock::now().time_since_epoch()).count();
    for (const auto& [name, value] : hub::parseCookieHeader(header)) {
        if (name != kUserSessionCookie) continue;
        auto cookieId =
            hub::verifyCookie(cookieSecret_, kUserSessionCookie, value, nowUnix, settings_.cookieMaxAgeDays);
        if (!cookieId) continue;
        if (const auto* user = findUserByCookieId(*cookieId)) return user;
    }
    return nullptr;
}

std::string Hub::userSessionCookieValue(const hub::UserRecord& user) const {
    return hub::signCookie(
        cookieSecret_, kUserSessionCookie, user.cookieId,
        std::chrono::duration_cast<std::chrono::seconds>(hub::Clock::now().time_since_epoch()).count());
}

void Hub::handleHead(hubd::http::HeadContext& context) {
    auto match = proxy_->routes().lookup(context.request.path);
    if (!match) return;  // the hub's own request: handle(), body buffered
    std::string userPrefix = settings_.baseUrl + "user/";
    std::function<void()> onTraffic;
    if (match->prefix.compare(0, userPrefix.size(), userPrefix) == 0) {
        std::string_view owner = std::string_view(match->prefix).substr(userPrefix.size());
        owner = owner.substr(0, owner.find('/'));
        const bool allowed = subdomains_ ? subdomains_->mayUseUserRoute(context.request, owner)
                                         : mayUseUserRoute(context.request, owner);
        if (!allowed) return;
        // Traffic through the proxy is activity (issue 4), throttled on its
        // way to the database like every other activity report.
        if (const hub::UserRecord* u = findUser(owner)) {
            recordActivity(u->id, hub::now());
            // So are the frames of a long-lived WebSocket (a notebook's kernel
            // channel) and a long stream, reported by the proxy while they flow.
            onTraffic = [this, id = u->id] { recordActivity(id, hub::now()); };
        }
    } else if (subdomains_ && subdomains_->onUserHost(context.request)) {
        return;  // a user's host serves that user's server and nothing else
    }
    proxy_->forward(context, std::move(match->target), std::move(onTraffic));
}

void Hub::handle(Request& request, Responder responder) {
    timeHubRequest(*this, request, responder);  // jupyterhub_request_duration_seconds
    if (subdomains_ && subdomains_->handle(request, responder)) return;
    const std::string& path = request.path;
    const std::string& base = settings_.baseUrl;
    std::string hubNoSlash = hubPrefix_.substr(0, hubPrefix_.size() - 1);
    if (path == hubNoSlash) {
        responder.send(redirect(301, hubPrefix_));
        return;
    }
    if (path.compare(0, hubPrefix_.size(), hubPrefix_) == 0) {
        std::string_view rest = std::string_view(path).substr(hubPrefix_.size() - 1);  // "/api/users"
        if (rest == "/api" || rest.substr(0, 5) == "/api/") {
            api_->handle(rest.substr(4), request, std::move(responder));
        } else {
            pages_->handle(rest, request, std::move(responder));
        }
        return;
    }
    if (path.compare(0, base.size(), base) == 0 && request.rawPath.compare(0, base.size(), base) == 0) {
        // Redirect targets are built from the path as sent, so they stay encoded.
        std::string_view rest = std::string_view(request.rawPath).substr(base.size());
        if (rest.substr(0, 5) == "user/") {
            // A user's server: the proxy lands with issue 4; until then the
            // hub explains that it is not running.
            std::string target = hubPrefix_ + std::string(rest);
            if (!request.query.empty()) target += "?" + request.query;
            responder.send(redirect(302, target));
            return;
        }
        // Like JupyterHub's PrefixRedirectHandler: everything else is a hub page.
        std::string target = hubPrefix_ + std::string(rest);
        if (!request.query.empty()) target += "?" + request.query;
        responder.send(redirect(302, target));
        return;
    }
    pages_->notFound(request, std::move(responder));
}

}  // namespace hubd
