// SPDX-License-Identifier: BSD-3-Clause
// Tests for hubcore/store.h: migrations, refusals, CRUD, cascades, transactions, no secrets at rest.

#include <doctest/doctest.h>

#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "hubcore/store.h"
#include "hubcore/token.h"

using namespace hub;
namespace fs = std::filesystem;

namespace {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "hubd-store-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

std::string readAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void writeAll(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
}

// Runs SQL on the store's own connection (for set-up and inspection).
void sql(Store& s, const std::string& text) {
    char* err = nullptr;
    const int rc = sqlite3_exec(s.handle(), text.c_str(), nullptr, nullptr, &err);
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    if (rc != SQLITE_OK) throw std::runtime_error(msg);
}

std::string scalar(Store& s, const std::string& text) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(s.handle(), text.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
}

// Creates a plain SQLite file outside of Store, for the refusal tests.
void makeForeignDb(const std::string& path, const char* ddl) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, ddl, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
}

std::string storeErrorOf(const std::string& path) {
    try {
        Store::open(path);
    } catch (const StoreError& e) {
        return e.what();
    }
    return "";
}

TokenRecord tokenFor(int64_t userId, const std::string& plain, std::vector<std::string> scopes = {}) {
    TokenRecord t;
    t.userId = userId;
    t.prefix = tokenPrefix(plain);
    t.hashed = hashToken(plain, kGeneratedTokenRounds);
    t.created = now();
    t.scopes = std::move(scopes);
    return t;
}

int mode(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return int(st.st_mode & 0777);
}

bool contains(const std::string& haystack, const std::string& needle) {
    return !needle.empty() && haystack.find(needle) != std::string::npos;
}

std::string hexOf(const std::string& s) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : s) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string bytesOfHex(const std::string& hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

std::string tableQuery(const char* table) {
    return std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '") + table + "'";
}

std::string countForUser(const char* table, int64_t userId) {
    return std::string("SELECT count(*) FROM ") + table + " WHERE user_id = " + std::to_string(userId);
}

}  // namespace

TEST_CASE("open migrates an empty file and sets the pragmas") {
    TempDir dir;
    const std::string path = dir.file("hub.sqlite");
    auto s = Store::open(path);
    CHECK(Store::currentSchemaVersion() == 2);
    CHECK(scalar(*s, "SELECT version FROM hubd_schema") == std::to_string(Store::currentSchemaVersion()));
    CHECK(scalar(*s, "SELECT count(*) FROM hubd_schema") == "1");
    CHECK(scalar(*s, "PRAGMA journal_mode") == "wal");
    CHECK(scalar(*s, "PRAGMA foreign_keys") == "1");
    CHECK(scalar(*s, "PRAGMA busy_timeout") == "5000");
    CHECK(scalar(*s, "PRAGMA synchronous") == "1");  // NORMAL
    for (const char* table :
         {"users", "servers", "services", "api_tokens", "oauth_clients", "oauth_codes", "roles", "groups",
          "user_role_map", "service_role_map", "group_role_map", "user_group_map"}) {
        CAPTURE(table);
        CHECK(scalar(*s, tableQuery(table)) == "1");
    }
    CHECK(scalar(*s, "SELECT count(*) FROM sqlite_master WHERE name = 'ix_api_tokens_prefix'") == "1");
    // JupyterHub's own OAuth client exists so ordinary tokens can reference it.
    REQUIRE(s->findOAuthClient("jupyterhub"));
    CHECK(s->findOAuthClient("jupyterhub")->secretHash.empty());

    // The state file and its WAL companions are private to hubd.
    s->createUser("alice", false);
    CHECK(mode(path) == 0600);
    CHECK(mode(path + "-wal") == 0600);
    CHECK(mode(path + "-shm") == 0600);
}

TEST_CASE("open tightens an existing world-readable file") {
    TempDir dir;
    const std::string path = dir.file("hub.sqlite");
    writeAll(path, "");
    ::chmod(path.c_str(), 0644);
    auto s = Store::open(path);
    CHECK(mode(path) == 0600);
}

