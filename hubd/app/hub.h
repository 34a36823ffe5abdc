// SPDX-License-Identifier: BSD-3-Clause
// The hub's in-memory view of users, tokens, roles and services, kept in
// step with the state database (write-through), and the request router.
//
// Threading: everything here runs on the event-loop thread; only
// Authenticator::authenticate runs elsewhere (a worker, or a sign-in's own
// thread: app/login_conversation.h).
//
// MUST: a request is attributed to a principal only through a verified
// token (Authorization header) or a verified login cookie; API calls that
// rely on the cookie must also pass the same-origin check.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "app/login_throttle.h"
#include "app/scopes.h"
#include "app/servers.h"
#include "http/forwarded.h"
#include "http/server.h"
#include "hubcore/auth.h"
#include "hubcore/config.h"
#include "hubcore/store.h"
#include "internal_tls.h"
#include "proxy/proxy.h"

namespace hubd {

struct Principal {
    enum class Kind { None, User, Service } kind = Kind::None;
    int64_t id = 0;
    std::string name;
    ScopeSet scopes;
    std::optional<int64_t> tokenId;
    bool viaCookie = false;
    bool admin = false;  // holds every scope of the admin role (isFullAdmin)

    explicit operator bool() const { return kind != Kind::None; }
};

class Subdomains;
class IdleCuller;

struct ServiceInfo {
    hub::ServiceRecord record;
    std::string url;
};

// Where a request came in, for URLs and redirects.
struct Origin {
    std::string scheme;  // http / https
    std::string host;    // Host header
};

class Hub {
public:
    Hub(hub::Settings settings, std::unique_ptr<hub::Store> store, std::unique_ptr<hub::Authenticator> auth,
        std::string cookieSecret, hubd::http::EventLoop& loop, hubd::http::WorkerPool& workers);
    ~Hub();

    // Applies configuration to the database (roles, users, services,
    // tokens) and loads the caches. Returns error sentences; start-up stops
    // if any. Warnings are logged.
    std::vector<std::string> start();

    void handle(hubd::http::Request& request, hubd::http::Responder responder);

    // --- proxy (issue 4; hubd/proxy/) ---
    // HeadHandler of the public server: a request for a proxied route is
    // taken over here, at head time, so its body streams; everything else
    // continues to handle().
    void handleHead(hubd::http::HeadContext& context);
    hubd::proxy::Proxy& proxy() { return *proxy_; }
    // Route <base_url>user/<name>/ to a running server (the spawner calls
    // these). Requests reach it only through mayUseUserRoute().
    bool addUserRoute(std::string_view user, std::string_view targetUrl, std::string* error = nullptr);
    bool removeUserRoute(std::string_view user);

    // --- state, used by the API and the pages ---
    const hub::Settings& settings() const { return settings_; }
    hub::Store& store() { return *store_; }
    hub::Authenticator& authenticator() { return *auth_; }
    hubd::http::EventLoop& loop() { return loop_; }
    hubd::http::WorkerPool& workers() { return workers_; }
    const std::string& hubPrefix() const { return hubPrefix_; }  // "/hub/" under base_url
    const std::string& baseUrl() const { return settings_.baseUrl; }

    const hub::UserRecord* findUser(std::string_view name) const;
    const hub::UserRecord* findUserById(int64_t id) const;
    const hub::UserRecord* findUserByCookieId(std::string_view cookieId) const;
    // All users in creation order.
    std::vector<const hub::UserRecord*> users() const;
    // Validates and creates users in one transaction. Error sentence on failure.
    struct CreateResult {
        std::vector<const hub::UserRecord*> created;
        std::string error;
        int status = 201;
    };
    CreateResult createUsers(const std::vector<std::string>& names, bool admin);
    // After an allowed sign-in (any authenticator), app/hub_users.cpp: adds a
    // first-time user, or sets admin, which admin_users and admin_groups decide
    // at every login (JupyterHub 3.0). nullptr with `error` if the database refused.
    const hub::UserRecord* recordLogin(const std::string& name, const hub::UserRecord* existing, bool admin,
                                       std::string& error);
    // An admin's request to add users (POST /hub/api/users, the admin page),
    // app/hub_users.cpp: which names can be added, and why each other one
    // cannot (invalid 400, already a user or listed twice 409, no Unix account
    // under PAM 400). Pass `toAdd` to createUsers.
    struct NewUsersCheck {
        struct Refusal {
            std::string name;    // as given: untrusted, escape it
            std::string reason;  // a sentence with the fix
            int status = 400;
        };
        std::vector<std::string> toAdd;  // normalised
        std::vector<Refusal> refused;
    };
    NewUsersCheck checkNewUsers(const std::vector<std::string>& names) const;
    void updateUser(const hub::UserRecord& changed);
    void deleteUser(int64_t id);
    void recordActivity(int64_t userId, hub::Timestamp when);

    // Serialised user models, reused while the user is unchanged: listing
    // 100 users is the API's hottest call. `mask` names the visible keys.
    const std::string* cachedUserModel(int64_t userId, unsigned mask) const;
    void cacheUserModel(int64_t userId, unsigned mask, std::string json);

