// SPDX-License-Identifier: BSD-3-Clause
// The state database: SQLite3 behind RAII handles and a per-Store prepared-statement cache.

#include "hubcore/store.h"
#include "hubcore/utf8.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>
#include <system_error>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "hubcore/token.h"

namespace hub {

namespace detail {
// Defined in migrations.cpp.
void checkSchema(sqlite3* db, const std::string& path);
void migrate(sqlite3* db, const std::string& path);
[[noreturn]] void throwOpenError(sqlite3* db, const std::string& path, int rc, std::string_view doing);
}  // namespace detail

namespace {

struct StmtFinalizer {
    void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct SqliteFree {
    void operator()(char* p) const { sqlite3_free(p); }
};

std::string dbPath(sqlite3* db) {
    const char* f = sqlite3_db_filename(db, "main");
    return f && *f ? std::string(f) : std::string(":memory:");
}

[[noreturn]] void throwSqlite(sqlite3* db, std::string_view doing) {
    throw StoreError(fmt::format("{}: cannot {}: {}", dbPath(db), doing, sqlite3_errmsg(db)));
}

// ---- JSON string lists (the TEXT columns JupyterHub keeps scopes in) ----

std::string encodeList(const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += ", ";
        out += '"';
        for (const char ch : items[i]) {
            const auto c = static_cast<unsigned char>(ch);
            switch (c) {
                case '"':
                    out += "\\\"";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                default:
                    if (c < 0x20) {
                        out += fmt::format("\\u{:04x}", unsigned(c));
                    } else {
                        out += ch;
                    }
            }
        }
        out += '"';
    }
    out += ']';
    return out;
}

class ListParser {
public:
    explicit ListParser(std::string_view s) : s_(s) {}

    std::optional<std::vector<std::string>> parse() {
        std::vector<std::string> out;
        skipSpace();
        if (!eat('[')) return std::nullopt;
        skipSpace();
        if (eat(']')) return finish(std::move(out));
        for (;;) {
            skipSpace();
            auto item = string();
            if (!item) return std::nullopt;
            out.push_back(std::move(*item));
            skipSpace();
            if (eat(']')) return finish(std::move(out));
            if (!eat(',')) return std::nullopt;
        }
    }

private:
    std::optional<std::vector<std::string>> finish(std::vector<std::string> v) {
        skipSpace();
        if (pos_ != s_.size()) return std::nullopt;
        return v;
    }
    void skipSpace() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }
    bool eat(char c) {
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    std::optional<uint32_t> hex4() {
        if (pos_ + 4 > s_.size()) return std::nullopt;
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = s_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= uint32_t(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= uint32_t(c - 'a' + 10);
            } else if (c >= 'A' && c <= 'F') {
                v |= uint32_t(c - 'A' + 10);
            } else {
                return std::nullopt;
            }
        }
        return v;
    }
    std::optional<std::string> string() {
        if (!eat('"')) return std::nullopt;
        std::string out;
        while (pos_ < s_.size()) {
            const char c = s_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) return std::nullopt;
            switch (s_[pos_++]) {
                case '"':
                    out += '"';
                    break;
                case '\\':
                    out += '\\';
                    break;
                case '/':
                    out += '/';
                    break;
                case 'b':
                    out += '\b';
                    break;
                case 'f':
                    out += '\f';
                    break;
                case 'n':
                    out += '\n';
                    break;
                case 'r':
                    out += '\r';
                    break;
                case 't':
                    out += '\t';
                    break;
                case 'u': {
                    auto cp = hex4();
                    if (!cp) return std::nullopt;
                    if (*cp >= 0xd800 && *cp < 0xdc00 && pos_ + 1 < s_.size() && s_[pos_] == '\\' &&
                        s_[pos_ + 1] == 'u') {
                        pos_ += 2;
                        auto low = hex4();
                        if (!low || *low < 0xdc00 || *low >= 0xe000) return std::nullopt;
                        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (*low - 0xdc00);
                    } else if (*cp >= 0xd800 && *cp < 0xe000) {
                        *cp = 0xfffd;  // a lone surrogate has no UTF-8 form
                    }
                    appendUtf8(out, *cp);
                    break;
                }
                default:
                    return std::nullopt;
            }
        }
        return std::nullopt;
    }

    std::string_view s_;
    size_t pos_ = 0;
};

// Holds the file mode the state file must have before SQLite ever creates it:
// the database names every user and holds token hashes. umask() is process
// wide and racy with other threads, so the file is created here instead.
void createPrivateFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        const int err = errno;
        throw StoreError(
            fmt::format("cannot open {}: {}: check that its directory exists and is writable by hubd", path,
                        std::generic_category().message(err)));
    }
    struct stat st {};
    // An existing file readable by others (e.g. made by an earlier tool) is
    // tightened; failure (not our file) is left to SQLite to report.
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
        (void)::fchmod(fd, st.st_mode & 0700);
    }
    ::close(fd);
}