TEST_CASE("reopening is idempotent") {
    TempDir dir;
    const std::string path = dir.file("hub.sqlite");
    {
        auto s = Store::open(path);
        s->createUser("alice", true);
    }
    for (int i = 0; i < 3; ++i) {
        auto s = Store::open(path);
        CHECK(scalar(*s, "SELECT version FROM hubd_schema") == std::to_string(Store::currentSchemaVersion()));
        CHECK(scalar(*s, "SELECT count(*) FROM hubd_schema") == "1");
        CHECK(scalar(*s, "SELECT count(*) FROM oauth_clients WHERE identifier = 'jupyterhub'") == "1");
        auto users = s->allUsers();
        REQUIRE(users.size() == 1);
        CHECK(users[0].name == "alice");
        CHECK(users[0].admin);
    }
}

TEST_CASE("a database from a newer hubd is refused and left untouched") {
    TempDir dir;
    const std::string path = dir.file("hub.sqlite");
    {
        auto s = Store::open(path);
        sql(*s, "UPDATE hubd_schema SET version = 999");
    }
    const std::string before = readAll(path);
    const std::string msg = storeErrorOf(path);
    CHECK(msg ==
          path +
              " was written by a newer hubd (schema version 999; this hubd knows up to 2): upgrade hubd, "
              "or restore the backup taken before the upgrade");
    CHECK(readAll(path) == before);
    CHECK(storeErrorOf(path) == msg);  // still refused the second time
}

TEST_CASE("files that are not hubd databases are refused") {
    TempDir dir;
    SUBCASE("not SQLite at all") {
        const std::string path = dir.file("notes.txt");
        const std::string text(4096, 'x');
        writeAll(path, text);
        const std::string msg = storeErrorOf(path);
        CHECK(contains(msg, path));
        CHECK(contains(msg, "is not a SQLite database"));
        CHECK(contains(msg, "move this file away"));
        CHECK(readAll(path) == text);
    }
    SUBCASE("a short non-SQLite file") {
        const std::string path = dir.file("short.sqlite");
        writeAll(path, "hello\n");
        const std::string msg = storeErrorOf(path);
        CHECK(contains(msg, path));
        CHECK(contains(msg, "not a SQLite database"));
    }
    SUBCASE("a JupyterHub database") {
        const std::string path = dir.file("jupyterhub.sqlite");
        makeForeignDb(path,
                      "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY);"
                      "INSERT INTO alembic_version VALUES ('651f5419b74d');"
                      "CREATE TABLE users (id INTEGER PRIMARY KEY, name VARCHAR(255));");
        const std::string before = readAll(path);
        const std::string msg = storeErrorOf(path);
        CHECK(contains(msg, path));
        CHECK(contains(msg, "is a JupyterHub database"));
        CHECK(readAll(path) == before);
    }
    SUBCASE("another program's SQLite database") {
        const std::string path = dir.file("other.sqlite");
        makeForeignDb(path, "CREATE TABLE things (x);");
        const std::string before = readAll(path);
        const std::string msg = storeErrorOf(path);
        CHECK(contains(msg, path));
        CHECK(contains(msg, "another program"));
        CHECK(contains(msg, "things"));
        CHECK(readAll(path) == before);
    }
    SUBCASE("a damaged version table") {
        const std::string path = dir.file("damaged.sqlite");
        makeForeignDb(path,
                      "CREATE TABLE hubd_schema (version INTEGER); INSERT INTO hubd_schema VALUES (1), (1);");
        CHECK(contains(storeErrorOf(path), "damaged hubd_schema"));
    }
    SUBCASE("a missing directory") {
        const std::string path = dir.file("no/such/dir/hub.sqlite");
        const std::string msg = storeErrorOf(path);
        CHECK(contains(msg, path));
        CHECK(contains(msg, "directory"));
    }
    SUBCASE("no path") {
        CHECK(contains(storeErrorOf(""), "db_url"));
    }
}