    const std::vector<hub::GroupRecord>& groups() const { return groups_; }
    std::vector<std::string> groupsOf(std::string_view user) const;
    std::vector<std::string> rolesOf(const hub::UserRecord& user) const;
    // Groups API (app/hub_groups.cpp); callers check names and members first.
    const hub::GroupRecord* findGroup(std::string_view name) const;
    void createGroups(const std::vector<std::string>& names, const std::vector<int64_t>& memberIds);
    void deleteGroup(int64_t groupId);
    void setGroupMembers(int64_t groupId, const std::vector<int64_t>& memberIds);
    void setGroupProperties(int64_t groupId, const std::string& json);
    // Reloads groups from the database after a change to memberships
    // (also through updateUser) and drops every cached model.
    void groupsChanged();
    bool roleExists(std::string_view role) const;
    std::vector<std::string> roleScopes(std::string_view role) const;  // raw, as configured
    // POST /api/shutdown (app/hub_shutdown.cpp): answers have gone out, then
    // the event loop stops; servers keep running unless stopServers.
    void shutdown(bool stopServers);

    // Tokens
    struct IssuedToken {
        std::string token;
        hub::TokenRecord record;
    };
    IssuedToken issueToken(std::optional<int64_t> userId, std::optional<int64_t> serviceId, std::string note,
                           std::vector<std::string> scopes, std::optional<double> expiresInSeconds,
                           std::string clientId = "jupyterhub", std::string sessionId = {});
    // Revokes every token issued to one browser session (logout).
    int revokeSession(std::string_view sessionId);
    std::vector<hub::TokenRecord> tokensOfUser(int64_t userId) const;
    const hub::TokenRecord* findToken(int64_t id) const;
    void revokeToken(int64_t id);
    // A user's request for an API token, app/hub_tokens.cpp: the one path
    // POST /hub/api/users/:name/tokens and the token page (/hub/token) share,
    // so both check, issue, log and audit alike. `via` names the way in
    // ("api", "token-page"); `source` is the client's address.
    struct TokenRequest {
        std::string note;                 // empty: "Requested via <via> by user <name>"
        std::vector<std::string> scopes;  // raw; none (and no roles): the owner's own
        std::vector<std::string> roles;   // built-in role names (3.0's "roles" key)
        std::optional<double> expiresIn;  // seconds; none: never expires
    };
    struct TokenOutcome {
        std::optional<IssuedToken> issued;
        std::string error;  // why nothing was issued (status 400), a sentence with the fix
    };
    TokenOutcome requestUserToken(const hub::UserRecord& owner, TokenRequest request, const Principal& by,
                                  std::string_view source, std::string_view via);
    // Revokes one of `owner`'s tokens (an OAuth token: all of its client's
    // tokens for that user, as 3.0), logs and audits it. False, nothing
    // changed, if the id is not one of owner's tokens.
    bool revokeUserToken(const hub::UserRecord& owner, int64_t tokenId, const Principal& by,
                         std::string_view source, std::string_view via);

    // Scopes of a user (roles + groups' roles) and of a token.
    ScopeSet userScopes(const hub::UserRecord& user) const;
    ScopeSet serviceScopes(const ServiceInfo& service) const;
    ScopeSet tokenScopes(const hub::TokenRecord& token) const;
    std::map<std::string, std::vector<std::string>> groupMembership() const;

    // Runs reply after the failed-login delay (2 s, like pam_faildelay's
    // default) on a timer, so a guessing client waits without holding a thread.
    void replyAfterFailureDelay(std::function<void()> reply);
    // Login throttling (JupyterHub.throttle_logins, app/login_throttle.h):
    // seconds this attempt must wait, or nullopt to go ahead. `source` is
    // clientView(request).address, so clients behind a trusted proxy are
    // told apart. The outcome of each attempt goes to loginFinished, which
    // also writes the audit line and counts it (hubd_logins_total; `accountLocked`:
    // PAM said the account is locked, app/metrics.h).
    std::optional<std::chrono::seconds> loginBlocked(std::string_view source, std::string_view username);
    void loginFinished(bool ok, std::string_view source, std::string_view username, std::string_view how,
                       std::string_view reason = {}, bool accountLocked = false);
    const LoginThrottle& loginThrottle() const { return loginThrottle_; }

    // Who is asking. `forApi`: a login cookie counts only with a valid XSRF
    // token (header or _xsrf parameter) and, for POST, a JSON body.
    Principal authenticate(const hubd::http::Request& request, bool forApi);
    // XSRF (app/xsrf.h). The browser session is the jupyterhub-session-id
    // cookie; `user` is who the page is for (nullptr: anonymous).
    static std::string browserSessionId(const hubd::http::Request& request);
    std::string xsrfToken(std::string_view sessionId, const hub::UserRecord* user) const;
    // The token in X-XSRFToken, in the _xsrf query parameter, or in the _xsrf
    // field of a posted form fits this request's session and user. A caller
    // that parsed the form already passes the field as `formValue`.
    bool xsrfValid(const hubd::http::Request& request, const hub::UserRecord* user,
                   std::string_view formValue = {}) const;
    // The user of a valid login cookie, or nullptr.
    const hub::UserRecord* cookieUser(const hubd::http::Request& request);
    std::string loginCookieValue(const hub::UserRecord& user) const;
    // The same session for /user/ paths (cookie hubd-user-session).
    std::string userSessionCookieValue(const hub::UserRecord& user) const;
    const hub::UserRecord* userSessionUser(const hubd::http::Request& request);