// The connection-side state of a Store. Lives in this file's anonymous
// namespace (Store::Impl only derives from it) so the helpers below can use it
// without being Store members.
class Db {
public:
    struct Cached {
        StmtPtr stmt;
        bool inUse = false;
    };

    // One execution of a prepared statement. Resets and unbinds it on every
    // exit path so a cached statement never holds a read snapshot or a
    // reference to caller memory between uses.
    class Query {
    public:
        Query(sqlite3* db, sqlite3_stmt* stmt, bool* inUse, StmtPtr owned)
            : db_(db), stmt_(stmt), inUse_(inUse), owned_(std::move(owned)) {}
        ~Query() {
            sqlite3_reset(stmt_);
            sqlite3_clear_bindings(stmt_);
            if (inUse_) *inUse_ = false;
        }
        Query(const Query&) = delete;
        Query& operator=(const Query&) = delete;

        template <typename... Args>
        Query& bind(const Args&... args) {
            int i = 0;
            (bindOne(++i, args), ...);
            return *this;
        }

        // True while rows come; throws on error.
        bool next() {
            const int rc = sqlite3_step(stmt_);
            if (rc == SQLITE_ROW) return true;
            if (rc == SQLITE_DONE) return false;
            throwSqlite(db_, "run a query");
        }
        // SQLITE_DONE, or the (extended) error code for the caller to map.
        int tryRun() {
            int rc = sqlite3_step(stmt_);
            while (rc == SQLITE_ROW) rc = sqlite3_step(stmt_);
            return rc;
        }
        void run() {
            if (tryRun() != SQLITE_DONE) throwSqlite(db_, "update the database");
        }

        int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
        bool boolean(int col) const { return sqlite3_column_int64(stmt_, col) != 0; }
        bool isNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
        std::optional<int64_t> optI64(int col) const {
            if (isNull(col)) return std::nullopt;
            return i64(col);
        }
        std::string text(int col) const {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
            if (!p) return {};
            return std::string(p, size_t(sqlite3_column_bytes(stmt_, col)));
        }
        Timestamp time(int col) const {
            const std::string s = text(col);
            auto t = parseUtc(s);
            if (!t) corrupt(col, s, "timestamp");
            return *t;
        }
        std::optional<Timestamp> optTime(int col) const {
            if (isNull(col)) return std::nullopt;
            return time(col);
        }
        std::vector<std::string> list(int col) const {
            if (isNull(col)) return {};
            const std::string s = text(col);
            auto v = ListParser(s).parse();
            if (!v) corrupt(col, s, "JSON list");
            return std::move(*v);
        }

    private:
        [[noreturn]] void corrupt(int col, const std::string& value, std::string_view what) const {
            const char* name = sqlite3_column_name(stmt_, col);
            throw StoreError(
                fmt::format("{}: malformed {} in column {}: '{}': restore the database from a backup",
                            dbPath(db_), what, name ? name : "?", value));
        }
        void bindOne(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); }
        void bindOne(int i, int v) { check(sqlite3_bind_int64(stmt_, i, v)); }
        void bindOne(int i, bool v) { check(sqlite3_bind_int64(stmt_, i, v ? 1 : 0)); }
        void bindOne(int i, std::string_view v) {
            // A null data pointer would bind SQL NULL, not ''.
            check(sqlite3_bind_text64(stmt_, i, v.data() ? v.data() : "", v.size(), SQLITE_TRANSIENT,
                                      SQLITE_UTF8));
        }
        void bindOne(int i, const std::string& v) { bindOne(i, std::string_view(v)); }
        void bindOne(int i, const char* v) { bindOne(i, std::string_view(v)); }
        void bindOne(int i, Timestamp t) { bindOne(i, sqlUtc(t)); }
        void bindOne(int i, const std::optional<Timestamp>& t) {
            if (t) {
                bindOne(i, *t);
            } else {
                check(sqlite3_bind_null(stmt_, i));
            }
        }
        void bindOne(int i, const std::optional<int64_t>& v) {
            if (v) {
                bindOne(i, *v);
            } else {
                check(sqlite3_bind_null(stmt_, i));
            }
        }
        void bindOne(int i, const std::vector<std::string>& v) { bindOne(i, encodeList(v)); }
        void check(int rc) {
            if (rc != SQLITE_OK) throwSqlite(db_, "bind a query parameter");
        }