TEST_CASE("users") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    const Timestamp before = now();
    UserRecord alice = s->createUser("alice", false);
    CHECK(alice.id > 0);
    CHECK(alice.name == "alice");
    CHECK_FALSE(alice.admin);
    CHECK(alice.cookieId.size() == 32);
    CHECK(alice.created >= before);
    CHECK_FALSE(alice.lastActivity);
    UserRecord bob = s->createUser("bob", true);
    CHECK(bob.cookieId != alice.cookieId);

    CHECK_THROWS_WITH_AS(s->createUser("alice", true), "user alice already exists", StoreError);

    auto found = s->findUser("alice");
    REQUIRE(found);
    CHECK(found->id == alice.id);
    CHECK(found->created == alice.created);
    CHECK(found->cookieId == alice.cookieId);
    CHECK_FALSE(s->findUser("carol"));
    CHECK_FALSE(s->findUser(""));
    REQUIRE(s->findUserById(bob.id));
    CHECK(s->findUserById(bob.id)->name == "bob");
    CHECK_FALSE(s->findUserById(9999));

    // Names are stored byte-exact (case and Unicode matter to JupyterHub).
    s->createUser("Alice", false);
    s->createUser("zoë", false);
    CHECK(s->findUser("zoë"));
    CHECK(s->allUsers().size() == 4);

    // update: name, admin, last_activity, cookie_id, roles, groups
    s->upsertRole({"user", "default", {"self"}});
    s->upsertRole({"viewer", "", {"read:users"}});
    s->createGroup("staff");
    s->createGroup("students");
    UserRecord edited = *s->findUser("alice");
    edited.name = "alice2";
    edited.admin = true;
    edited.lastActivity = parseUtc("2026-11-23T01:28:56.161547Z");
    edited.cookieId = randomHex(16);
    edited.roles = {"viewer", "user", "user"};
    edited.groups = {"students", "staff"};
    s->updateUser(edited);
    auto reread = s->findUserById(alice.id);
    REQUIRE(reread);
    CHECK(reread->name == "alice2");
    CHECK(reread->admin);
    CHECK(reread->lastActivity == edited.lastActivity);
    CHECK(reread->cookieId == edited.cookieId);
    CHECK(reread->roles == std::vector<std::string>{"user", "viewer"});
    CHECK(reread->groups == std::vector<std::string>{"staff", "students"});
    CHECK_FALSE(s->findUser("alice"));

    // A failing update changes nothing (it runs in a savepoint/transaction).
    UserRecord broken = *reread;
    broken.admin = false;
    broken.roles = {"user", "no-such-role"};
    CHECK_THROWS_WITH_AS(s->updateUser(broken), "role 'no-such-role' does not exist", StoreError);
    broken.roles = {};
    broken.groups = {"no-such-group"};
    CHECK_THROWS_WITH_AS(s->updateUser(broken), "group 'no-such-group' does not exist", StoreError);
    CHECK(s->findUserById(alice.id)->admin);
    CHECK(s->findUserById(alice.id)->roles.size() == 2);
    UserRecord clash = *reread;
    clash.name = "bob";
    CHECK_THROWS_WITH_AS(s->updateUser(clash), "user bob already exists", StoreError);
    UserRecord ghost;
    ghost.id = 4242;
    ghost.name = "ghost";
    ghost.cookieId = "x";
    CHECK_THROWS_AS(s->updateUser(ghost), StoreError);

    auto all = s->allUsers();
    auto it = std::find_if(all.begin(), all.end(), [&](const UserRecord& u) { return u.id == alice.id; });
    REQUIRE(it != all.end());
    CHECK(it->roles == std::vector<std::string>{"user", "viewer"});
    CHECK(it->groups == std::vector<std::string>{"staff", "students"});

    // touchUser moves last_activity forward only.
    const Timestamp t1 = *parseUtc("2030-01-01T00:00:00Z");
    const Timestamp t0 = *parseUtc("2029-01-01T00:00:00Z");
    s->touchUser(bob.id, t1);
    CHECK(s->findUserById(bob.id)->lastActivity == t1);
    s->touchUser(bob.id, t0);
    CHECK(s->findUserById(bob.id)->lastActivity == t1);

    s->deleteUser(bob.id);
    CHECK_FALSE(s->findUserById(bob.id));
    s->deleteUser(bob.id);  // idempotent
}

