// SPDX-License-Identifier: BSD-3-Clause
// Tests of the LDAP injection boundary (RFC 4514/4515 escaping, templates),
// the checks before any bind, and the LDAPAuthenticator configuration.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "hubcore/auth.h"
#include "hubcore/config.h"
#include "hubcore/ldap_escape.h"

using namespace std::string_literals;

namespace {

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

// A loopback listener that never accepts: whether a client connected shows
// in its backlog, which the test reads with a non-blocking accept().
class Listener {
public:
    Listener() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd_, 8) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
    }
    ~Listener() { ::close(fd_); }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    int port() const { return port_; }
    bool someoneConnected() const {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return false;
        ::close(c);
        return true;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

hub::Settings ldapSettings(int port) {
    hub::Settings s;
    s.authenticatorClass = "ldap";
    s.ldap.serverAddress = "127.0.0.1";
    s.ldap.serverPort = port;
    s.ldap.tlsStrategy = "insecure";
    s.ldap.timeout = 1;
    s.ldap.bindDnTemplate = {"uid={username},ou=people,dc=example,dc=org"};
    return s;
}

hub::LoadResult load(std::vector<std::string> overrides) {
    overrides.insert(overrides.begin(), "--JupyterHub.authenticator_class='ldap'");
    return hub::loadSettings(std::nullopt, overrides);
}

std::string messages(const hub::LoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics) out += d.message + "\n";
    return out;
}

}  // namespace

TEST_CASE("RFC 4515: filter values escape *, (, ), backslash and NUL") {
    using hub::ldap::escapeFilterValue;
    const std::pair<std::string, std::string> table[] = {
        {"alice", "alice"},
        {"*", "\\2a"},
        {"(", "\\28"},
        {")", "\\29"},
        {"\\", "\\5c"},
        {"\0"s, "\\00"},
        {")(uid=*", "\\29\\28uid=\\2a"},
        {"admin)(|(uid=*", "admin\\29\\28|\\28uid=\\2a"},
        {"a\\2a", "a\\5c2a"},  // an escape sequence typed by the user stays literal
        {"bob\0*"s, "bob\\00\\2a"},
        {"j\xc3\xb6rg", "j\xc3\xb6rg"},  // UTF-8 is sent as it is
        {"bob,ou=people", "bob,ou=people"},
    };
    for (const auto& [in, want] : table) {
        CAPTURE(in);
        CHECK(escapeFilterValue(in) == want);
    }
}

TEST_CASE("RFC 4514: DN values escape the special characters") {
    using hub::ldap::escapeDnValue;
    const std::pair<std::string, std::string> table[] = {
        {"alice", "alice"},
        {"bob,ou=people", "bob\\,ou\\=people"},
        {"a+b", "a\\+b"},
        {"a\"b", "a\\\"b"},
        {"a\\b", "a\\\\b"},
        {"<a>", "\\<a\\>"},
        {"a;b", "a\\;b"},
        {"#a#", "\\#a#"},        // only a leading '#'
        {" a b ", "\\ a b\\ "},  // only leading and trailing spaces
        {"a\0b"s, "a\\00b"},
        {"*", "*"},  // not special in a DN
        {"j\xc3\xb6rg", "j\xc3\xb6rg"},
    };
    for (const auto& [in, want] : table) {
        CAPTURE(in);
        CHECK(escapeDnValue(in) == want);
    }
}

