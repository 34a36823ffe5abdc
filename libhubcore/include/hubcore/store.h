// SPDX-License-Identifier: BSD-3-Clause
// The state database: a narrow interface over SQLite3.
//
// MUST: every secret (API tokens, OAuth client secrets, OAuth codes) is stored
// only as a salted hash; nothing read from the database lets anyone
// authenticate. MUST: schema changes go through numbered migrations; a
// database written by a newer hubd is refused, never modified.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hubcore/time.h"

struct sqlite3;

namespace hub {

struct UserRecord {
    int64_t id = 0;
    std::string name;
    bool admin = false;
    Timestamp created;
    std::optional<Timestamp> lastActivity;
    std::string cookieId;            // random; the content of the login cookie
    std::vector<std::string> roles;  // role names
    std::vector<std::string> groups;
};

struct ServiceRecord {
    int64_t id = 0;
    std::string name;
    bool admin = false;
    std::vector<std::string> roles;
};

struct TokenRecord {
    int64_t id = 0;                 // API id is "a<id>"
    std::optional<int64_t> userId;  // exactly one of userId / serviceId is set
    std::optional<int64_t> serviceId;
    std::string prefix;  // first 4 characters of the token
    std::string hashed;  // "sha512:<rounds>:<salt>:<hex digest>"
    std::string clientId = "jupyterhub";
    std::string sessionId;
    Timestamp created;
    std::optional<Timestamp> expiresAt;
    std::optional<Timestamp> lastActivity;
    std::string note;
    std::vector<std::string> scopes;  // raw, unexpanded (e.g. "access:servers!user")
};

struct RoleRecord {
    std::string name;
    std::string description;
    std::vector<std::string> scopes;
};

struct GroupRecord {
    int64_t id = 0;
    std::string name;
    std::vector<std::string> users;
    std::vector<std::string> roles;
    std::string properties = "{}";  // JSON object, as the API sent it
};

// A user's server (JupyterHub's "spawner" row). Holds what is needed to
// reattach after a restart.
struct ServerRecord {
    int64_t id = 0;
    int64_t userId = 0;
    std::string name;     // "" = default server
    bool active = false;  // JupyterHub's server_id != NULL
    std::string url;      // e.g. http://127.0.0.1:51234
    std::string baseUrl;  // e.g. /user/alice/
    std::string state;    // JSON, spawner-specific (pid, start time, ...)
    std::optional<Timestamp> started;
    std::optional<Timestamp> lastActivity;
    std::string userOptions = "{}";  // JSON
};

struct OAuthClientRecord {
    std::string identifier;  // jupyterhub-user-alice
    std::string description;
    std::string secretHash;  // hashed like a token
    std::string redirectUri;
    std::vector<std::string> allowedScopes;
};

struct OAuthCodeRecord {
    int64_t id = 0;
    std::string clientId;
    std::string codeHash;   // hashed; the code itself is never stored
    int64_t expiresAt = 0;  // unix seconds
    std::string redirectUri;
    std::string sessionId;
    int64_t userId = 0;
    std::vector<std::string> scopes;
};

// Thrown only for conditions a caller cannot handle locally (I/O error,
// corrupt database, newer schema); see docs/error-policy.md.
class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class Store {
public:
    // The schema version this build writes.
    static int currentSchemaVersion();

    // Opens (creating if needed) and migrates. Sets WAL, foreign_keys=ON,
    // busy_timeout. Throws StoreError with a sentence naming the file and
    // the fix (e.g. "jupyterhub.sqlite has schema version 7 but this hubd
    // knows up to 3: upgrade hubd or restore a backup").
    static std::unique_ptr<Store> open(const std::string& path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Runs fn inside BEGIN IMMEDIATE / COMMIT (ROLLBACK if fn throws).
    template <typename Fn>
    void transaction(Fn&& fn);
    void begin();
    void commit();
    void rollback();

    // users
    std::vector<UserRecord> allUsers();
    std::optional<UserRecord> findUser(std::string_view name);
    std::optional<UserRecord> findUserById(int64_t id);
    // Creates with a fresh cookie id; throws StoreError if the name exists.
    UserRecord createUser(std::string_view name, bool admin);
    void updateUser(const UserRecord& user);  // name, admin, last_activity, cookie_id, roles, groups
    void deleteUser(int64_t id);              // cascades to tokens, servers, codes
    void touchUser(int64_t id, Timestamp when);

    // services (from JupyterHub.services; rows persist like users)
    std::vector<ServiceRecord> allServices();
    ServiceRecord ensureService(std::string_view name, bool admin);
    void deleteService(int64_t id);

    // roles and role assignment
    std::vector<RoleRecord> allRoles();
    void upsertRole(const RoleRecord& role);
    void setUserRoles(int64_t userId, const std::vector<std::string>& roles);
    void setServiceRoles(int64_t serviceId, const std::vector<std::string>& roles);
    void setGroupRoles(int64_t groupId, const std::vector<std::string>& roles);

    // groups
    std::vector<GroupRecord> allGroups();
    GroupRecord createGroup(std::string_view name);
    void deleteGroup(int64_t id);
    void setGroupMembers(int64_t groupId, const std::vector<int64_t>& userIds);
    void setGroupProperties(int64_t groupId, std::string_view propertiesJson);

    // tokens
    int64_t insertToken(const TokenRecord& token);  // returns id
    std::vector<TokenRecord> tokensWithPrefix(std::string_view prefix);
    std::vector<TokenRecord> tokensOfUser(int64_t userId);
    std::vector<TokenRecord> tokensOfService(int64_t serviceId);
    std::optional<TokenRecord> findToken(int64_t id);
    void deleteToken(int64_t id);
    void deleteTokensOfClient(int64_t userId, std::string_view clientId);
    void touchToken(int64_t id, Timestamp when);
    int purgeExpiredTokens(Timestamp now);

    // servers
    std::vector<ServerRecord> allServers();
    std::optional<ServerRecord> findServer(int64_t userId, std::string_view name);
    ServerRecord saveServer(const ServerRecord& server);  // insert (id==0) or update
    void deleteServer(int64_t id);

    // OAuth
    void upsertOAuthClient(const OAuthClientRecord& client);
    std::optional<OAuthClientRecord> findOAuthClient(std::string_view identifier);
    void deleteOAuthClient(std::string_view identifier);
    int64_t insertOAuthCode(const OAuthCodeRecord& code);
    std::vector<OAuthCodeRecord> oauthCodesOfClient(std::string_view clientId);
    void deleteOAuthCode(int64_t id);
    int purgeExpiredOAuthCodes(int64_t nowUnix);

    sqlite3* handle() { return db_; }

private:
    struct Impl;  // prepared-statement cache and transaction nesting (store.cpp)
    explicit Store(sqlite3* db);
    sqlite3* db_;
    std::unique_ptr<Impl> impl_;
};

template <typename Fn>
void Store::transaction(Fn&& fn) {
    begin();
    try {
        fn();
    } catch (...) {
        rollback();
        throw;
    }
    commit();
}

}  // namespace hub
