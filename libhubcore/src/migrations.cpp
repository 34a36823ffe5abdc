// SPDX-License-Identifier: BSD-3-Clause
// Numbered schema migrations of the state database, and refusal of files hubd must not touch.

#include <sqlite3.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hubcore/store.h"

namespace hub::detail {

// Shared with store.cpp (no private header, to keep the file set fixed).
void checkSchema(sqlite3* db, const std::string& path);
void migrate(sqlite3* db, const std::string& path);
[[noreturn]] void throwOpenError(sqlite3* db, const std::string& path, int rc, std::string_view doing);

namespace {

// Migration N (1-based) takes the schema from version N-1 to N. Entries are
// append-only: a released migration is never edited, since databases in the
// field have already run it. Each runs inside the migration transaction with
// foreign_keys=ON, so a future table rebuild must not rely on disabling it.
//
// v1 follows JupyterHub 3.0's tables (contract §6, Appendix A) with its
// `spawners` and `servers` folded into one `servers` row per named server.
// Secrets are only ever present as "sha512:..." hashes; the CHECKs make a
// caller that forgets to hash fail loudly instead of persisting plaintext.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    last_activity TEXT,
    cookie_id TEXT NOT NULL UNIQUE
);
CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE oauth_clients (
    id INTEGER PRIMARY KEY,
    identifier TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    secret_hash TEXT NOT NULL DEFAULT ''
        CHECK (secret_hash = '' OR substr(secret_hash, 1, 7) = 'sha512:'),
    redirect_uri TEXT NOT NULL DEFAULT '',
    allowed_scopes TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE servers (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 0,
    url TEXT NOT NULL DEFAULT '',
    base_url TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '{}',
    started TEXT,
    last_activity TEXT,
    user_options TEXT NOT NULL DEFAULT '{}',
    UNIQUE (user_id, name)
);
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    service_id INTEGER REFERENCES services (id) ON DELETE CASCADE,
    hashed TEXT NOT NULL UNIQUE CHECK (substr(hashed, 1, 7) = 'sha512:'),
    prefix TEXT NOT NULL CHECK (length(prefix) <= 4),
    client_id TEXT NOT NULL REFERENCES oauth_clients (identifier) ON DELETE CASCADE,
    session_id TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    expires_at TEXT,
    last_activity TEXT,
    note TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL DEFAULT '[]',
    CHECK ((user_id IS NULL) <> (service_id IS NULL))
);
CREATE INDEX ix_api_tokens_prefix ON api_tokens (prefix);
CREATE INDEX ix_api_tokens_user_id ON api_tokens (user_id);
CREATE INDEX ix_api_tokens_service_id ON api_tokens (service_id);
CREATE INDEX ix_api_tokens_client_id ON api_tokens (client_id);
CREATE INDEX ix_api_tokens_expires_at ON api_tokens (expires_at);
CREATE TABLE oauth_codes (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (identifier) ON DELETE CASCADE,
    code_hash TEXT NOT NULL UNIQUE CHECK (substr(code_hash, 1, 7) = 'sha512:'),
    expires_at INTEGER NOT NULL,
    redirect_uri TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX ix_oauth_codes_client_id ON oauth_codes (client_id);
CREATE INDEX ix_oauth_codes_user_id ON oauth_codes (user_id);
CREATE TABLE roles (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE user_role_map (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
) WITHOUT ROWID;
CREATE INDEX ix_user_role_map_role_id ON user_role_map (role_id);
CREATE TABLE service_role_map (
    service_id INTEGER NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (service_id, role_id)
) WITHOUT ROWID;
CREATE INDEX ix_service_role_map_role_id ON service_role_map (role_id);
CREATE TABLE group_role_map (
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    role_id INTEGER NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, role_id)
) WITHOUT ROWID;
CREATE INDEX ix_group_role_map_role_id ON group_role_map (role_id);
CREATE TABLE user_group_map (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    group_id INTEGER NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, group_id)
) WITHOUT ROWID;
CREATE INDEX ix_user_group_map_group_id ON user_group_map (group_id);
-- JupyterHub creates this client at startup; ordinary tokens reference it.
INSERT INTO oauth_clients (identifier, description) VALUES ('jupyterhub', 'JupyterHub');
)sql",
    // v2: group properties (JupyterHub 4.0's PUT /api/groups/:name/properties),
    // a JSON object kept as text.
    R"sql(
ALTER TABLE groups ADD COLUMN properties TEXT NOT NULL DEFAULT '{}';
)sql",
};

constexpr int kLatestVersion = int(std::size(kMigrations));

struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

struct SqliteFree {
    void operator()(char* p) const { sqlite3_free(p); }
};