TEST_CASE("services and roles") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    s->upsertRole({"server", "for servers", {"users:activity!user", "access:servers!user"}});
    s->upsertRole({"admin", "everything", {"admin:users"}});
    s->upsertRole({"server", "updated", {"inherit"}});
    auto roles = s->allRoles();
    REQUIRE(roles.size() == 2);
    CHECK(roles[0].name == "server");
    CHECK(roles[0].description == "updated");
    CHECK(roles[0].scopes == std::vector<std::string>{"inherit"});
    CHECK(roles[1].scopes == std::vector<std::string>{"admin:users"});

    ServiceRecord svc = s->ensureService("announcement", false);
    CHECK(svc.id > 0);
    CHECK(svc.roles.empty());
    s->setServiceRoles(svc.id, {"admin"});
    ServiceRecord again = s->ensureService("announcement", true);
    CHECK(again.id == svc.id);
    CHECK(again.admin);
    CHECK(again.roles == std::vector<std::string>{"admin"});
    s->ensureService("idle-culler", false);
    auto services = s->allServices();
    REQUIRE(services.size() == 2);
    CHECK(services[0].name == "announcement");
    CHECK(services[0].admin);
    CHECK(services[0].roles == std::vector<std::string>{"admin"});
    CHECK(services[1].roles.empty());
    CHECK_THROWS_WITH_AS(s->setServiceRoles(svc.id, {"nope"}), "role 'nope' does not exist", StoreError);
    CHECK(s->allServices()[0].roles == std::vector<std::string>{"admin"});
    CHECK_THROWS_AS(s->setServiceRoles(777, {"admin"}), StoreError);

    // Service tokens; deleting the service cascades them and its role map.
    TokenRecord t;
    t.serviceId = svc.id;
    const std::string plain = generateToken();
    t.prefix = tokenPrefix(plain);
    t.hashed = hashToken(plain, kUserTokenRounds);
    const int64_t tid = s->insertToken(t);
    REQUIRE(s->tokensOfService(svc.id).size() == 1);
    CHECK(s->tokensOfService(svc.id)[0].id == tid);
    CHECK(verifyToken(plain, s->tokensOfService(svc.id)[0].hashed));
    s->deleteService(svc.id);
    CHECK_FALSE(s->findToken(tid));
    CHECK(scalar(*s, "SELECT count(*) FROM service_role_map") == "0");
    CHECK(s->allServices().size() == 1);
}

TEST_CASE("groups") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    auto a = s->createUser("a", false);
    auto b = s->createUser("b", false);
    s->upsertRole({"r1", "", {}});
    GroupRecord g = s->createGroup("g");
    CHECK(g.id > 0);
    CHECK(g.name == "g");
    CHECK_THROWS_WITH_AS(s->createGroup("g"), "group g already exists", StoreError);
    s->setGroupMembers(g.id, {b.id, a.id, a.id});
    s->setGroupRoles(g.id, {"r1"});
    auto groups = s->allGroups();
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].users == std::vector<std::string>{"a", "b"});
    CHECK(groups[0].roles == std::vector<std::string>{"r1"});
    CHECK(groups[0].properties == "{}");
    s->setGroupProperties(g.id, R"({"course":"CS101"})");
    CHECK(s->allGroups()[0].properties == R"({"course":"CS101"})");
    CHECK(s->findUser("a")->groups == std::vector<std::string>{"g"});
    s->setGroupMembers(g.id, {b.id});
    CHECK(s->allGroups()[0].users == std::vector<std::string>{"b"});
    CHECK_THROWS_AS(s->setGroupMembers(g.id, {b.id, 9999}), StoreError);
    CHECK(s->allGroups()[0].users == std::vector<std::string>{"b"});  // rolled back
    CHECK_THROWS_WITH_AS(s->setGroupRoles(g.id, {"r2"}), "role 'r2' does not exist", StoreError);
    s->setGroupMembers(g.id, {});
    CHECK(s->allGroups()[0].users.empty());
    s->setGroupMembers(g.id, {a.id});
    s->deleteGroup(g.id);
    CHECK(s->allGroups().empty());
    CHECK(s->findUser("a")->groups.empty());
    CHECK(scalar(*s, "SELECT count(*) FROM group_role_map") == "0");
}