TEST_CASE("templates: {username}, literal braces, and what is refused") {
    std::string why;
    auto dn = hub::ldap::userDn("uid={username},ou=people,dc=example,dc=org", "bob,ou=admins", why);
    REQUIRE(dn);
    CHECK(*dn == "uid=bob\\,ou\\=admins,ou=people,dc=example,dc=org");
    dn = hub::ldap::userDn("cn={username}+uid={username},dc=x", "a", why);
    REQUIRE(dn);
    CHECK(*dn == "cn=a+uid=a,dc=x");
    auto t = hub::ldap::formatTemplate("{{x}}{username}}}", {{"username", "u"}}, why);
    REQUIRE(t);
    CHECK(*t == "{x}u}");
    for (const char* bad :
         {"uid={user}", "uid={0}", "uid={username!r}", "uid={username:>9}", "uid={username", "uid=}", "{}"}) {
        CAPTURE(bad);
        why.clear();
        CHECK_FALSE(hub::ldap::userDn(bad, "bob", why));
        CHECK_FALSE(why.empty());
    }
    why.clear();
    CHECK_FALSE(hub::ldap::userDn("uid={uid}", "bob", why));
    CHECK(contains(why, "{uid}"));
    CHECK(contains(why, "{username}"));
}

TEST_CASE("filters: the login name cannot change the filter's structure") {
    std::string why;
    const char* tmpl = "({login_attr}={login})";
    auto f = hub::ldap::lookupFilter(tmpl, "uid", "alice", why);
    REQUIRE(f);
    CHECK(*f == "(uid=alice)");
    f = hub::ldap::lookupFilter(tmpl, "uid", "*", why);
    REQUIRE(f);
    CHECK(*f == "(uid=\\2a)");
    f = hub::ldap::lookupFilter(tmpl, "uid", "*)(uid=*))(|(uid=*", why);
    REQUIRE(f);
    CHECK(*f == "(uid=\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a)");
    // Whatever the name, the only parentheses are the template's.
    for (const std::string& name : std::vector<std::string>{"admin)(|(uid=*", ")(", "\\29", "a\0b"s}) {
        f = hub::ldap::lookupFilter("(&(objectClass=person)({login_attr}={login}))", "uid", name, why);
        REQUIRE(f);
        CHECK(std::count(f->begin(), f->end(), '(') == 3);
        CHECK(std::count(f->begin(), f->end(), ')') == 3);
        CHECK(f->find('*') == std::string::npos);
        CHECK(f->find('\0') == std::string::npos);
    }
    CHECK_FALSE(hub::ldap::lookupFilter("({user}={login})", "uid", "a", why));

    auto g =
        hub::ldap::groupFilter(hub::LdapSettings{}.groupSearchFilter, "uid=a\\2c b,ou=people,dc=x", "*", why);
    REQUIRE(g);
    CHECK(*g ==
          "(|(member=uid=a\\5c2c b,ou=people,dc=x)(uniqueMember=uid=a\\5c2c b,ou=people,dc=x)"
          "(memberUid=\\2a))");
}

TEST_CASE("search_filter: {username} is filter-escaped, {userattr} is configuration") {
    std::string why;
    const char* tmpl = "(&(objectClass=person)({userattr}={username}))";
    auto f = hub::ldap::userFilter(tmpl, "uid", "alice", why);
    REQUIRE(f);
    CHECK(*f == "(&(objectClass=person)(uid=alice))");
    const std::pair<std::string, std::string> crafted[] = {
        {"*", "\\2a"},
        {")(uid=*", "\\29\\28uid=\\2a"},
        {"admin)(|(uid=*", "admin\\29\\28|\\28uid=\\2a"},
        {"a\\b", "a\\5cb"},
        {"a\0b"s, "a\\00b"},
    };
    for (const auto& [name, escaped] : crafted) {
        CAPTURE(name);
        f = hub::ldap::userFilter(tmpl, "uid", name, why);
        REQUIRE(f);
        CHECK(*f == "(&(objectClass=person)(uid=" + escaped + "))");
        CHECK(std::count(f->begin(), f->end(), '(') == 3);
        CHECK(std::count(f->begin(), f->end(), ')') == 3);
    }
    // Without a user_attribute, {userattr} is an error rather than "None".
    CHECK_FALSE(hub::ldap::userFilter(tmpl, "", "alice", why));
    CHECK(contains(why, "{userattr}"));
    f = hub::ldap::userFilter("(uid={username})", "", "alice", why);
    REQUIRE(f);
    CHECK(*f == "(uid=alice)");
    CHECK_FALSE(hub::ldap::userFilter("(uid={login})", "uid", "alice", why));
}