        sqlite3* db_;
        sqlite3_stmt* stmt_;
        bool* inUse_;
        StmtPtr owned_;
    };

    explicit Db(sqlite3* d) : db(d) {}

    Query query(const std::string& sql) {
        auto it = cache.find(sql);
        if (it == cache.end()) {
            it = cache.emplace(sql, Cached{prepare(sql), false}).first;
        }
        Cached& c = it->second;
        if (c.inUse) {
            // Re-entrant use of the same SQL (e.g. from a callback): a fresh
            // statement keeps the outer iteration intact.
            StmtPtr own = prepare(sql);
            sqlite3_stmt* raw = own.get();
            return Query(db, raw, nullptr, std::move(own));
        }
        c.inUse = true;
        return Query(db, c.stmt.get(), &c.inUse, nullptr);
    }

    StmtPtr prepare(const std::string& sql) {
        sqlite3_stmt* raw = nullptr;
        const int rc =
            sqlite3_prepare_v3(db, sql.c_str(), int(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
        StmtPtr stmt{raw};
        if (rc != SQLITE_OK) throwSqlite(db, "prepare a statement");
        return stmt;
    }

    void exec(const std::string& sql) {
        char* raw = nullptr;
        const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &raw);
        std::unique_ptr<char, SqliteFree> err{raw};
        if (rc != SQLITE_OK) throwSqlite(db, sql);
    }

    int changes() const { return sqlite3_changes(db); }
    int64_t lastId() const { return sqlite3_last_insert_rowid(db); }

    sqlite3* db;
    std::unordered_map<std::string, Cached> cache;
    int depth = 0;  // 0 = no transaction; >1 = nested via SAVEPOINT
};

using Query = Db::Query;

// Column lists shared by the row readers below.
constexpr const char* kUserCols = "id, name, admin, created, last_activity, cookie_id";
constexpr const char* kTokenCols =
    "id, user_id, service_id, prefix, hashed, client_id, session_id, created, expires_at, last_activity, "
    "note, "
    "scopes";
constexpr const char* kServerCols =
    "id, user_id, name, active, url, base_url, state, started, last_activity, user_options";
constexpr const char* kCodeCols =
    "id, client_id, code_hash, expires_at, redirect_uri, session_id, user_id, scopes";

UserRecord readUser(const Query& q) {
    UserRecord u;
    u.id = q.i64(0);
    u.name = q.text(1);
    u.admin = q.boolean(2);
    u.created = q.time(3);
    u.lastActivity = q.optTime(4);
    u.cookieId = q.text(5);
    return u;
}

TokenRecord readToken(const Query& q) {
    TokenRecord t;
    t.id = q.i64(0);
    t.userId = q.optI64(1);
    t.serviceId = q.optI64(2);
    t.prefix = q.text(3);
    t.hashed = q.text(4);
    t.clientId = q.text(5);
    t.sessionId = q.text(6);
    t.created = q.time(7);
    t.expiresAt = q.optTime(8);
    t.lastActivity = q.optTime(9);
    t.note = q.text(10);
    t.scopes = q.list(11);
    return t;
}

ServerRecord readServer(const Query& q) {
    ServerRecord s;
    s.id = q.i64(0);
    s.userId = q.i64(1);
    s.name = q.text(2);
    s.active = q.boolean(3);
    s.url = q.text(4);
    s.baseUrl = q.text(5);
    s.state = q.text(6);
    s.started = q.optTime(7);
    s.lastActivity = q.optTime(8);
    s.userOptions = q.text(9);
    return s;
}

OAuthCodeRecord readCode(const Query& q) {
    OAuthCodeRecord c;
    c.id = q.i64(0);
    c.clientId = q.text(1);
    c.codeHash = q.text(2);
    c.expiresAt = q.i64(3);
    c.redirectUri = q.text(4);
    c.sessionId = q.text(5);
    c.userId = q.i64(6);
    c.scopes = q.list(7);
    return c;
}

std::vector<std::string> names(Db& impl, const std::string& sql, int64_t id) {
    std::vector<std::string> out;
    auto q = impl.query(sql);
    q.bind(id);
    while (q.next()) out.push_back(q.text(0));
    return out;
}

std::map<int64_t, std::vector<std::string>> namesById(Db& impl, const std::string& sql) {
    std::map<int64_t, std::vector<std::string>> out;
    auto q = impl.query(sql);
    while (q.next()) out[q.i64(0)].push_back(q.text(1));
    return out;
}

std::vector<std::string> take(std::map<int64_t, std::vector<std::string>>& m, int64_t id) {
    auto it = m.find(id);
    return it == m.end() ? std::vector<std::string>{} : std::move(it->second);
}

bool isHashed(std::string_view s) {
    return s.substr(0, 7) == "sha512:";
}

// Replaces a role map for one owner; `insertSql` must insert the role with
// name ?2 for owner ?1 and insert nothing when no such role exists.
void replaceNamedLinks(Db& impl, const std::string& deleteSql, const std::string& insertSql, int64_t owner,
                       const std::vector<std::string>& linkNames, std::string_view kind,
                       std::string_view ownerKind) {
    impl.query(deleteSql).bind(owner).run();
    const std::set<std::string> unique(linkNames.begin(), linkNames.end());
    for (const auto& n : unique) {
        auto q = impl.query(insertSql);
        q.bind(owner, n);
        const int rc = q.tryRun();
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
            throw StoreError(fmt::format("{} {} does not exist", ownerKind, owner));
        }
        if (rc != SQLITE_DONE) throwSqlite(impl.db, fmt::format("assign {} '{}'", kind, n));
        if (impl.changes() == 0) throw StoreError(fmt::format("{} '{}' does not exist", kind, n));
    }
}

}  // namespace