TEST_CASE("tokens") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    auto alice = s->createUser("alice", false);
    auto bob = s->createUser("bob", false);
    const std::string p1 = "abcd" + randomHex(14);
    const std::string p2 = "abcd" + randomHex(14);
    TokenRecord t1 =
        tokenFor(alice.id, p1, {"users:activity!user", "access:servers!user", "quote\"back\\slash"});
    t1.note = "server token";
    t1.sessionId = "sess";
    t1.expiresAt = now() + std::chrono::hours(1);
    const int64_t id1 = s->insertToken(t1);
    const int64_t id2 = s->insertToken(tokenFor(bob.id, p2));
    CHECK(id1 > 0);
    CHECK(id2 > id1);

    auto byPrefix = s->tokensWithPrefix("abcd");
    REQUIRE(byPrefix.size() == 2);
    const TokenRecord& r = byPrefix[0];
    CHECK(r.id == id1);
    CHECK(r.userId == alice.id);
    CHECK_FALSE(r.serviceId);
    CHECK(r.prefix == "abcd");
    CHECK(r.hashed == t1.hashed);
    CHECK(r.clientId == "jupyterhub");
    CHECK(r.sessionId == "sess");
    CHECK(r.created == t1.created);
    CHECK(r.expiresAt == t1.expiresAt);
    CHECK_FALSE(r.lastActivity);
    CHECK(r.note == "server token");
    CHECK(r.scopes == t1.scopes);
    CHECK(scalar(*s, "SELECT scopes FROM api_tokens WHERE id = " + std::to_string(id1)) ==
          R"(["users:activity!user", "access:servers!user", "quote\"back\\slash"])");
    CHECK(verifyToken(p1, r.hashed));
    CHECK_FALSE(verifyToken(p2, r.hashed));
    CHECK(s->tokensWithPrefix("zzzz").empty());
    CHECK(s->tokensOfUser(alice.id).size() == 1);
    CHECK(s->tokensOfUser(bob.id).size() == 1);
    REQUIRE(s->findToken(id2));
    CHECK(s->findToken(id2)->userId == bob.id);
    CHECK_FALSE(s->findToken(9999));

    // A default `created` means "now".
    TokenRecord noCreated = tokenFor(alice.id, generateToken());
    noCreated.created = Timestamp{};
    const Timestamp before = now();
    CHECK(s->findToken(s->insertToken(noCreated))->created >= before);

    // touchToken moves last_activity forward only.
    const Timestamp t0 = *parseUtc("2030-05-01T10:00:00.5Z");
    s->touchToken(id1, t0);
    CHECK(s->findToken(id1)->lastActivity == t0);
    s->touchToken(id1, t0 - std::chrono::seconds(5));
    CHECK(s->findToken(id1)->lastActivity == t0);

    // Validation: hashes only, 4-character prefixes, one owner, known client.
    TokenRecord plain = tokenFor(alice.id, p1);
    plain.hashed = p1;
    CHECK_THROWS_AS(s->insertToken(plain), StoreError);
    TokenRecord longPrefix = tokenFor(alice.id, p1);
    longPrefix.prefix = p1.substr(0, 8);
    CHECK_THROWS_AS(s->insertToken(longPrefix), StoreError);
    TokenRecord twoOwners = tokenFor(alice.id, generateToken());
    twoOwners.serviceId = s->ensureService("svc", false).id;
    CHECK_THROWS_AS(s->insertToken(twoOwners), StoreError);
    TokenRecord noOwner = tokenFor(alice.id, generateToken());
    noOwner.userId.reset();
    CHECK_THROWS_AS(s->insertToken(noOwner), StoreError);
    TokenRecord badClient = tokenFor(alice.id, generateToken());
    badClient.clientId = "no-such-client";
    CHECK_THROWS_AS(s->insertToken(badClient), StoreError);
    TokenRecord badUser = tokenFor(4242, generateToken());
    CHECK_THROWS_AS(s->insertToken(badUser), StoreError);
    TokenRecord dup = tokenFor(alice.id, p1);
    dup.hashed = t1.hashed;
    CHECK_THROWS_AS(s->insertToken(dup), StoreError);

    // deleteTokensOfClient only touches that user's tokens for that client.
    s->upsertOAuthClient({"jupyterhub-user-alice", "", hashToken("secret", kUserTokenRounds), "/cb", {}});
    TokenRecord oauthTok = tokenFor(alice.id, generateToken());
    oauthTok.clientId = "jupyterhub-user-alice";
    const int64_t oid = s->insertToken(oauthTok);
    TokenRecord bobOauth = tokenFor(bob.id, generateToken());
    bobOauth.clientId = "jupyterhub-user-alice";
    const int64_t bid = s->insertToken(bobOauth);
    s->deleteTokensOfClient(alice.id, "jupyterhub-user-alice");
    CHECK_FALSE(s->findToken(oid));
    CHECK(s->findToken(bid));
    CHECK(s->findToken(id1));

    // purge: strictly before `now`; no expiry never purges.
    TokenRecord old = tokenFor(alice.id, generateToken());
    old.expiresAt = now() - std::chrono::seconds(1);
    const int64_t oldId = s->insertToken(old);
    CHECK(s->purgeExpiredTokens(now()) == 1);
    CHECK_FALSE(s->findToken(oldId));
    CHECK(s->findToken(id1));
    CHECK(s->findToken(id2));
    CHECK(s->purgeExpiredTokens(now() + std::chrono::hours(2)) == 1);  // t1
    CHECK_FALSE(s->findToken(id1));

    s->deleteToken(id2);
    CHECK_FALSE(s->findToken(id2));
    s->deleteToken(id2);
}