StmtPtr prepare(sqlite3* db, const std::string& path, const char* sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql, -1, &raw, nullptr);
    StmtPtr stmt{raw};
    if (rc != SQLITE_OK) throwOpenError(db, path, rc, "read");
    return stmt;
}

void exec(sqlite3* db, const std::string& path, const char* sql, std::string_view doing) {
    char* raw = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &raw);
    std::unique_ptr<char, SqliteFree> err{raw};
    if (rc != SQLITE_OK) throwOpenError(db, path, rc, doing);
}

struct Inspection {
    bool hasVersionTable = false;
    int version = 0;
};

// Reads what the file holds without writing to it: a file that is not ours,
// or is newer than us, must be left exactly as it was found.
Inspection inspect(sqlite3* db, const std::string& path) {
    std::vector<std::string> tables;
    {
        StmtPtr stmt = prepare(db, path,
                               "SELECT name FROM sqlite_master WHERE type = 'table' "
                               "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
        int rc;
        while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
            tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0)));
        }
        if (rc != SQLITE_DONE) throwOpenError(db, path, rc, "read");
    }
    Inspection result;
    if (tables.empty()) return result;
    const auto has = [&](std::string_view name) {
        for (const auto& t : tables) {
            if (t == name) return true;
        }
        return false;
    };
    if (!has("hubd_schema")) {
        if (has("alembic_version")) {
            throw StoreError(fmt::format(
                "{} is a JupyterHub database, not a hubd one: hubd does not import or modify it; "
                "point db_url at a new file (users are re-created from the configuration and at login)",
                path));
        }
        throw StoreError(fmt::format(
            "{} is a SQLite database of another program (tables: {}): point db_url at hubd's own state file",
            path, fmt::join(tables, ", ")));
    }
    result.hasVersionTable = true;
    StmtPtr stmt = prepare(db, path, "SELECT version FROM hubd_schema");
    int rows = 0;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
        ++rows;
        if (sqlite3_column_type(stmt.get(), 0) != SQLITE_INTEGER) rows = -1000;
        result.version = sqlite3_column_int(stmt.get(), 0);
    }
    if (rc != SQLITE_DONE) throwOpenError(db, path, rc, "read");
    if (rows != 1 || result.version < 0) {
        throw StoreError(
            fmt::format("{} has a damaged hubd_schema table (expected one integer version row): restore the "
                        "database from a "
                        "backup",
                        path));
    }
    if (result.version > kLatestVersion) {
        throw StoreError(
            fmt::format("{} was written by a newer hubd (schema version {}; this hubd knows up to {}): "
                        "upgrade hubd, or restore "
                        "the backup taken before the upgrade",
                        path, result.version, kLatestVersion));
    }
    return result;
}

}  // namespace

void throwOpenError(sqlite3* db, const std::string& path, int rc, std::string_view doing) {
    const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    switch (rc & 0xff) {
        case SQLITE_NOTADB:
            throw StoreError(
                fmt::format("{} is not a SQLite database ({}): point db_url at hubd's state file, or move "
                            "this file away and "
                            "hubd will create a new database",
                            path, msg));
        case SQLITE_CORRUPT:
            throw StoreError(fmt::format("{} is corrupt ({}): restore it from a backup", path, msg));
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            throw StoreError(fmt::format(
                "{} is locked by another process ({}): stop the other hubd or JupyterHub using this file",
                path, msg));
        case SQLITE_FULL:
            throw StoreError(fmt::format("cannot {} {}: the disk is full: free some space", doing, path));
        default:
            throw StoreError(fmt::format(
                "cannot {} {} ({}): check that the file and its directory are readable and writable by hubd",
                doing, path, msg));
    }
}

void checkSchema(sqlite3* db, const std::string& path) {
    inspect(db, path);
}

void migrate(sqlite3* db, const std::string& path) {
    // IMMEDIATE takes the write lock up front, so two hubds starting together
    // cannot both run a migration; the inspection is repeated under the lock.
    exec(db, path, "BEGIN IMMEDIATE", "lock");
    try {
        const Inspection found = inspect(db, path);
        if (!found.hasVersionTable) {
            exec(db, path,
                 "CREATE TABLE hubd_schema (version INTEGER NOT NULL);"
                 "INSERT INTO hubd_schema (version) VALUES (0);",
                 "initialise");
        }
        for (int v = found.version + 1; v <= kLatestVersion; ++v) {
            exec(db, path, kMigrations[v - 1], fmt::format("apply schema migration {} to", v));
            const std::string bump = fmt::format("UPDATE hubd_schema SET version = {}", v);
            exec(db, path, bump.c_str(), "record the schema version of");
        }
        exec(db, path, "COMMIT", "commit the schema of");
    } catch (...) {
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

}  // namespace hub::detail

namespace hub {

int Store::currentSchemaVersion() {
    return detail::kLatestVersion;
}

}  // namespace hub