struct Store::Impl : Db {
    using Db::Db;
};

// ---------------------------------------------------------------------------

std::unique_ptr<Store> Store::open(const std::string& path) {
    if (path.empty()) throw StoreError("no database file given: set JupyterHub.db_url to a file path");
    const bool memory = path == ":memory:";
    if (!memory) createPrivateFile(path);

    sqlite3* raw = nullptr;
    // NOMUTEX: a Store is used by one thread at a time (its statement cache
    // is not shareable anyway), so SQLite's per-call locking buys nothing.
    const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    DbPtr db{raw};  // sqlite3_open_v2 allocates a handle even when it fails
    if (rc != SQLITE_OK) detail::throwOpenError(db.get(), path, rc, "open");
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), 5000);

    // Nothing may be written (not even the WAL switch in the header) before
    // the file is known to be ours and not newer than us.
    detail::checkSchema(db.get(), path);
    const auto pragma = [&](const char* sql) {
        char* err = nullptr;
        const int prc = sqlite3_exec(db.get(), sql, nullptr, nullptr, &err);
        std::unique_ptr<char, SqliteFree> owned{err};
        if (prc != SQLITE_OK) detail::throwOpenError(db.get(), path, prc, "configure");
    };
    // WAL lets readers proceed during writes; NORMAL is durable in WAL mode
    // except for the last commits on power loss, which hubd can afford.
    pragma("PRAGMA journal_mode=WAL");
    pragma("PRAGMA synchronous=NORMAL");
    pragma("PRAGMA foreign_keys=ON");
    detail::migrate(db.get(), path);
    return std::unique_ptr<Store>(new Store(db.release()));
}

Store::Store(sqlite3* db) : db_(db), impl_(std::make_unique<Impl>(db)) {}

Store::~Store() {
    // Statements first: sqlite3_close_v2 would otherwise defer the close.
    impl_.reset();
    sqlite3_close_v2(db_);
}

// ---- transactions ----------------------------------------------------------

void Store::begin() {
    if (impl_->depth == 0) {
        impl_->exec("BEGIN IMMEDIATE");
    } else {
        impl_->exec(fmt::format("SAVEPOINT hubd_sp{}", impl_->depth));
    }
    ++impl_->depth;
}

void Store::commit() {
    Impl& im = *impl_;
    if (im.depth == 0) throw StoreError(fmt::format("{}: commit() without an open transaction", dbPath(db_)));
    if (sqlite3_get_autocommit(db_)) {
        // SQLite already rolled back (e.g. on SQLITE_FULL); nothing to commit.
        im.depth = 0;
        throw StoreError(fmt::format("{}: the transaction was rolled back by SQLite", dbPath(db_)));
    }
    if (im.depth > 1) {
        const std::string sp = fmt::format("hubd_sp{}", im.depth - 1);
        const int rc = sqlite3_exec(db_, ("RELEASE " + sp).c_str(), nullptr, nullptr, nullptr);
        --im.depth;
        if (rc != SQLITE_OK) {
            // Undo this level so the caller's rollback() unwinds the right one.
            const std::string msg = sqlite3_errmsg(db_);
            sqlite3_exec(db_, fmt::format("ROLLBACK TO {0}; RELEASE {0}", sp).c_str(), nullptr, nullptr,
                         nullptr);
            throw StoreError(fmt::format("{}: cannot commit: {}", dbPath(db_), msg));
        }
        return;
    }
    const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
        // Leaving the transaction open would wedge every later begin().
        const std::string msg = sqlite3_errmsg(db_);
        if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        im.depth = 0;
        throw StoreError(fmt::format("{}: cannot commit: {}", dbPath(db_), msg));
    }
    im.depth = 0;
}

void Store::rollback() {
    // Never throws: it runs while another exception is propagating.
    Impl& im = *impl_;
    if (im.depth == 0) return;
    if (sqlite3_get_autocommit(db_)) {
        im.depth = 0;
        return;
    }
    if (im.depth == 1) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        im.depth = 0;
        return;
    }
    const std::string sp = fmt::format("hubd_sp{}", im.depth - 1);
    sqlite3_exec(db_, fmt::format("ROLLBACK TO {0}; RELEASE {0}", sp).c_str(), nullptr, nullptr, nullptr);
    --im.depth;
}

// ---- users -----------------------------------------------------------------