TEST_CASE("servers") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    auto alice = s->createUser("alice", false);
    ServerRecord srv;
    srv.userId = alice.id;
    srv.active = true;
    srv.url = "http://127.0.0.1:51234";
    srv.baseUrl = "/user/alice/";
    srv.state = R"({"pid": 4242})";
    srv.started = parseUtc("2026-11-23 01:28:56.161547");
    ServerRecord saved = s->saveServer(srv);
    CHECK(saved.id > 0);
    auto found = s->findServer(alice.id, "");
    REQUIRE(found);
    CHECK(found->id == saved.id);
    CHECK(found->active);
    CHECK(found->url == srv.url);
    CHECK(found->baseUrl == srv.baseUrl);
    CHECK(found->state == srv.state);
    CHECK(found->started == srv.started);
    CHECK_FALSE(found->lastActivity);
    CHECK(found->userOptions == "{}");
    CHECK_FALSE(s->findServer(alice.id, "gpu"));

    ServerRecord named = srv;
    named.name = "gpu";
    named.active = false;
    named.userOptions = R"({"profile": "gpu"})";
    const ServerRecord namedSaved = s->saveServer(named);
    CHECK(s->allServers().size() == 2);
    CHECK_THROWS_AS(s->saveServer(named), StoreError);  // (user, name) is unique

    saved.active = false;
    saved.url.clear();
    saved.state = "{}";
    saved.lastActivity = now();
    s->saveServer(saved);
    found = s->findServer(alice.id, "");
    CHECK_FALSE(found->active);
    CHECK(found->url.empty());
    CHECK(found->lastActivity == saved.lastActivity);

    ServerRecord ghost = saved;
    ghost.id = 9999;
    CHECK_THROWS_AS(s->saveServer(ghost), StoreError);
    ServerRecord orphan = srv;
    orphan.userId = 9999;
    CHECK_THROWS_AS(s->saveServer(orphan), StoreError);

    s->deleteServer(namedSaved.id);
    CHECK(s->allServers().size() == 1);
    CHECK_FALSE(s->findServer(alice.id, "gpu"));
}

TEST_CASE("OAuth clients and codes") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    auto alice = s->createUser("alice", false);
    const std::string secret = generateToken();
    OAuthClientRecord c{"jupyterhub-user-alice",
                        "Server at /user/alice/",
                        hashToken(secret, kUserTokenRounds),
                        "/user/alice/oauth_callback",
                        {"access:servers!server=alice/"}};
    s->upsertOAuthClient(c);
    auto got = s->findOAuthClient(c.identifier);
    REQUIRE(got);
    CHECK(got->description == c.description);
    CHECK(got->secretHash == c.secretHash);
    CHECK(verifyToken(secret, got->secretHash));
    CHECK(got->redirectUri == c.redirectUri);
    CHECK(got->allowedScopes == c.allowedScopes);
    c.redirectUri = "/elsewhere";
    s->upsertOAuthClient(c);
    CHECK(s->findOAuthClient(c.identifier)->redirectUri == "/elsewhere");
    CHECK_FALSE(s->findOAuthClient("nope"));

    OAuthClientRecord plainSecret = c;
    plainSecret.secretHash = secret;
    CHECK_THROWS_AS(s->upsertOAuthClient(plainSecret), StoreError);
    CHECK(verifyToken(secret, s->findOAuthClient(c.identifier)->secretHash));

    const std::string code = randomHex(15);
    OAuthCodeRecord oc;
    oc.clientId = c.identifier;
    oc.codeHash = hashToken(code, kGeneratedTokenRounds);
    oc.expiresAt = unixSeconds(now()) + 300;
    oc.redirectUri = c.redirectUri;
    oc.sessionId = "s1";
    oc.userId = alice.id;
    oc.scopes = {"identify"};
    const int64_t codeId = s->insertOAuthCode(oc);
    OAuthCodeRecord expired = oc;
    expired.codeHash = hashToken(randomHex(15), 1);
    expired.expiresAt = unixSeconds(now()) - 1;
    s->insertOAuthCode(expired);
    auto codes = s->oauthCodesOfClient(c.identifier);
    REQUIRE(codes.size() == 2);
    CHECK(codes[0].id == codeId);
    CHECK(codes[0].codeHash == oc.codeHash);
    CHECK(verifyToken(code, codes[0].codeHash));
    CHECK(codes[0].expiresAt == oc.expiresAt);
    CHECK(codes[0].redirectUri == oc.redirectUri);
    CHECK(codes[0].sessionId == "s1");
    CHECK(codes[0].userId == alice.id);
    CHECK(codes[0].scopes == oc.scopes);
    CHECK(s->purgeExpiredOAuthCodes(unixSeconds(now())) == 1);
    CHECK(s->oauthCodesOfClient(c.identifier).size() == 1);
    s->deleteOAuthCode(codeId);
    CHECK(s->oauthCodesOfClient(c.identifier).empty());

    OAuthCodeRecord plainCode = oc;
    plainCode.codeHash = code;
    CHECK_THROWS_AS(s->insertOAuthCode(plainCode), StoreError);
    OAuthCodeRecord badClient = oc;
    badClient.clientId = "nope";
    CHECK_THROWS_AS(s->insertOAuthCode(badClient), StoreError);

    // Deleting a client cascades its codes and tokens.
    s->insertOAuthCode(oc);
    TokenRecord t = tokenFor(alice.id, generateToken());
    t.clientId = c.identifier;
    const int64_t tid = s->insertToken(t);
    s->deleteOAuthClient(c.identifier);
    CHECK_FALSE(s->findOAuthClient(c.identifier));
    CHECK_FALSE(s->findToken(tid));
    CHECK(scalar(*s, "SELECT count(*) FROM oauth_codes") == "0");
}