TEST_CASE("group_search_filter: {userdn} and {uid} are filter-escaped") {
    std::string why;
    auto f = hub::ldap::groupFilter("(&(objectClass=posixGroup)(memberUid={uid}))", "uid=x,dc=y",
                                    "admin)(|(uid=*", why);
    REQUIRE(f);
    CHECK(*f == "(&(objectClass=posixGroup)(memberUid=admin\\29\\28|\\28uid=\\2a))");
    f = hub::ldap::groupFilter("(&(objectClass=groupOfNames)(member={userdn}))", "cn=*\\, (x),dc=y", "x",
                               why);
    REQUIRE(f);
    CHECK(*f == "(&(objectClass=groupOfNames)(member=cn=\\2a\\5c, \\28x\\29,dc=y))");
    CHECK_FALSE(hub::ldap::groupFilter("(member={username})", "dn", "x", why));
    CHECK(contains(why, "{userdn}"));
}

TEST_CASE("blank passwords are recognised") {
    using hub::ldap::blankPassword;
    CHECK(blankPassword(""));
    CHECK(blankPassword(" "));
    CHECK(blankPassword(" \t\r\n"));
    CHECK_FALSE(blankPassword("x"));
    CHECK_FALSE(blankPassword(" x "));
    CHECK_FALSE(blankPassword("\0"s));
}

TEST_CASE("LDAPAuthenticator: a blank password never reaches the server") {
    Listener server;
    auto auth = hub::makeAuthenticator(ldapSettings(server.port()));
    CHECK(auth->className() == "ldapauthenticator.LDAPAuthenticator");
    for (const char* pw : {"", "   ", "\t"}) {
        CAPTURE(pw);
        auto r = auth->authenticate("alice", pw);
        CHECK_FALSE(r.ok);
        CHECK(contains(r.failureReason, "blank password"));
    }
    CHECK_FALSE(server.someoneConnected());
    // The control: a real password does reach it (and then times out).
    const auto started = std::chrono::steady_clock::now();
    auto r = auth->authenticate("alice", "secret");
    CHECK_FALSE(r.ok);
    CHECK(server.someoneConnected());
    CHECK(contains(r.failureReason, "did not answer within 1 s"));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
}

TEST_CASE("LDAPAuthenticator: valid_username_regex is applied before the server is asked") {
    Listener server;
    auto s = ldapSettings(server.port());
    auto auth = hub::makeAuthenticator(s);
    for (const std::string& name :
         std::vector<std::string>{"*", ")(uid=*", "admin)(|(uid=*", "a\\b", "bob\0"s, "bob,ou=people", "Bob",
                                  "", std::string(2000, 'a')}) {
        CAPTURE(name);
        auto r = auth->authenticate(name, "secret");
        CHECK_FALSE(r.ok);
        CHECK(!r.failureReason.empty());
    }
    CHECK_FALSE(server.someoneConnected());
    // A pattern that lets everything through hands the escaping the work.
    s.ldap.validUsernameRegex = ".*";
    auth = hub::makeAuthenticator(s);
    CHECK_FALSE(auth->authenticate("a*", "secret").ok);
    CHECK(server.someoneConnected());
}

TEST_CASE("LDAPAuthenticator: an unreachable server is a failed login naming the server") {
    hub::Settings s = ldapSettings(1);  // nothing listens on port 1 of loopback
    auto r = hub::makeAuthenticator(s)->authenticate("alice", "secret");
    CHECK_FALSE(r.ok);
    CHECK(contains(r.failureReason, "ldap://127.0.0.1:1"));
    CHECK(contains(r.failureReason, "cannot be reached"));
}