std::vector<UserRecord> Store::allUsers() {
    std::vector<UserRecord> users;
    auto roles = namesById(*impl_,
                           "SELECT m.user_id, r.name FROM user_role_map m JOIN roles r ON r.id = m.role_id "
                           "ORDER BY r.name");
    auto groups =
        namesById(*impl_,
                  "SELECT m.user_id, g.name FROM user_group_map m JOIN groups g ON g.id = m.group_id "
                  "ORDER BY g.name");
    static const std::string sql = fmt::format("SELECT {} FROM users ORDER BY id", kUserCols);
    auto q = impl_->query(sql);
    while (q.next()) {
        UserRecord u = readUser(q);
        u.roles = take(roles, u.id);
        u.groups = take(groups, u.id);
        users.push_back(std::move(u));
    }
    return users;
}

namespace {
void fillUserLinks(Db& impl, UserRecord& u) {
    u.roles =
        names(impl,
              "SELECT r.name FROM user_role_map m JOIN roles r ON r.id = m.role_id WHERE m.user_id = ?1 "
              "ORDER BY r.name",
              u.id);
    u.groups =
        names(impl,
              "SELECT g.name FROM user_group_map m JOIN groups g ON g.id = m.group_id WHERE m.user_id = ?1 "
              "ORDER BY g.name",
              u.id);
}
}  // namespace

std::optional<UserRecord> Store::findUser(std::string_view name) {
    std::optional<UserRecord> u;
    {
        static const std::string sql = fmt::format("SELECT {} FROM users WHERE name = ?1", kUserCols);
        auto q = impl_->query(sql);
        q.bind(name);
        if (!q.next()) return std::nullopt;
        u = readUser(q);
    }
    fillUserLinks(*impl_, *u);
    return u;
}

std::optional<UserRecord> Store::findUserById(int64_t id) {
    std::optional<UserRecord> u;
    {
        static const std::string sql = fmt::format("SELECT {} FROM users WHERE id = ?1", kUserCols);
        auto q = impl_->query(sql);
        q.bind(id);
        if (!q.next()) return std::nullopt;
        u = readUser(q);
    }
    fillUserLinks(*impl_, *u);
    return u;
}

UserRecord Store::createUser(std::string_view name, bool admin) {
    UserRecord u;
    u.name = std::string(name);
    u.admin = admin;
    u.created = now();
    u.cookieId = randomHex(16);
    auto q = impl_->query("INSERT INTO users (name, admin, created, cookie_id) VALUES (?1, ?2, ?3, ?4)");
    q.bind(u.name, u.admin, u.created, u.cookieId);
    const int rc = q.tryRun();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) throw StoreError(fmt::format("user {} already exists", name));
    if (rc != SQLITE_DONE) throwSqlite(db_, fmt::format("create user {}", name));
    u.id = impl_->lastId();
    return u;
}

void Store::updateUser(const UserRecord& user) {
    transaction([&] {
        {
            auto q = impl_->query(
                "UPDATE users SET name = ?2, admin = ?3, last_activity = ?4, cookie_id = ?5 WHERE id = ?1");
            q.bind(user.id, user.name, user.admin, user.lastActivity, user.cookieId);
            const int rc = q.tryRun();
            if (rc == SQLITE_CONSTRAINT_UNIQUE) {
                throw StoreError(fmt::format("user {} already exists", user.name));
            }
            if (rc != SQLITE_DONE) throwSqlite(db_, fmt::format("update user {}", user.name));
            if (impl_->changes() == 0) throw StoreError(fmt::format("user {} does not exist", user.id));
        }
        replaceNamedLinks(
            *impl_, "DELETE FROM user_role_map WHERE user_id = ?1",
            "INSERT INTO user_role_map (user_id, role_id) SELECT ?1, id FROM roles WHERE name = ?2", user.id,
            user.roles, "role", "user");
        replaceNamedLinks(
            *impl_, "DELETE FROM user_group_map WHERE user_id = ?1",
            "INSERT INTO user_group_map (user_id, group_id) SELECT ?1, id FROM groups WHERE name = ?2",
            user.id, user.groups, "group", "user");
    });
}

void Store::deleteUser(int64_t id) {
    impl_->query("DELETE FROM users WHERE id = ?1").bind(id).run();
}

void Store::touchUser(int64_t id, Timestamp when) {
    // Activity reports can arrive out of order; last_activity never goes back.
    impl_
        ->query(
            "UPDATE users SET last_activity = ?2 WHERE id = ?1 AND (last_activity IS NULL OR last_activity < "
            "?2)")
        .bind(id, when)
        .run();
}

// ---- services --------------------------------------------------------------