TEST_CASE("deleteUser cascades tokens, servers, codes and maps") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    auto alice = s->createUser("alice", false);
    auto bob = s->createUser("bob", false);
    s->upsertRole({"user", "", {"self"}});
    auto g = s->createGroup("g");
    s->setUserRoles(alice.id, {"user"});
    s->setUserRoles(bob.id, {"user"});
    s->setGroupMembers(g.id, {alice.id, bob.id});
    s->insertToken(tokenFor(alice.id, generateToken()));
    s->insertToken(tokenFor(bob.id, generateToken()));
    ServerRecord srv;
    srv.userId = alice.id;
    s->saveServer(srv);
    s->upsertOAuthClient({"jupyterhub-user-alice", "", "", "", {}});
    OAuthCodeRecord oc;
    oc.clientId = "jupyterhub-user-alice";
    oc.codeHash = hashToken("code", 1);
    oc.userId = alice.id;
    s->insertOAuthCode(oc);

    s->deleteUser(alice.id);
    CHECK(scalar(*s, countForUser("api_tokens", alice.id)) == "0");
    CHECK(scalar(*s, countForUser("servers", alice.id)) == "0");
    CHECK(scalar(*s, countForUser("oauth_codes", alice.id)) == "0");
    CHECK(scalar(*s, countForUser("user_role_map", alice.id)) == "0");
    CHECK(scalar(*s, countForUser("user_group_map", alice.id)) == "0");
    // bob is untouched
    CHECK(s->tokensOfUser(bob.id).size() == 1);
    CHECK(s->findUser("bob")->roles == std::vector<std::string>{"user"});
    CHECK(s->allGroups()[0].users == std::vector<std::string>{"bob"});
    CHECK(s->allRoles().size() == 1);
}

TEST_CASE("transactions") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    SUBCASE("commit") {
        s->transaction([&] {
            s->createUser("a", false);
            s->createUser("b", false);
        });
        CHECK(s->allUsers().size() == 2);
    }
    SUBCASE("rollback on exception") {
        s->createUser("keep", false);
        CHECK_THROWS_AS(s->transaction([&] {
            s->createUser("a", false);
            s->upsertRole({"r", "", {}});
            throw std::runtime_error("boom");
        }),
                        std::runtime_error);
        CHECK(s->allUsers().size() == 1);
        CHECK(s->allRoles().empty());
        // The connection is usable again afterwards.
        s->transaction([&] { s->createUser("after", false); });
        CHECK(s->allUsers().size() == 2);
    }
    SUBCASE("rollback on StoreError from inside") {
        CHECK_THROWS_AS(s->transaction([&] {
            s->createUser("a", false);
            s->createUser("a", false);
        }),
                        StoreError);
        CHECK(s->allUsers().empty());
    }
    SUBCASE("nesting") {
        s->transaction([&] {
            s->createUser("outer", false);
            CHECK_THROWS_AS(s->transaction([&] {
                s->createUser("inner", false);
                throw std::runtime_error("inner fails");
            }),
                            std::runtime_error);
            s->transaction([&] { s->createUser("inner2", false); });
        });
        auto users = s->allUsers();
        REQUIRE(users.size() == 2);
        CHECK(users[0].name == "outer");
        CHECK(users[1].name == "inner2");
    }
    SUBCASE("manual begin/rollback") {
        s->begin();
        s->createUser("x", false);
        s->rollback();
        CHECK(s->allUsers().empty());
        s->rollback();  // harmless without a transaction
        CHECK_THROWS_AS(s->commit(), StoreError);
    }
}