TEST_CASE("configuration: ldapauthenticator's names") {
    auto r = load({"--LDAPAuthenticator.server_address='ldap.example.org'",
                   "--LDAPAuthenticator.bind_dn_template='uid={username},ou=people,dc=example,dc=org'",
                   "--LDAPAuthenticator.allowed_groups=['cn=jupyter,ou=groups,dc=example,dc=org']",
                   "--LDAPAuthenticator.use_ssl=True", "--LDAPAuthenticator.timeout=3",
                   "--LDAPAuthenticator.tls_kwargs={'ca_certs_file': '/etc/ldap/ca.pem'}"});
    CAPTURE(messages(r));
    CHECK(r.ok());
    CHECK(r.settings.authenticatorClass == "ldap");
    CHECK(r.settings.ldap.serverAddress == "ldap.example.org");
    CHECK(r.settings.ldap.bindDnTemplate ==
          std::vector<std::string>{"uid={username},ou=people,dc=example,dc=org"});
    CHECK(r.settings.ldap.tlsStrategy == "on_connect");
    CHECK(r.settings.ldap.caCertsFile == "/etc/ldap/ca.pem");
    CHECK(r.settings.ldap.timeout == 3);
    CHECK(r.settings.ldap.allowedGroups.size() == 1);
    CHECK(r.settings.allowedGroups.empty());  // group DNs are not Unix groups
    CHECK(hub::makeAuthenticator(r.settings)->className() == "ldapauthenticator.LDAPAuthenticator");

    r = hub::loadSettings(
        std::nullopt,
        {"--JupyterHub.authenticator_class='ldapauthenticator.LDAPAuthenticator'",
         "--LDAPAuthenticator.server_address='h'", "--LDAPAuthenticator.lookup_dn=True",
         "--LDAPAuthenticator.user_search_base='dc=x'", "--LDAPAuthenticator.user_attribute='uid'"});
    CAPTURE(messages(r));
    CHECK(r.ok());
    CHECK(r.settings.ldap.tlsStrategy == "before_bind");  // StartTLS unless told otherwise
    CHECK(r.settings.ldap.validUsernameRegex == "^[a-z][.a-z0-9_-]*$");
    CHECK(r.settings.ldap.lookupDnSearchFilter == "({login_attr}={login})");

    // ldapauthenticator's optional strings may be None.
    r = load({"--LDAPAuthenticator.server_address='h'",
              "--LDAPAuthenticator.bind_dn_template=['uid={username}']",
              "--LDAPAuthenticator.lookup_dn_search_user=None", "--LDAPAuthenticator.user_attribute=None"});
    CAPTURE(messages(r));
    CHECK(r.ok());
    CHECK(r.settings.ldap.lookupDnSearchUser.empty());

    // ldapauthenticator 2.0's defaults, and the new search traits.
    CHECK(r.settings.ldap.groupSearchFilter ==
          "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))");
    CHECK(r.settings.ldap.groupAttributes == std::vector<std::string>{"member", "uniqueMember", "memberUid"});
    CHECK(r.settings.ldap.searchFilter.empty());
    r = load(
        {"--LDAPAuthenticator.server_address='h'", "--LDAPAuthenticator.bind_dn_template='uid={username}'",
         "--LDAPAuthenticator.search_filter='(&(objectClass=person)({userattr}={username}))'",
         "--LDAPAuthenticator.user_search_base='dc=x'", "--LDAPAuthenticator.user_attribute='uid'",
         "--LDAPAuthenticator.attributes=['uid', 'mail']", "--LDAPAuthenticator.allowed_groups=['cn=g,dc=x']",
         "--LDAPAuthenticator.group_search_filter='(&(objectClass=posixGroup)(memberUid={uid}))'",
         "--LDAPAuthenticator.group_attributes=['memberUid']"});
    CAPTURE(messages(r));
    CHECK(r.ok());
    CHECK(messages(r).empty());  // nothing "not yet supported"
    CHECK(r.settings.ldap.searchFilter == "(&(objectClass=person)({userattr}={username}))");
    CHECK(r.settings.ldap.attributes == std::vector<std::string>{"uid", "mail"});
    CHECK(r.settings.ldap.groupSearchFilter == "(&(objectClass=posixGroup)(memberUid={uid}))");
    CHECK(r.settings.ldap.groupAttributes == std::vector<std::string>{"memberUid"});

    // allowed_groups None or []: no group restriction, as in ldapauthenticator.
    for (const char* none : {"None", "[]"}) {
        r = load({"--LDAPAuthenticator.server_address='h'",
                  "--LDAPAuthenticator.bind_dn_template='uid={username}'",
                  "--LDAPAuthenticator.allowed_groups=['cn=g,dc=x']",
                  "--LDAPAuthenticator.allowed_groups="s + none});
        CAPTURE(messages(r));
        CHECK(r.ok());
        CHECK(r.settings.ldap.allowedGroups.empty());
    }
}