std::vector<ServiceRecord> Store::allServices() {
    auto roles =
        namesById(*impl_,
                  "SELECT m.service_id, r.name FROM service_role_map m JOIN roles r ON r.id = m.role_id "
                  "ORDER BY r.name");
    std::vector<ServiceRecord> out;
    auto q = impl_->query("SELECT id, name, admin FROM services ORDER BY id");
    while (q.next()) {
        ServiceRecord s;
        s.id = q.i64(0);
        s.name = q.text(1);
        s.admin = q.boolean(2);
        s.roles = take(roles, s.id);
        out.push_back(std::move(s));
    }
    return out;
}

ServiceRecord Store::ensureService(std::string_view name, bool admin) {
    ServiceRecord s;
    s.name = std::string(name);
    s.admin = admin;
    {
        auto q = impl_->query(
            "INSERT INTO services (name, admin) VALUES (?1, ?2) "
            "ON CONFLICT (name) DO UPDATE SET admin = excluded.admin RETURNING id");
        q.bind(s.name, admin);
        if (!q.next()) throwSqlite(db_, fmt::format("store service {}", name));
        s.id = q.i64(0);
    }
    s.roles = names(
        *impl_,
        "SELECT r.name FROM service_role_map m JOIN roles r ON r.id = m.role_id WHERE m.service_id = ?1 "
        "ORDER BY r.name",
        s.id);
    return s;
}

void Store::deleteService(int64_t id) {
    impl_->query("DELETE FROM services WHERE id = ?1").bind(id).run();
}

// ---- roles -----------------------------------------------------------------

std::vector<RoleRecord> Store::allRoles() {
    std::vector<RoleRecord> out;
    auto q = impl_->query("SELECT name, description, scopes FROM roles ORDER BY id");
    while (q.next()) out.push_back(RoleRecord{q.text(0), q.text(1), q.list(2)});
    return out;
}

void Store::upsertRole(const RoleRecord& role) {
    impl_
        ->query(
            "INSERT INTO roles (name, description, scopes) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (name) DO UPDATE SET description = excluded.description, scopes = excluded.scopes")
        .bind(role.name, role.description, role.scopes)
        .run();
}

void Store::setUserRoles(int64_t userId, const std::vector<std::string>& roles) {
    transaction([&] {
        replaceNamedLinks(
            *impl_, "DELETE FROM user_role_map WHERE user_id = ?1",
            "INSERT INTO user_role_map (user_id, role_id) SELECT ?1, id FROM roles WHERE name = ?2", userId,
            roles, "role", "user");
    });
}

void Store::setServiceRoles(int64_t serviceId, const std::vector<std::string>& roles) {
    transaction([&] {
        replaceNamedLinks(
            *impl_, "DELETE FROM service_role_map WHERE service_id = ?1",
            "INSERT INTO service_role_map (service_id, role_id) SELECT ?1, id FROM roles WHERE name = ?2",
            serviceId, roles, "role", "service");
    });
}

void Store::setGroupRoles(int64_t groupId, const std::vector<std::string>& roles) {
    transaction([&] {
        replaceNamedLinks(
            *impl_, "DELETE FROM group_role_map WHERE group_id = ?1",
            "INSERT INTO group_role_map (group_id, role_id) SELECT ?1, id FROM roles WHERE name = ?2",
            groupId, roles, "role", "group");
    });
}

// ---- groups ----------------------------------------------------------------

std::vector<GroupRecord> Store::allGroups() {
    auto users = namesById(*impl_,
                           "SELECT m.group_id, u.name FROM user_group_map m JOIN users u ON u.id = m.user_id "
                           "ORDER BY u.name");
    auto roles = namesById(*impl_,
                           "SELECT m.group_id, r.name FROM group_role_map m JOIN roles r ON r.id = m.role_id "
                           "ORDER BY r.name");
    std::vector<GroupRecord> out;
    auto q = impl_->query("SELECT id, name, properties FROM groups ORDER BY id");
    while (q.next()) {
        GroupRecord g;
        g.id = q.i64(0);
        g.name = q.text(1);
        g.properties = q.text(2);
        g.users = take(users, g.id);
        g.roles = take(roles, g.id);
        out.push_back(std::move(g));
    }
    return out;
}

GroupRecord Store::createGroup(std::string_view name) {
    GroupRecord g;
    g.name = std::string(name);
    auto q = impl_->query("INSERT INTO groups (name) VALUES (?1)");
    q.bind(g.name);
    const int rc = q.tryRun();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) throw StoreError(fmt::format("group {} already exists", name));
    if (rc != SQLITE_DONE) throwSqlite(db_, fmt::format("create group {}", name));
    g.id = impl_->lastId();
    return g;
}

void Store::deleteGroup(int64_t id) {
    impl_->query("DELETE FROM groups WHERE id = ?1").bind(id).run();
}