TEST_CASE("creating 1000 users in one transaction") {
    TempDir dir;
    auto s = Store::open(dir.file("hub.sqlite"));
    const auto start = std::chrono::steady_clock::now();
    s->transaction([&] {
        for (int i = 0; i < 1000; ++i) s->createUser("user" + std::to_string(i), false);
    });
    const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MESSAGE("1000 createUser calls in one transaction: " << elapsed * 1000 << " ms");
    CHECK(s->allUsers().size() == 1000);
    const auto lookupStart = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) REQUIRE(s->findUser("user" + std::to_string(i)));
    const auto lookups =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - lookupStart).count();
    MESSAGE("1000 findUser calls: " << lookups * 1000 << " ms");
}

TEST_CASE("no secret reaches the database files") {
    TempDir dir;
    const std::string path = dir.file("hub.sqlite");
    std::vector<std::string> secrets;
    std::string whileOpen;
    {
        auto s = Store::open(path);
        auto alice = s->createUser("alice", false);
        auto svc = s->ensureService("svc", false);
        for (int i = 0; i < 50; ++i) {
            const std::string tok = generateToken();
            secrets.push_back(tok);
            TokenRecord t;
            if (i % 5 == 0) {
                t.serviceId = svc.id;
            } else {
                t.userId = alice.id;
            }
            t.prefix = tokenPrefix(tok);
            t.hashed = hashToken(tok, i % 2 ? kGeneratedTokenRounds : kUserTokenRounds);
            t.note = "note " + std::to_string(i);
            t.scopes = {"read:users"};
            const int64_t id = s->insertToken(t);
            s->touchToken(id, now());
            // A lookup, as request handling does.
            bool ok = false;
            for (const auto& cand : s->tokensWithPrefix(tokenPrefix(tok)))
                ok = ok || verifyToken(tok, cand.hashed);
            REQUIRE(ok);
            if (i % 7 == 0) s->deleteToken(id);  // freed pages must not hold them either
        }
        for (int i = 0; i < 5; ++i) {
            const std::string secret = generateToken();
            const std::string code = randomHex(15);
            secrets.push_back(secret);
            secrets.push_back(code);
            const std::string client = "jupyterhub-user-c" + std::to_string(i);
            s->upsertOAuthClient({client, "", hashToken(secret, kUserTokenRounds), "/cb", {}});
            OAuthCodeRecord oc;
            oc.clientId = client;
            oc.codeHash = hashToken(code, kGeneratedTokenRounds);
            oc.userId = alice.id;
            oc.expiresAt = unixSeconds(now()) + 300;
            s->insertOAuthCode(oc);
        }
        for (const char* suffix : {"", "-wal", "-shm"}) whileOpen += readAll(path + suffix);
        CHECK(whileOpen.size() > 0);
    }
    std::string afterClose;
    int files = 0;
    for (const char* suffix : {"", "-wal", "-shm"}) {
        if (fs::exists(path + suffix)) {
            ++files;
            afterClose += readAll(path + suffix);
        }
    }
    CHECK(files >= 1);
    for (const auto& secret : secrets) {
        CAPTURE(secret);
        for (const std::string* blob : {&whileOpen, &afterClose}) {
            CHECK_FALSE(contains(*blob, secret));
            CHECK_FALSE(contains(*blob, hexOf(secret)));       // the token's text, hex-encoded
            CHECK_FALSE(contains(*blob, bytesOfHex(secret)));  // the bytes the hex token stands for
        }
    }
    // Sanity check of the scan itself: a name we did store is found.
    CHECK(contains(afterClose, "alice"));
}