TEST_CASE("configuration: mistakes are errors before the first login") {
    const std::string base = "--LDAPAuthenticator.server_address='h'";
    const std::string dn = "--LDAPAuthenticator.bind_dn_template=['uid={username},dc=x']";
    struct Case {
        std::vector<std::string> args;
        const char* says;
    };
    const Case cases[] = {
        {{dn}, "server_address"},
        {{base}, "bind_dn_template"},
        {{base, dn, "--LDAPAuthenticator.tls_strategy='starttls'"}, "before_bind"},
        {{base, "--LDAPAuthenticator.bind_dn_template=['uid={user},dc=x']"}, "{user}"},
        {{base, dn, "--LDAPAuthenticator.lookup_dn_search_filter='({uid}={login})'"}, "{uid}"},
        {{base, dn, "--LDAPAuthenticator.valid_username_regex='['"}, "regular expression"},
        {{base, "--LDAPAuthenticator.lookup_dn=True"}, "user_search_base"},
        {{base, dn, "--LDAPAuthenticator.lookup_dn_search_user='cn=admin,dc=x'"},
         "empty password is anonymous"},
        {{base, dn, "--LDAPAuthenticator.lookup_dn_search_password='pw'"}, "command line"},
        {{base, dn, "--LDAPAuthenticator.timeout=0"}, "1 to 300"},
        {{base, dn, "--LDAPAuthenticator.search_filter='(uid={login})'"}, "{login}"},
        {{base, dn, "--LDAPAuthenticator.search_filter='(uid={username})'"}, "user_search_base"},
        {{base, dn, "--LDAPAuthenticator.search_filter='({userattr}={username})'",
          "--LDAPAuthenticator.user_search_base='dc=x'"},
         "user_attribute is unset"},
        {{base, dn, "--LDAPAuthenticator.group_search_filter='(member={user})'"}, "{user}"},
        {{base, dn, "--LDAPAuthenticator.allowed_groups=['cn=g,dc=x']",
          "--LDAPAuthenticator.group_attributes=[]"},
         "group_attributes"},
        {{base, dn, "--LDAPAuthenticator.allowed_groups=['cn=g,dc=x']",
          "--LDAPAuthenticator.group_search_filter=''"},
         "group_search_filter"},
        {{base, dn, "--LDAPAuthenticator.allowed_groups='cn=g,dc=x'"}, "list of strings"},
        {{base, dn, "--LDAPAuthenticator.tls_kwargs={'validate': 0}"}, "always verifies"},
        {{base, dn, "--LDAPAuthenticator.tls_kwargs={'ca_certs_file': '/c.pem', 'ciphers': 'ALL'}"},
         "'ciphers'"},
    };
    for (const auto& c : cases) {
        auto r = load(c.args);
        CAPTURE(messages(r));
        CHECK_FALSE(r.ok());
        CHECK(contains(messages(r), c.says));
    }
    auto r = load(
        {base, dn, "--LDAPAuthenticator.tls_strategy='insecure'", "--LDAPAuthenticator.escape_userdn=True"});
    CAPTURE(messages(r));
    CHECK(r.ok());
    CHECK(contains(messages(r), "clear text"));
    CHECK(contains(messages(r), "always escapes"));
}