void Store::setGroupMembers(int64_t groupId, const std::vector<int64_t>& userIds) {
    transaction([&] {
        impl_->query("DELETE FROM user_group_map WHERE group_id = ?1").bind(groupId).run();
        for (const int64_t uid : std::set<int64_t>(userIds.begin(), userIds.end())) {
            auto q = impl_->query("INSERT INTO user_group_map (user_id, group_id) VALUES (?1, ?2)");
            q.bind(uid, groupId);
            const int rc = q.tryRun();
            if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
                throw StoreError(fmt::format("group {} or user {} does not exist", groupId, uid));
            }
            if (rc != SQLITE_DONE) throwSqlite(db_, "set group members");
        }
    });
}

void Store::setGroupProperties(int64_t groupId, std::string_view propertiesJson) {
    impl_->query("UPDATE groups SET properties = ?1 WHERE id = ?2").bind(propertiesJson, groupId).run();
}

// ---- tokens ----------------------------------------------------------------

int64_t Store::insertToken(const TokenRecord& token) {
    if (token.userId.has_value() == token.serviceId.has_value()) {
        throw StoreError("a token must belong to exactly one user or service");
    }
    // The prefix is all of the secret the database may hold in clear.
    if (!isHashed(token.hashed) || token.prefix.size() > 4) {
        throw StoreError("refusing to store a token that is not hashed with hashToken()");
    }
    auto q = impl_->query(
        "INSERT INTO api_tokens (user_id, service_id, prefix, hashed, client_id, session_id, created, "
        "expires_at, "
        "last_activity, note, scopes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    // A default-constructed `created` (the epoch) means "now".
    const Timestamp created = token.created == Timestamp{} ? now() : token.created;
    q.bind(token.userId, token.serviceId, token.prefix, token.hashed, token.clientId, token.sessionId,
           created, token.expiresAt, token.lastActivity, token.note, token.scopes);
    const int rc = q.tryRun();
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        throw StoreError(
            fmt::format("cannot store token: its owner or OAuth client '{}' does not exist", token.clientId));
    }
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        throw StoreError("cannot store token: the same hash is already stored");
    if (rc != SQLITE_DONE) throwSqlite(db_, "store a token");
    return impl_->lastId();
}

std::vector<TokenRecord> Store::tokensWithPrefix(std::string_view prefix) {
    std::vector<TokenRecord> out;
    static const std::string sql =
        fmt::format("SELECT {} FROM api_tokens WHERE prefix = ?1 ORDER BY id", kTokenCols);
    auto q = impl_->query(sql);
    q.bind(prefix);
    while (q.next()) out.push_back(readToken(q));
    return out;
}

std::vector<TokenRecord> Store::tokensOfUser(int64_t userId) {
    std::vector<TokenRecord> out;
    static const std::string sql =
        fmt::format("SELECT {} FROM api_tokens WHERE user_id = ?1 ORDER BY id", kTokenCols);
    auto q = impl_->query(sql);
    q.bind(userId);
    while (q.next()) out.push_back(readToken(q));
    return out;
}

std::vector<TokenRecord> Store::tokensOfService(int64_t serviceId) {
    std::vector<TokenRecord> out;
    static const std::string sql =
        fmt::format("SELECT {} FROM api_tokens WHERE service_id = ?1 ORDER BY id", kTokenCols);
    auto q = impl_->query(sql);
    q.bind(serviceId);
    while (q.next()) out.push_back(readToken(q));
    return out;
}

std::optional<TokenRecord> Store::findToken(int64_t id) {
    static const std::string sql = fmt::format("SELECT {} FROM api_tokens WHERE id = ?1", kTokenCols);
    auto q = impl_->query(sql);
    q.bind(id);
    if (!q.next()) return std::nullopt;
    return readToken(q);
}

void Store::deleteToken(int64_t id) {
    impl_->query("DELETE FROM api_tokens WHERE id = ?1").bind(id).run();
}

void Store::deleteTokensOfClient(int64_t userId, std::string_view clientId) {
    impl_->query("DELETE FROM api_tokens WHERE user_id = ?1 AND client_id = ?2").bind(userId, clientId).run();
}

void Store::touchToken(int64_t id, Timestamp when) {
    impl_
        ->query(
            "UPDATE api_tokens SET last_activity = ?2 WHERE id = ?1 AND (last_activity IS NULL OR "
            "last_activity < ?2)")
        .bind(id, when)
        .run();
}

int Store::purgeExpiredTokens(Timestamp nowTime) {
    impl_->query("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < ?1")
        .bind(nowTime)
        .run();
    return impl_->changes();
}

// ---- servers ---------------------------------------------------------------

std::vector<ServerRecord> Store::allServers() {
    std::vector<ServerRecord> out;
    static const std::string sql = fmt::format("SELECT {} FROM servers ORDER BY id", kServerCols);
    auto q = impl_->query(sql);
    while (q.next()) out.push_back(readServer(q));
    return out;
}