    const std::map<std::string, ServiceInfo>& services() const { return services_; }

    // Servers
    ServerManager& servers() { return *servers_; }
    // JupyterHub.subdomain_host (app/subdomains.h); nullptr when unset.
    Subdomains* subdomains() const { return subdomains_.get(); }
    // The hub API URL single-user servers call (JUPYTERHUB_API_URL), no trailing slash.
    const std::string& internalApiUrl() const { return internalApiUrl_; }
    void setInternalApiUrl(std::string url) { internalApiUrl_ = std::move(url); }
    // Internal TLS (JupyterHub.internal_ssl), null when off; main sets it
    // before start() (reattached servers are probed over TLS).
    void setInternalTls(std::shared_ptr<const InternalTls> tls);
    const InternalTls* internalTls() const { return internalTls_.get(); }
    // A server started, became ready or stopped: drop cached models (and routes).
    void serverChanged(int64_t userId);

    // The client's address, scheme and host: X-Forwarded-* only from
    // JupyterHub.trusted_downstream_ips (http/forwarded.h).
    hubd::http::ClientView clientView(const hubd::http::Request& request) const;
    // Scheme and host the client used, for absolute URLs and Referer checks.
    Origin originOf(const hubd::http::Request& request) const;

private:
    void loadCaches();
    std::vector<std::string> applyRoles();
    std::vector<std::string> applyUsers();
    std::vector<std::string> applyServices();
    void warnAboutDisallowedUsers();
    const hub::TokenRecord* lookupToken(std::string_view token, std::string_view source);
    std::string tokenOwnerName(const hub::TokenRecord& token) const;
    hub::UserRecord& mutableUser(int64_t id);
    void addServiceRoutes();
    bool mayUseUserRoute(const hubd::http::Request& request, std::string_view owner);

    hub::Settings settings_;
    std::unique_ptr<hub::Store> store_;
    std::unique_ptr<hub::Authenticator> auth_;
    std::string cookieSecret_;
    hubd::http::EventLoop& loop_;
    hubd::http::WorkerPool& workers_;
    std::string hubPrefix_;
    hub::IpNetworkList trustedDownstream_;  // JupyterHub.trusted_downstream_ips
    LoginThrottle loginThrottle_;

    std::map<int64_t, hub::UserRecord> usersById_;  // ordered by id = creation order
    std::unordered_map<std::string, int64_t> userIdByName_;
    std::unordered_map<std::string, int64_t> userIdByCookie_;
    std::vector<hub::GroupRecord> groups_;
    std::map<std::string, hub::RoleRecord> customRoles_;
    std::map<std::string, ServiceInfo> services_;
    std::unordered_map<int64_t, hub::TokenRecord> tokens_;
    std::unordered_multimap<std::string, int64_t> tokenIdsByPrefix_;
    // SHA-256 of a verified token -> token id. User-provided tokens are hashed
    // with 16384 rounds, so re-verifying on every request would cost ~1 ms.
    std::unordered_map<std::string, int64_t> verifiedTokens_;
    std::unordered_map<int64_t, hub::Timestamp> lastPersistedActivity_;
    struct CachedModel {
        unsigned mask = 0;
        std::string json;
    };
    // Dropped by every change to the user (invalidateUser) or to groups and
    // roles (all of it).
    std::unordered_map<int64_t, CachedModel> modelCache_;
    void invalidateUser(int64_t id) { modelCache_.erase(id); }

    bool shuttingDown_ = false;
    std::string internalApiUrl_;
    std::shared_ptr<const InternalTls> internalTls_;
    std::unique_ptr<ServerManager> servers_;
    std::unique_ptr<IdleCuller> culler_;  // IdleCuller.* (app/idle_culler.h); null when off

    class Api;
    class Pages;
    std::unique_ptr<Api> api_;
    std::unique_ptr<Pages> pages_;
    std::unique_ptr<Subdomains> subdomains_;
    std::unique_ptr<hubd::proxy::Proxy> proxy_;  // last: its exchanges go first
};

// Shared response helpers.
hubd::http::Response jsonResponse(int status, std::string body);
hubd::http::Response jsonError(int status, std::string_view message);
hubd::http::Response redirect(int status, std::string location);
// Every byte that is not alphanumeric or in `keep` as %XX.
std::string percentEncode(std::string_view s, std::string_view keep);
std::string urlEncode(std::string_view s);  // keeps "-_.~/"
std::string urlDecode(std::string_view s, bool plusAsSpace);
std::map<std::string, std::string> parseForm(std::string_view body);
std::string htmlEscape(std::string_view s);
std::string sha256Hex(std::string_view data);

}  // namespace hubd