std::optional<ServerRecord> Store::findServer(int64_t userId, std::string_view name) {
    static const std::string sql =
        fmt::format("SELECT {} FROM servers WHERE user_id = ?1 AND name = ?2", kServerCols);
    auto q = impl_->query(sql);
    q.bind(userId, name);
    if (!q.next()) return std::nullopt;
    return readServer(q);
}

ServerRecord Store::saveServer(const ServerRecord& server) {
    ServerRecord saved = server;
    const bool insert = server.id == 0;
    auto q = impl_->query(
        insert
            ? "INSERT INTO servers (user_id, name, active, url, base_url, state, started, last_activity, "
              "user_options, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL)"
            : "UPDATE servers SET user_id = ?1, name = ?2, active = ?3, url = ?4, base_url = ?5, state = ?6, "
              "started = ?7, last_activity = ?8, user_options = ?9 WHERE id = ?10");
    if (insert) {
        q.bind(server.userId, server.name, server.active, server.url, server.baseUrl, server.state,
               server.started, server.lastActivity, server.userOptions);
    } else {
        q.bind(server.userId, server.name, server.active, server.url, server.baseUrl, server.state,
               server.started, server.lastActivity, server.userOptions, server.id);
    }
    const int rc = q.tryRun();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        throw StoreError(fmt::format("user {} already has a server named '{}'", server.userId, server.name));
    }
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        throw StoreError(fmt::format("user {} does not exist", server.userId));
    if (rc != SQLITE_DONE) throwSqlite(db_, "save a server");
    if (insert) {
        saved.id = impl_->lastId();
    } else if (impl_->changes() == 0) {
        throw StoreError(fmt::format("server {} does not exist", server.id));
    }
    return saved;
}

void Store::deleteServer(int64_t id) {
    impl_->query("DELETE FROM servers WHERE id = ?1").bind(id).run();
}

// ---- OAuth -----------------------------------------------------------------

void Store::upsertOAuthClient(const OAuthClientRecord& client) {
    // '' is allowed: JupyterHub's own client has no secret.
    if (!client.secretHash.empty() && !isHashed(client.secretHash)) {
        throw StoreError("refusing to store an OAuth client secret that is not hashed with hashToken()");
    }
    impl_
        ->query(
            "INSERT INTO oauth_clients (identifier, description, secret_hash, redirect_uri, allowed_scopes) "
            "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (identifier) DO UPDATE SET "
            "description = excluded.description, secret_hash = excluded.secret_hash, "
            "redirect_uri = excluded.redirect_uri, allowed_scopes = excluded.allowed_scopes")
        .bind(client.identifier, client.description, client.secretHash, client.redirectUri,
              client.allowedScopes)
        .run();
}

std::optional<OAuthClientRecord> Store::findOAuthClient(std::string_view identifier) {
    auto q = impl_->query(
        "SELECT identifier, description, secret_hash, redirect_uri, allowed_scopes FROM oauth_clients "
        "WHERE identifier = ?1");
    q.bind(identifier);
    if (!q.next()) return std::nullopt;
    return OAuthClientRecord{q.text(0), q.text(1), q.text(2), q.text(3), q.list(4)};
}

void Store::deleteOAuthClient(std::string_view identifier) {
    impl_->query("DELETE FROM oauth_clients WHERE identifier = ?1").bind(identifier).run();
}

int64_t Store::insertOAuthCode(const OAuthCodeRecord& code) {
    if (!isHashed(code.codeHash)) {
        throw StoreError("refusing to store an OAuth code that is not hashed with hashToken()");
    }
    auto q = impl_->query(
        "INSERT INTO oauth_codes (client_id, code_hash, expires_at, redirect_uri, session_id, user_id, "
        "scopes) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    q.bind(code.clientId, code.codeHash, code.expiresAt, code.redirectUri, code.sessionId, code.userId,
           code.scopes);
    const int rc = q.tryRun();
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
        throw StoreError(fmt::format("cannot store OAuth code: client '{}' or user {} does not exist",
                                     code.clientId, code.userId));
    }
    if (rc != SQLITE_DONE) throwSqlite(db_, "store an OAuth code");
    return impl_->lastId();
}

std::vector<OAuthCodeRecord> Store::oauthCodesOfClient(std::string_view clientId) {
    std::vector<OAuthCodeRecord> out;
    static const std::string sql =
        fmt::format("SELECT {} FROM oauth_codes WHERE client_id = ?1 ORDER BY id", kCodeCols);
    auto q = impl_->query(sql);
    q.bind(clientId);
    while (q.next()) out.push_back(readCode(q));
    return out;
}

void Store::deleteOAuthCode(int64_t id) {
    impl_->query("DELETE FROM oauth_codes WHERE id = ?1").bind(id).run();
}

int Store::purgeExpiredOAuthCodes(int64_t nowUnix) {
    impl_->query("DELETE FROM oauth_codes WHERE expires_at < ?1").bind(nowUnix).run();
    return impl_->changes();
}

}  // namespace hub
