// SPDX-License-Identifier: BSD-3-Clause
// Tests of the configuration loader: statements, overrides, class rules, validation, seed snippets.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <fmt/format.h>

#include "hubcore/config.h"

using hub::Assignment;
using hub::ConfigDiagnostic;
using hub::LoadResult;
using hub::PyValue;
using Severity = ConfigDiagnostic::Severity;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kRule =
    "is not supported: hubd configuration files contain only c.Class.trait = <literal> assignments";

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "hubd-config-test-XXXXXX").string();
        REQUIRE(mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string write(const std::string& name, std::string_view text) const {
        const std::string file = (path_ / name).string();
        std::ofstream(file, std::ios::binary) << text;
        return file;
    }

private:
    fs::path path_;
};

LoadResult load(std::string_view text, const std::vector<std::string>& overrides = {}) {
    TempDir dir;
    return hub::loadSettings(dir.write("jupyterhub_config.py", text), overrides);
}

std::string dump(const LoadResult& r) {
    std::string out;
    for (const auto& d : r.diagnostics)
        out += (d.severity == Severity::Error ? "error: " : "warning: ") + d.format() + "\n";
    return out;
}

const ConfigDiagnostic* find(const LoadResult& r, Severity sev, std::string_view needle) {
    for (const auto& d : r.diagnostics)
        if (d.severity == sev && contains(d.message, needle)) return &d;
    return nullptr;
}
bool hasError(const LoadResult& r, std::string_view needle) {
    return find(r, Severity::Error, needle) != nullptr;
}
bool hasWarning(const LoadResult& r, std::string_view needle) {
    return find(r, Severity::Warning, needle) != nullptr;
}

// The loaded value must equal what the file says, and nothing may be wrong.
LoadResult loadOk(std::string_view text, const std::vector<std::string>& overrides = {}) {
    auto r = load(text, overrides);
    INFO(dump(r));
    CHECK(r.ok());
    return r;
}

// Checks one error, returning it for more checks.
ConfigDiagnostic loadError(std::string_view text, std::string_view needle) {
    auto r = load(text);
    INFO("config: ", std::string(text), "\n", dump(r));
    CHECK_FALSE(r.ok());
    const ConfigDiagnostic* d = find(r, Severity::Error, needle);
    REQUIRE(d != nullptr);
    return *d;
}

std::vector<std::string> v(std::initializer_list<const char*> items) {
    return {items.begin(), items.end()};
}

// tests/data, found from the source path the compiler saw (absolute, or relative to the
// build directory, which is the test's working directory or the parent of its own).
fs::path dataFile(const std::string& name) {
    const fs::path rel = fs::path(__FILE__).parent_path().parent_path() / "data" / name;
    std::vector<fs::path> candidates = {rel};
    if (const char* root = std::getenv("HUBD_SOURCE_ROOT"))
        candidates.push_back(fs::path(root) / "tests/data" / name);
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) candidates.push_back(exe.parent_path().parent_path() / rel);
    for (const auto& c : candidates)
        if (fs::exists(c)) return c;
    FAIL("cannot find tests/data/", name);
    return {};
}

}  // namespace

TEST_CASE("statements: assignments, get_config, docstrings, semicolons") {
    std::vector<ConfigDiagnostic> diags;
    const auto as = hub::parseConfigText(
        "\"\"\"My hub.\"\"\"\n"
        "c = get_config()  # noqa\n"
        "c.JupyterHub.port = 8001\n"
        "c.Authenticator.admin_users = {\n"
        "    'a',  # the admin\n"
        "}\n"
        "c.JupyterHub.ip = '1.2.3.4'; c.JupyterHub.base_url = '/x/'\n"
        "c = get_config()\n"
        "c.Spawner.args = \\\n"
        "    ['--debug']\n",
        "jupyterhub_config.py", diags);
    CHECK(diags.empty());
    REQUIRE(as.size() == 5);
    CHECK(as[0].cls == "JupyterHub");
    CHECK(as[0].trait == "port");
    CHECK(as[0].value.integer == 8001);
    CHECK(as[0].line == 3);
    CHECK(as[0].file == "jupyterhub_config.py");
    CHECK(as[1].line == 4);
    CHECK(as[1].value.items.size() == 1);
    CHECK(as[2].line == 7);
    CHECK(as[3].line == 7);
    CHECK(as[3].value.str == "/x/");
    CHECK(as[4].line == 9);

    // CRLF and CR line ends and a byte order mark, as editors on other systems write them.
    diags.clear();
    const auto crlf = hub::parseConfigText(
        "\xef\xbb\xbf# hub\r\nc = get_config()\r\nc.JupyterHub.port = 1\r\rc.JupyterHub.ip = "
        "'''a\r\nb'''\r\n",
        "f", diags);
    CHECK(diags.empty());
    REQUIRE(crlf.size() == 2);
    CHECK(crlf[1].line == 5);
    CHECK(crlf[1].value.str == "a\nb");
}

TEST_CASE("statements: import fails with FILE:LINE") {
    auto r = load("c = get_config()\nimport os\n");
    CHECK_FALSE(r.ok());
    REQUIRE(r.diagnostics.size() == 1);
    const std::string formatted = r.diagnostics[0].format();
    CHECK(contains(formatted,
                   "jupyterhub_config.py:2: import is not supported: hubd configuration files contain "
                   "only c.Class.trait = <literal> assignments"));
    CHECK(r.diagnostics[0].line == 2);
}

TEST_CASE("statements: every other construct is refused with its line") {
    const std::string text =
        "c = get_config()\n"                                   // 1
        "import os\n"                                          // 2
        "from jupyterhub.auth import PAMAuthenticator\n"       // 3
        "c.JupyterHub.ip = os.environ['IP']\n"                 // 4
        "c.JupyterHub.ip = os.environ.get('IP')\n"             // 5
        "c.JupyterHub.cookie_secret = open('/x').read()\n"     // 6
        "c.JupyterHub.port = 1+2\n"                            // 7
        "x = 5\n"                                              // 8
        "for u in ['a']:\n"                                    // 9
        "    c.Authenticator.admin_users = {u}\n"              // 10 (inside the rejected loop)
        "if True:\n"                                           // 11
        "    pass\n"                                           // 12
        "c.JupyterHub.base_url = f'/{x}/'\n"                   // 13
        "c.JupyterHub.port += 1\n"                             // 14
        "c.JupyterHub.a.b = 1\n"                               // 15
        "c.JupyterHub.services[0] = {}\n"                      // 16
        "print('hi')\n"                                        // 17
        "def f():\n"                                           // 18
        "    return 1\n"                                       // 19
        "c.JupyterHub = {'port': 1}\n"                         // 20
        "c = 5\n"                                              // 21
        "c.Spawner.cmd.append('x')\n"                          // 22
        "c.JupyterHub.port = 8000\n"                           // 23 fine
        "    c.JupyterHub.port = 8001\n"                       // 24
        "1 + 2\n"                                              // 25
        "load_subconfig('other.py')\n"                         // 26
        "while True: pass\n"                                   // 27
        "c.JupyterHub.port: int = 5\n"                         // 28
        "class X: pass\n"                                      // 29
        "c.JupyterHub.admin_access = True if x else False\n"   // 30
        "os.environ['A'] = 'b'\n"                              // 31
        "c.Authenticator.admin_users = ['a' for u in 'ab']\n"  // 32
        "with open('x') as f: pass\n"                          // 33
        "c.JupyterHub.port = 8000 # fine again\n";             // 34
    std::vector<ConfigDiagnostic> diags;
    const auto as = hub::parseConfigText(text, "hub.py", diags);
    REQUIRE(as.size() == 2);
    CHECK(as[0].line == 23);
    CHECK(as[1].line == 34);

    const std::vector<std::pair<int, std::string>> expected = {
        {2, "import"},
        {3, "import"},
        {4, "subscript os.environ[...]"},
        {5, "calling os.environ.get()"},
        {6, "calling open()"},
        {7, "an expression (operator '+')"},
        {8, "assigning to x"},
        {9, "a for loop"},
        {11, "an if statement"},
        {13, "an f-string"},
        {14, "augmented assignment (c.JupyterHub.port +=)"},
        {15, "the attribute chain c.JupyterHub.a.b"},
        {16, "a subscript (c.JupyterHub.services[...])"},
        {17, "calling print()"},
        {18, "a function definition"},
        {20, "assigning a whole section"},
        {21, "assigning anything but get_config() to c"},
        {22, "calling c.Spawner.cmd.append()"},
        {24, "unexpected indentation"},
        {25, "an expression statement"},
        {26, "calling load_subconfig()"},
        {27, "a while loop"},
        {28, "an annotated assignment"},
        {29, "a class definition"},
        {30, "a conditional expression"},
        {31, "subscript"},
        {32, "a comprehension"},
        {33, "a with statement"},
    };
    std::string all;
    for (const auto& d : diags) all += d.format() + "\n";
    INFO(all);
    REQUIRE(diags.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(i);
        CHECK(diags[i].severity == Severity::Error);
        CHECK(diags[i].file == "hub.py");
        CHECK(diags[i].line == expected[i].first);
        CHECK(contains(diags[i].message, expected[i].second));
        if (expected[i].first != 24) CHECK(contains(diags[i].message, kRule));
    }
}

TEST_CASE("statements: statements before a lexical error still count") {
    std::vector<ConfigDiagnostic> diags;
    const auto as = hub::parseConfigText(
        "c.JupyterHub.port = 8001\nc.JupyterHub.ip = 'abc\nc.JupyterHub.port = 1\n", "f", diags);
    REQUIRE(as.size() == 1);
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].line == 2);
    CHECK(contains(diags[0].message, "unterminated string literal"));
}

TEST_CASE("overrides") {
    std::vector<ConfigDiagnostic> diags;
    auto one = [&](const char* arg) {
        auto a = hub::parseOverride(arg, diags);
        INFO(arg);
        REQUIRE(a.has_value());
        CHECK(a->file == "<command line>");
        CHECK(a->line == 0);
        return a->value;
    };
    CHECK(one("--JupyterHub.spawner_class=sudospawner.SudoSpawner").str == "sudospawner.SudoSpawner");
    CHECK(one("--JupyterHub.port=8001").integer == 8001);
    CHECK(one("--JupyterHub.ip='1.2.3.4'").str == "1.2.3.4");
    CHECK(one("--JupyterHub.base_url=/jhub/").str == "/jhub/");
    CHECK(one("--JupyterHub.ip=123").kind == PyValue::Kind::Str);  // Unicode traits keep the text
    CHECK(one("--JupyterHub.log_level=DEBUG").str == "DEBUG");
    CHECK(one("--Authenticator.admin_users={'a', 'b'}").items.size() == 2);
    auto single = one("--Authenticator.admin_users=alice");
    CHECK(single.kind == PyValue::Kind::List);
    CHECK(single.items.at(0).str == "alice");
    CHECK(one("--Spawner.debug=true").boolean);
    CHECK(one("--Spawner.debug=True").boolean);
    CHECK_FALSE(one("--Spawner.debug=0").boolean);
    CHECK(one("--Unknown.trait=[1, 2]").items.size() == 2);
    CHECK(one("--Unknown.trait=x y").str == "x y");
    CHECK(one("--JupyterHub.port=abc").str == "abc");  // the type check reports it later
    CHECK(diags.empty());

    CHECK_FALSE(hub::parseOverride("--JupyterHub.port", diags));
    REQUIRE(diags.size() == 1);
    CHECK(diags[0].format() ==
          "<command line>: --JupyterHub.port needs a value: write --JupyterHub.port=value (hubd accepts only "
          "the "
          "'=' form)");
    CHECK_FALSE(hub::parseOverride("JupyterHub.port=1", diags));
    CHECK_FALSE(hub::parseOverride("--port=1", diags));
    CHECK_FALSE(hub::parseOverride("--a.b.c=1", diags));
    CHECK_FALSE(hub::parseOverride(std::string("--JupyterHub.ip=a\0b", 18), diags));
    CHECK_FALSE(hub::parseOverride("--JupyterHub.ip=\xff", diags));
    CHECK(diags.size() == 6);
}

TEST_CASE("defaults") {
    auto r = hub::loadSettings(std::nullopt, {});
    CHECK(r.ok());
    CHECK(r.diagnostics.empty());
    const hub::Settings defaults;
    CHECK(r.settings.bindUrl == "http://:8000");
    CHECK(r.settings.baseUrl == "/");
    CHECK(r.settings.hubBindUrl == "http://127.0.0.1:8081");
    CHECK(r.settings.dbUrl == defaults.dbUrl);
    CHECK(r.settings.authenticatorClass == "pam");
    CHECK(r.settings.spawnerClass == "simple");
    CHECK(r.settings.spawnerCmd == defaults.spawnerCmd);

    auto missing = hub::loadSettings("/nonexistent/jupyterhub_config.py", {});
    CHECK_FALSE(missing.ok());
    CHECK(contains(missing.diagnostics.at(0).format(), "/nonexistent/jupyterhub_config.py: cannot read"));
}

TEST_CASE("diagnostic format") {
    ConfigDiagnostic d;
    d.message = "m";
    CHECK(d.format() == "m");
    d.file = "<command line>";
    CHECK(d.format() == "<command line>: m");
    d.file = "f.py";
    d.line = 3;
    CHECK(d.format() == "f.py:3: m");
}

TEST_CASE("authenticator hierarchy: subclasses override base classes whatever the order") {
    auto r = loadOk(
        "c.PAMAuthenticator.admin_users = {'pam'}\nc.Authenticator.admin_users = {'base'}\n"
        "c.Authenticator.allowed_users = {'x'}\nc.LocalAuthenticator.allowed_users = {'local'}\n"
        "c.PAMAuthenticator.service = 'hubd'\nc.Authenticator.admin_groups = {'wheel'}\n");
    CHECK(r.settings.adminUsers == v({"pam"}));
    CHECK(r.settings.allowedUsers == v({"local"}));
    CHECK(r.settings.pamService == "hubd");
    CHECK(r.settings.adminGroups == v({"wheel"}));  // traitlets applies a section to subclasses' traits

    // Subclass sections of an inactive class do nothing (and say so).
    r = loadOk(
        "c.JupyterHub.authenticator_class = 'dummy'\nc.PAMAuthenticator.admin_users = {'pam'}\n"
        "c.Authenticator.admin_users = {'base'}\nc.DummyAuthenticator.password = 'pw'\n"
        "c.LocalAuthenticator.admin_groups = {'wheel'}\n");
    CHECK(r.settings.authenticatorClass == "dummy");
    CHECK(r.settings.adminUsers == v({"base"}));
    CHECK(r.settings.dummyPassword == "pw");
    CHECK(r.settings.adminGroups.empty());
    const auto* w = find(r, Severity::Warning, "PAMAuthenticator.admin_users has no effect");
    REQUIRE(w);
    CHECK(w->line == 2);
    CHECK(contains(w->message,
                   "the active class is DummyAuthenticator (set by JupyterHub.authenticator_class)"));
    CHECK(hasWarning(r, "LocalAuthenticator.admin_groups has no effect"));

    r = loadOk("c.DummyAuthenticator.password = 'pw'\n");
    CHECK(r.settings.dummyPassword.empty());
    CHECK(hasWarning(r, "DummyAuthenticator.password has no effect: the active class is PAMAuthenticator"));

    // The authenticator class may come after the sections it selects.
    r = loadOk("c.DummyAuthenticator.password = 'pw'\nc.JupyterHub.authenticator_class = 'dummy'\n");
    CHECK(r.settings.dummyPassword == "pw");

    // Inactive sections are still validated.
    CHECK(loadError("c.DummyAuthenticator.password = 5\n", "DummyAuthenticator.password must be a string")
              .line == 1);
}

TEST_CASE("spawner hierarchy") {
    auto r = loadOk(
        "c.JupyterHub.spawner_class = 'sudospawner.SudoSpawner'\n"
        "c.SudoSpawner.args = ['--sudo']\nc.Spawner.args = ['--base']\n"
        "c.LocalProcessSpawner.cmd = ['/opt/jh/bin/jupyterhub-singleuser']\n"
        "c.SudoSpawner.sudospawner_path = '/opt/hubd/sudospawner'\n");
    CHECK(r.settings.spawnerClass == "sudo");
    CHECK(r.settings.spawnerArgs == v({"--sudo"}));
    CHECK(r.settings.spawnerCmd == v({"/opt/jh/bin/jupyterhub-singleuser"}));
    CHECK(r.settings.sudospawnerPath == "/opt/hubd/sudospawner");

    r = loadOk(
        "c.SudoSpawner.sudospawner_path = '/opt/hubd/sudospawner'\nc.LocalProcessSpawner.args = ['-a']\n"
        "c.SimpleLocalProcessSpawner.debug = True\n");
    CHECK(r.settings.spawnerClass == "simple");
    CHECK(r.settings.sudospawnerPath == hub::Settings{}.sudospawnerPath);
    CHECK(r.settings.spawnerArgs == v({"-a"}));
    CHECK(r.settings.spawnerDebug);
    CHECK(hasWarning(
        r, "SudoSpawner.sudospawner_path has no effect: the active class is SimpleLocalProcessSpawner"));
}

TEST_CASE("authenticator_class and spawner_class values") {
    auto auth = [](const char* value) {
        return load(fmt::format("c.JupyterHub.authenticator_class = '{}'\n", value));
    };
    for (const char* name : {"pam", "default", "jupyterhub.auth.PAMAuthenticator"}) {
        auto r = auth(name);
        CHECK(r.ok());
        CHECK(r.settings.authenticatorClass == "pam");
    }
    for (const char* name :
         {"dummy", "jupyterhub.auth.DummyAuthenticator", "dummyauthenticator.DummyAuthenticator"}) {
        auto r = auth(name);
        CHECK(r.ok());
        CHECK(r.settings.authenticatorClass == "dummy");
    }
    auto r = auth("oauthenticator.BitbucketOAuthenticator");
    CHECK_FALSE(r.ok());
    CHECK(hasError(
        r, "JupyterHub.authenticator_class must be 'pam' (jupyterhub.auth.PAMAuthenticator), 'dummy'"));
    CHECK(hasError(r, "got 'oauthenticator.BitbucketOAuthenticator'"));

    auto spawner = [](const char* value) {
        return load(fmt::format("c = get_config()\nc.JupyterHub.spawner_class = '{}'\n", value));
    };
    for (const char* name : {"sudo", "sudospawner.SudoSpawner"})
        CHECK(spawner(name).settings.spawnerClass == "sudo");
    for (const char* name : {"simple", "jupyterhub.spawner.SimpleLocalProcessSpawner"})
        CHECK(spawner(name).settings.spawnerClass == "simple");
    for (const char* name : {"localprocess", "default", "jupyterhub.spawner.LocalProcessSpawner"}) {
        auto refused = spawner(name);
        CHECK_FALSE(refused.ok());
        const auto* d =
            find(refused, Severity::Error,
                 "LocalProcessSpawner needs root, which hubd never has: use sudospawner.SudoSpawner");
        REQUIRE(d);
        CHECK(d->line == 2);
    }
    r = spawner("dockerspawner.DockerSpawner");
    CHECK(hasError(
        r,
        "JupyterHub.spawner_class must be 'sudospawner.SudoSpawner' (or 'sudo') or "
        "'jupyterhub.spawner.SimpleLocalProcessSpawner' (or 'simple'), got 'dockerspawner.DockerSpawner'"));
    CHECK(hasError(load("c.JupyterHub.spawner_class = 1\n"),
                   "JupyterHub.spawner_class must be a string, got 1"));
}

TEST_CASE("bind_url, ip, port, base_url") {
    auto s = loadOk("c.JupyterHub.bind_url = 'http://10.0.0.1:9000/jhub'\n").settings;
    CHECK(s.bindUrl == "http://10.0.0.1:9000");
    CHECK(s.baseUrl == "/jhub/");
    s = loadOk("c.JupyterHub.bind_url = 'https://hub.example.org'\nc.JupyterHub.ssl_cert = '/c.pem'\n")
            .settings;
    CHECK(s.bindUrl == "https://hub.example.org:443");
    CHECK(s.baseUrl == "/");
    CHECK(loadOk("c.JupyterHub.ip = '127.0.0.1'\n").settings.bindUrl == "http://127.0.0.1:8000");
    CHECK(loadOk("c.JupyterHub.port = 80\n").settings.bindUrl == "http://:80");
    CHECK(loadOk("c.JupyterHub.ip = '::1'\n").settings.bindUrl == "http://[::1]:8000");
    CHECK(loadOk("c.JupyterHub.base_url = 'jhub'\n").settings.baseUrl == "/jhub/");
    CHECK(loadOk("c.JupyterHub.base_url = '/a/b'\n").settings.baseUrl == "/a/b/");

    auto r = loadOk(
        "c.JupyterHub.bind_url = 'http://1.2.3.4:8000/x/'\nc.JupyterHub.port = 9000\n"
        "c.JupyterHub.ip = ''\nc.JupyterHub.base_url = '/y/'\n");
    CHECK(r.settings.bindUrl == "http://:9000");  // ip '' means all interfaces
    CHECK(r.settings.baseUrl == "/y/");
    const auto* w = find(r, Severity::Warning, "ip, port and base_url override parts of bind_url");
    REQUIRE(w);
    CHECK(w->line == 1);
    CHECK(r.diagnostics.size() == 1);

    loadError("c.JupyterHub.bind_url = 'https://:8443'\n",
              "JupyterHub.bind_url uses https but JupyterHub.ssl_cert is not set");

    s = loadOk("c.JupyterHub.hub_bind_url = 'http://0.0.0.0:8082'\nc.JupyterHub.hub_port = 9000\n").settings;
    CHECK(s.hubBindUrl == "http://0.0.0.0:9000");
    CHECK(loadOk("c.JupyterHub.hub_ip = ''\n").settings.hubBindUrl == "http://:8081");
    CHECK(loadOk("c.JupyterHub.hub_port = 18081\n").settings.hubBindUrl == "http://127.0.0.1:18081");
    CHECK(loadOk("c.JupyterHub.hub_connect_url = 'http://hub.internal:8081'\n").settings.hubConnectUrl ==
          "http://hub.internal:8081");

    CHECK(loadError("c.JupyterHub.bind_url = 'ftp://x'\n", "scheme must be http or https").line == 1);
    loadError("c.JupyterHub.bind_url = 'localhost:8000'\n", "must start with http:// or https://");
    loadError("c.JupyterHub.bind_url = 'http://x:0'\n", "port must be a number from 1 to 65535");
    loadError("c.JupyterHub.bind_url = 'http://x:65536'\n", "port must be a number from 1 to 65535");
    loadError("c.JupyterHub.bind_url = 'http://x:abc'\n", "port must be a number");
    loadError("c.JupyterHub.bind_url = 'http://x/?a=1'\n", "query or fragment");
    loadError("c.JupyterHub.bind_url = 'http://user:pw@x/'\n", "user name or password");
    loadError("c.JupyterHub.bind_url = 'http://bad host/'\n", "not a valid host name");
    loadError("c.JupyterHub.bind_url = 'http://x/a b/'\n", "percent-encoded");
    loadError("c.JupyterHub.hub_bind_url = 'http://[::1:8081'\n", "IPv6");
    loadError("c.JupyterHub.hub_connect_url = 'hub:8081'\n",
              "JupyterHub.hub_connect_url 'hub:8081' is not a valid URL");
    loadError("c.JupyterHub.port = 0\n", "JupyterHub.port must be from 1 to 65535, got 0");
    loadError("c.JupyterHub.hub_port = 70000\n", "JupyterHub.hub_port must be from 1 to 65535");
    loadError("c.JupyterHub.ip = '1.2.3.4/24'\n", "is not an IP address or host name");
    loadError("c.JupyterHub.base_url = '/a?b/'\n", "percent-encoded");

    const auto d = loadError("c = get_config()\nc.JupyterHub.port = 'abc'\n",
                             "JupyterHub.port must be an int, got 'abc'");
    CHECK(d.format() == d.file + ":2: JupyterHub.port must be an int, got 'abc'");
}

TEST_CASE("trusted_downstream_ips: addresses and CIDR networks") {
    auto r = loadOk("c.JupyterHub.trusted_downstream_ips = ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8']\n");
    CHECK(r.settings.trustedDownstreamIps == v({"127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"}));
    CHECK(r.diagnostics.empty());  // supported: no "not yet supported" warning
    CHECK(loadOk("").settings.trustedDownstreamIps.empty());
    CHECK(loadOk("", {"--JupyterHub.trusted_downstream_ips=['::ffff:127.0.0.1']"})
              .settings.trustedDownstreamIps == v({"::ffff:127.0.0.1"}));
    auto d =
        loadError("c.JupyterHub.trusted_downstream_ips = ['127.0.0.1', '10.0.0.1/8']\n",
                  "JupyterHub.trusted_downstream_ips: '10.0.0.1/8' is not an IP address or CIDR network");
    CHECK(contains(d.message, "write 10.0.0.0/8"));
    CHECK(d.line == 1);
    loadError("c.JupyterHub.trusted_downstream_ips = ['proxy.example.org']\n",
              "'proxy.example.org' is not an IP address or CIDR network: it is not an IPv4 or IPv6 address");
    loadError("c.JupyterHub.trusted_downstream_ips = ['10.0.0.0/33']\n", "from 0 to 32");
    loadError("c.JupyterHub.trusted_downstream_ips = [1]\n", "must contain only strings");
    loadError("c.JupyterHub.trusted_downstream_ips = '127.0.0.1'\n", "must be a list");
}

TEST_CASE("db_url: only SQLite") {
    CHECK(loadOk("c.JupyterHub.db_url = 'sqlite:///state/hub.sqlite'\n").settings.dbUrl ==
          "sqlite:///state/hub.sqlite");
    CHECK(loadOk("c.JupyterHub.db_url = 'sqlite:////srv/jupyterhub/jupyterhub.sqlite'\n").settings.dbUrl ==
          "sqlite:////srv/jupyterhub/jupyterhub.sqlite");
    for (const char* url :
         {"postgresql://hub@db/hub", "mysql+pymysql://db/hub", "sqlite://", "sqlite:/x.sqlite"})
        CHECK(hasError(load(fmt::format("c.JupyterHub.db_url = '{}'\n", url)), "only SQLite is supported"));
    loadError("c.JupyterHub.db_url = 'sqlite:///'\n", "names no database file");
    loadError("c.JupyterHub.db_url = 'sqlite:///x.sqlite?mode=ro'\n", "query parameters are not supported");
}

TEST_CASE("type checks") {
    // Set and List traits take lists, tuples and sets.
    CHECK(loadOk("c.Authenticator.admin_users = ['a', 'b', 'a']\n").settings.adminUsers == v({"a", "b"}));
    CHECK(loadOk("c.Authenticator.admin_users = ('a',)\n").settings.adminUsers == v({"a"}));
    CHECK(loadOk("c.Spawner.args = {'--x'}\n").settings.spawnerArgs == v({"--x"}));
    CHECK(loadOk("c.Spawner.args = '--a', '--b'\n").settings.spawnerArgs == v({"--a", "--b"}));
    CHECK(loadOk("c.Spawner.args = ['--x', '--x']\n").settings.spawnerArgs == v({"--x", "--x"}));
    CHECK(loadOk("c.JupyterHub.cookie_max_age_days = 1\n").settings.cookieMaxAgeDays == 1.0);
    CHECK(loadOk("c.JupyterHub.cookie_max_age_days = 0.5\n").settings.cookieMaxAgeDays == 0.5);

    loadError("c.Authenticator.admin_users = 'alice'\n",
              "Authenticator.admin_users must be a set, got 'alice'");
    loadError("c.Authenticator.admin_users = {'a': 1}\n", "must be a set");
    loadError("c.Authenticator.admin_users = ['a', 1]\n",
              "Authenticator.admin_users must contain only strings, got 1");
    loadError("c.JupyterHub.base_url = 5\n", "JupyterHub.base_url must be a string, got 5");
    loadError("c.JupyterHub.admin_access = 1\n", "JupyterHub.admin_access must be True or False, got 1");
    loadError("c.JupyterHub.port = 8000.0\n", "JupyterHub.port must be an int, got 8000.0");
    loadError("c.JupyterHub.port = True\n", "JupyterHub.port must be an int, got True");
    loadError("c.JupyterHub.port = None\n", "JupyterHub.port must be an int, got None");
    loadError("c.JupyterHub.cookie_max_age_days = '14'\n", "must be a number, got '14'");
    loadError("c.JupyterHub.cookie_max_age_days = 0\n", "positive number of days");
    loadError("c.Spawner.environment = ['A=1']\n", "Spawner.environment must be a dict");
    loadError("c.Spawner.environment = {'A': 1}\n", "must map strings to strings");
    loadError("c.Authenticator.username_map = {1: 'a'}\n", "must map strings to strings");
    loadError("c.JupyterHub.ssl_key = 1\n", "JupyterHub.ssl_key must be a string");
    loadError("c.ConfigurableHTTPProxy.api_token = 1\n", "must be a string");

    // A huge value is shortened in messages.
    auto d = loadError("c.JupyterHub.port = '" + std::string(100000, 'x') + "'\n", "must be an int");
    CHECK(d.message.size() < 200);
}

TEST_CASE("cookie_secret") {
    const std::string hex = "037129b230c32443e455ef7d8a9b09600f24b76d9b93e730d0daf9839be8cf45";
    auto s = loadOk("c.JupyterHub.cookie_secret = bytes.fromhex('" + hex + "')\n").settings;
    REQUIRE(s.cookieSecret);
    CHECK(s.cookieSecret->size() == 32);
    CHECK(static_cast<unsigned char>((*s.cookieSecret)[1]) == 0x71);
    // JupyterHub also reads a hex str.
    CHECK(loadOk("c.JupyterHub.cookie_secret = '" + hex + "'\n").settings.cookieSecret == s.cookieSecret);
    CHECK(loadOk("c.JupyterHub.cookie_secret = b'" + std::string(32, 'k') + "'\n").settings.cookieSecret ==
          std::string(32, 'k'));

    auto d =
        loadError("c = get_config()\nc.JupyterHub.cookie_secret = bytes.fromhex('64 CHAR HEX STRING')\n",
                  "bytes.fromhex() argument is not hexadecimal: replace it with the output of `openssl rand "
                  "-hex 32`");
    CHECK(d.line == 2);
    loadError("c.JupyterHub.cookie_secret = bytes.fromhex('abcd')\n",
              "must be 32 bytes (64 hex digits), got 2");
    loadError("c.JupyterHub.cookie_secret = 'xyz'\n", "given as a string must be hexadecimal");
    loadError("c.JupyterHub.cookie_secret = 5\n", "must be bytes");
}

TEST_CASE("services") {
    auto r = loadOk(
        "c.JupyterHub.services = [\n"
        "    {'name': 'cull-idle', 'api_token': 'secret-token-1', 'admin': True},\n"
        "    {'name': 'dash', 'url': 'http://127.0.0.1:9999', 'oauth_no_confirm': True,\n"
        "     'oauth_client_id': 'service-dash', 'display': False},\n"
        "]\n");
    REQUIRE(r.settings.services.size() == 2);
    CHECK(r.settings.services[0].name == "cull-idle");
    CHECK(r.settings.services[0].apiToken == "secret-token-1");
    CHECK(r.settings.services[0].admin);
    CHECK(r.settings.services[1].url == "http://127.0.0.1:9999");
    CHECK(r.settings.services[1].oauthFields.at("oauth_client_id") == "service-dash");
    CHECK(r.settings.services[1].oauthFields.at("oauth_no_confirm") == "True");
    CHECK(r.diagnostics.empty());

    r = loadOk(
        "c.JupyterHub.services = [{'name': 'x', 'command': ['python3', '-m', 'cull'], 'colour': 'red'}]\n");
    CHECK(r.settings.services.at(0).command == v({"python3", "-m", "cull"}));
    CHECK(hasWarning(r, "JupyterHub.services[0]: unknown key 'colour' is ignored"));
    CHECK(hasWarning(r, "hubd does not launch managed services"));

    loadError("c.JupyterHub.services = [{'api_token': 'abcdefghij'}]\n",
              "JupyterHub.services[0] needs a 'name'");
    loadError("c.JupyterHub.services = [{'name': 'a'}, {'name': 'a'}]\n", "service name 'a' is used twice");
    loadError("c.JupyterHub.services = [{'name': 'a', 'api_token': 'short'}]\n", "at least 8 characters");
    loadError("c.JupyterHub.services = [{'name': 'a', 'admin': 'yes'}]\n",
              "key 'admin' must be True or False");
    loadError("c.JupyterHub.services = [{'name': 'a', 'url': 'nope'}]\n", "is not a valid URL");
    loadError("c.JupyterHub.services = ['a']\n", "JupyterHub.services[0] must be a dict, got 'a'");
    loadError("c.JupyterHub.services = {'name': 'a'}\n", "JupyterHub.services must be a list");
}

TEST_CASE("load_roles") {
    auto r = loadOk(
        "c.JupyterHub.load_roles = [{'name': 'culler', 'description': 'cull servers',\n"
        "    'scopes': ['list:users', 'admin:servers'], 'services': ['cull-idle'], 'users': ['a'],\n"
        "    'groups': ['g']}]\n");
    REQUIRE(r.settings.loadRoles.size() == 1);
    const auto& role = r.settings.loadRoles[0];
    CHECK(role.name == "culler");
    CHECK(role.description == "cull servers");
    CHECK(role.scopes == v({"list:users", "admin:servers"}));
    CHECK(role.services == v({"cull-idle"}));
    CHECK(role.users == v({"a"}));
    CHECK(role.groups == v({"g"}));

    CHECK(hasWarning(loadOk("c.JupyterHub.load_roles = [{'name': 'abc', 'colour': 1}]\n"),
                     "unknown key 'colour'"));
    loadError("c.JupyterHub.load_roles = [{'scopes': []}]\n", "JupyterHub.load_roles[0] needs a 'name'");
    loadError("c.JupyterHub.load_roles = [{'name': 'Bad Name'}]\n", "got 'Bad Name'");
    loadError("c.JupyterHub.load_roles = [{'name': 'abc', 'scopes': 'read:users'}]\n",
              "JupyterHub.load_roles[0] key 'scopes' must be a list of strings");
    loadError("c.JupyterHub.load_roles = [{'name': 'abc'}, {'name': 'abc'}]\n", "used twice");
}

TEST_CASE("api_tokens, log_level, page limits, spawner settings") {
    auto s = loadOk("c.JupyterHub.api_tokens = {'0123456789abcdef': 'alice'}\n").settings;
    CHECK(s.apiTokens.at("0123456789abcdef") == "alice");
    loadError("c.JupyterHub.api_tokens = {'short': 'alice'}\n", "at least 8 characters");

    CHECK(loadOk("c.JupyterHub.log_level = 'debug'\n").settings.logLevel == "DEBUG");
    CHECK(loadOk("c.JupyterHub.log_level = 30\n").settings.logLevel == "WARNING");
    CHECK(loadOk("c.Application.log_level = 'ERROR'\n").settings.logLevel == "ERROR");
    loadError("c.JupyterHub.log_level = 'loud'\n", "JupyterHub.log_level must be one of");

    s = loadOk("c.JupyterHub.api_page_default_limit = 20\nc.JupyterHub.api_page_max_limit = 100\n").settings;
    CHECK(s.apiPageDefaultLimit == 20);
    CHECK(s.apiPageMaxLimit == 100);
    CHECK(loadError("c.JupyterHub.api_page_max_limit = 10\nc.JupyterHub.api_page_default_limit = 20\n",
                    "must not exceed")
              .line == 2);
    loadError("c.JupyterHub.api_page_max_limit = 0\n", "must be a positive int");

    s = loadOk(
            "c.Spawner.cmd = '/opt/bin/jupyterhub-singleuser'\nc.Spawner.start_timeout = 120\n"
            "c.Spawner.http_timeout = 45\nc.Spawner.environment = {'LANG': 'C.UTF-8'}\n"
            "c.Spawner.notebook_dir = '~/notebooks'\nc.Spawner.default_url = '/lab'\n"
            "c.Authenticator.username_pattern = '^[a-z][a-z0-9]*$'\n"
            "c.Authenticator.username_map = {'Alice': 'alice'}\nc.JupyterHub.admin_access = True\n"
            "c.JupyterHub.shutdown_on_logout = True\nc.PAMAuthenticator.check_account = False\n"
            "c.PAMAuthenticator.encoding = 'latin1'\nc.JupyterHub.cookie_secret_file = '/srv/secret'\n")
            .settings;
    CHECK(s.spawnerCmd == v({"/opt/bin/jupyterhub-singleuser"}));
    CHECK(s.startTimeout == 120);
    CHECK(s.httpTimeout == 45);
    CHECK(s.spawnerEnvironment.at("LANG") == "C.UTF-8");
    CHECK(s.notebookDir == "~/notebooks");
    CHECK(s.defaultUrl == "/lab");
    CHECK(s.usernamePattern == "^[a-z][a-z0-9]*$");
    CHECK(s.usernameMap.at("Alice") == "alice");
    CHECK(s.adminAccess);
    CHECK(s.shutdownOnLogout);
    CHECK_FALSE(s.pamCheckAccount);
    CHECK(s.pamEncoding == "latin1");
    CHECK(s.cookieSecretFile == "/srv/secret");

    loadError("c.Spawner.cmd = []\n", "Spawner.cmd must name a command");
    loadError("c.Spawner.start_timeout = -1\n", "must be a positive int");
    loadError("c.Authenticator.username_pattern = '[a-'\n", "is not a valid regular expression");
    loadError(
        "c.Authenticator.username_pattern = '" + std::string(50000, '(') + std::string(50000, ')') + "'\n",
        "longer than 1000 characters");
    loadError("c.Spawner.environment = {'A=B': 'c'}\n", "not a valid environment variable name");
    loadError("c.JupyterHub.spawner_class = 'sudo'\nc.SudoSpawner.sudospawner_path = 'sudospawner'\n",
              "must be an absolute path");
    loadError("c.PAMAuthenticator.service = '../../etc/shadow'\n", "must name a file in /etc/pam.d");
}

TEST_CASE("create_system_users is refused") {
    const auto d = loadError("c.LocalAuthenticator.create_system_users = True\n",
                             "LocalAuthenticator.create_system_users = True is refused");
    CHECK(contains(d.message, "cannot and must not create Unix accounts"));
    CHECK(contains(d.message, "adduser"));
    CHECK(contains(d.message, "sudoers rule"));
    CHECK(loadError("c.PAMAuthenticator.create_system_users = True\n", "is refused").line == 1);
    CHECK_FALSE(loadOk("c.LocalAuthenticator.create_system_users = False\n").settings.createSystemUsers);
}

TEST_CASE("deprecated names") {
    auto r = loadOk(
        "c.Authenticator.whitelist = {'a'}\nc.Authenticator.blacklist = {'b'}\n"
        "c.LocalAuthenticator.group_whitelist = {'g'}\n");
    CHECK(r.settings.allowedUsers == v({"a"}));
    CHECK(r.settings.blockedUsers == v({"b"}));
    CHECK(r.settings.allowedGroups == v({"g"}));
    CHECK(hasWarning(
        r, "Authenticator.whitelist is deprecated since JupyterHub 1.2: use Authenticator.allowed_users"));
    CHECK(hasWarning(
        r, "Authenticator.blacklist is deprecated since JupyterHub 1.2: use Authenticator.blocked_users"));
    CHECK(hasWarning(r,
                     "LocalAuthenticator.group_whitelist is deprecated since JupyterHub 1.2: use "
                     "LocalAuthenticator.allowed_groups"));
}

TEST_CASE("overrides apply after the file with the same rules") {
    auto r = loadOk("c.JupyterHub.port = 8001\nc.PAMAuthenticator.admin_users = {'file'}\n",
                    {"--JupyterHub.port=9001", "--Authenticator.admin_users={'cli'}",
                     "--JupyterHub.spawner_class=sudospawner.SudoSpawner", "--JupyterHub.base_url=/jhub"});
    CHECK(r.settings.bindUrl == "http://:9001");
    CHECK(r.settings.adminUsers == v({"file"}));  // the subclass section still wins
    CHECK(r.settings.spawnerClass == "sudo");
    CHECK(r.settings.baseUrl == "/jhub/");
    r = loadOk("c.PAMAuthenticator.admin_users = {'file'}\n", {"--PAMAuthenticator.admin_users=cli"});
    CHECK(r.settings.adminUsers == v({"cli"}));
    r = loadOk("", {"--Spawner.debug=true", "--Spawner.cmd=/opt/bin/jupyterhub-singleuser"});
    CHECK(r.settings.spawnerDebug);
    CHECK(r.settings.spawnerCmd == v({"/opt/bin/jupyterhub-singleuser"}));

    r = load("c.JupyterHub.ip = 5\n", {"--JupyterHub.port=abc", "--JupyterHub.nope=1", "--JupyterHub.port"});
    CHECK_FALSE(r.ok());
    REQUIRE(r.diagnostics.size() == 4);
    CHECK(r.diagnostics[0].line == 1);  // the file first
    CHECK(r.diagnostics[0].severity == Severity::Error);
    CHECK(hasError(r, "--JupyterHub.port needs a value"));
    const auto* d = find(r, Severity::Error, "JupyterHub.port must be an int");
    REQUIRE(d);
    CHECK(d->format() == "<command line>: JupyterHub.port must be an int, got 'abc'");
    CHECK(hasWarning(r, "unknown trait JupyterHub.nope"));

    r = hub::loadSettings(std::nullopt, {"--JupyterHub.port=8123"});
    CHECK(r.ok());
    CHECK(r.settings.bindUrl == "http://:8123");
}

TEST_CASE("unknown traits warn with a suggestion") {
    auto r = loadOk(
        "c = get_config()\nc.JupyterHub.bindurl = 'http://:8000'\nc.JupyterHub.admin_users = {'a'}\n"
        "c.Foo.zzzzzzzzz = 1\nc.JupyterHub.Port = 1\n");
    const auto* d = find(r, Severity::Warning, "unknown trait JupyterHub.bindurl is ignored");
    REQUIRE(d);
    CHECK(d->line == 2);
    CHECK(d->message ==
          "unknown trait JupyterHub.bindurl is ignored: check the spelling (hubd --help-all lists every "
          "trait); "
          "did you mean JupyterHub.bind_url?");
    CHECK(hasWarning(
        r,
        "unknown trait JupyterHub.admin_users is ignored: check the spelling (hubd --help-all lists "
        "every trait); did you mean Authenticator.admin_users?"));
    CHECK(hasWarning(r, "did you mean JupyterHub.port?"));
    d = find(r, Severity::Warning, "unknown trait Foo.zzzzzzzzz");
    REQUIRE(d);
    CHECK_FALSE(contains(d->message, "did you mean"));
    CHECK(r.settings.adminUsers.empty());
}

TEST_CASE("TLS traits: a certificate makes bind_url https; inconsistent settings are errors") {
    auto r = loadOk(
        "c.JupyterHub.ssl_cert = '/etc/letsencrypt/live/hub/fullchain.pem'\n"
        "c.JupyterHub.ssl_key = '/etc/letsencrypt/live/hub/privkey.pem'\nc.JupyterHub.port = 443\n"
        "c.JupyterHub.redirect_http_port = 80\nc.JupyterHub.ssl_ocsp_response = '/var/lib/hubd/ocsp.der'\n"
        "c.JupyterHub.ssl_allow_world_readable_key = True\n");
    CHECK(r.diagnostics.empty());
    CHECK(r.settings.bindUrl == "https://:443");
    CHECK(r.settings.sslCert == "/etc/letsencrypt/live/hub/fullchain.pem");
    CHECK(r.settings.sslKey == "/etc/letsencrypt/live/hub/privkey.pem");
    CHECK(r.settings.redirectHttpPort == 80);
    CHECK(r.settings.sslOcspResponse == "/var/lib/hubd/ocsp.der");
    CHECK(r.settings.sslAllowWorldReadableKey);
    CHECK_FALSE(loadOk("").settings.sslAllowWorldReadableKey);
    CHECK(loadOk("").settings.redirectHttpPort == 0);
    loadError("c.JupyterHub.ssl_key = '/k.pem'\n",
              "JupyterHub.ssl_key is set but JupyterHub.ssl_cert is not");
    loadError("c.JupyterHub.redirect_http_port = 80\n",
              "redirect_http_port redirects to https, but hubd serves no TLS");
    loadError(
        "c.JupyterHub.ssl_cert = '/c'\nc.JupyterHub.port = 8443\nc.JupyterHub.redirect_http_port = 8443\n",
        "is the https port 8443 itself");
    loadError("c.JupyterHub.redirect_http_port = 70000\n", "must be from 1 to 65535");
}

TEST_CASE("Later and NotNeeded traits are accepted with warnings") {
    auto r = loadOk(
        "c.JupyterHub.upgrade_db = True\n"
        "c.ConfigurableHTTPProxy.api_token = 'abc'\nc.ConfigurableHTTPProxy.command = ['chp']\n"
        "c.JupyterHub.proxy_auth_token = 'x'\nc.JupyterHub.cleanup_servers = False\n"
        "c.JupyterHub.confirm_no_ssl = True\nc.SudoSpawner.mediator_log_level = 'DEBUG'\n"
        "c.SudoSpawner.debug_mediator = True\nc.Authenticator.enable_auth_state = True\n"
        "c.JupyterHub.proxy_class = 'traefik'\nc.JupyterHub.cleanup_proxy = False\n");
    CHECK(hasWarning(r, "JupyterHub.upgrade_db is not yet supported by hubd; it has no effect"));
    CHECK(hasWarning(r,
                     "ConfigurableHTTPProxy.api_token does not apply to hubd and is ignored: hubd serves and "
                     "routes requests itself"));
    for (const char* name :
         {"ConfigurableHTTPProxy.command", "JupyterHub.proxy_auth_token", "JupyterHub.cleanup_servers",
          "JupyterHub.confirm_no_ssl", "JupyterHub.proxy_class", "JupyterHub.cleanup_proxy"})
        CHECK_MESSAGE(hasWarning(r, std::string(name) + " does not apply"), name);
    // SudoSpawner is not the active spawner here; one warning per assignment is enough.
    CHECK_FALSE(hasWarning(r, "has no effect: the active class"));
    CHECK(r.diagnostics.size() == 11);
    CHECK(hasWarning(r, "SudoSpawner.mediator_log_level does not apply"));
    CHECK(hasWarning(r, "SudoSpawner.debug_mediator does not apply"));
    CHECK(hasWarning(r, "Authenticator.enable_auth_state is not yet supported"));
}

TEST_CASE("catalogue and --help-all") {
    const auto& all = hub::traitCatalogue();
    std::set<std::string> names;
    for (const auto& t : all) {
        CAPTURE(t.name);
        CHECK(names.insert(t.name).second);  // no duplicates
        CHECK(t.name.find('.') != std::string::npos);
        CHECK_FALSE(t.help.empty());
        CHECK_FALSE(t.defaultRepr.empty());
        if (t.status == hub::TraitInfo::Status::NotNeeded) CHECK_FALSE(t.note.empty());
        // Every default is a literal of the declared type (set() is the one call Python prints).
        if (t.name == "JupyterHub.cookie_secret") continue;
        const std::string value = t.defaultRepr == "set()" ? "[]" : t.defaultRepr;
        auto r = load("c." + t.name + " = " + value + "\n");
        INFO(dump(r));
        CHECK(r.ok());
    }
    // The traits the seed guides use, and those the brief names.
    for (const char* name : {"Authenticator.allowed_users",
                             "Authenticator.blocked_users",
                             "Authenticator.admin_users",
                             "LocalAuthenticator.admin_groups",
                             "LocalAuthenticator.allowed_groups",
                             "LocalAuthenticator.create_system_users",
                             "DummyAuthenticator.password",
                             "PAMAuthenticator.open_sessions",
                             "JupyterHub.ssl_key",
                             "JupyterHub.ssl_cert",
                             "JupyterHub.internal_ssl",
                             "JupyterHub.internal_certs_location",
                             "JupyterHub.subdomain_host",
                             "JupyterHub.trusted_downstream_ips",
                             "JupyterHub.cookie_secret_file",
                             "JupyterHub.cookie_secret",
                             "JupyterHub.db_url",
                             "JupyterHub.admin_access",
                             "JupyterHub.proxy_auth_token",
                             "JupyterHub.proxy_class",
                             "JupyterHub.cleanup_servers",
                             "JupyterHub.cleanup_proxy",
                             "JupyterHub.confirm_no_ssl",
                             "ConfigurableHTTPProxy.api_token",
                             "ConfigurableHTTPProxy.command",
                             "Spawner.cmd",
                             "Spawner.disable_user_config",
                             "SudoSpawner.mediator_log_level",
                             "SudoSpawner.debug_mediator",
                             "SudoSpawner.sudospawner_path",
                             "JupyterHub.spawner_class",
                             "Authenticator.enable_auth_state"})
        CHECK_MESSAGE(names.count(name) == 1, name);

    CHECK(hub::findTrait("PAMAuthenticator", "admin_users")->name == "Authenticator.admin_users");
    CHECK(hub::findTrait("Authenticator", "admin_groups")->name == "LocalAuthenticator.admin_groups");
    CHECK(hub::findTrait("SudoSpawner", "cmd")->name == "Spawner.cmd");
    CHECK(hub::findTrait("DummyAuthenticator", "nope") == nullptr);
    CHECK(hub::classLineage("PAMAuthenticator") ==
          v({"PAMAuthenticator", "LocalAuthenticator", "Authenticator"}));
    CHECK(hub::classLineage("Foo") == v({"Foo"}));

    const std::string help = hub::helpAllText();
    CHECK(contains(help, "--JupyterHub.bind_url=<Unicode>\n"));
    CHECK(contains(help, "    Default: 'http://:8000'\n"));
    CHECK(contains(help, "--Authenticator.admin_users=<Set>\n"));
    CHECK(contains(help, "    Default: set()\n"));
    CHECK(contains(help, "--JupyterHub.port=<Int>\n    The public facing port"));
    CHECK(contains(help, "--JupyterHub.ssl_key=<Unicode>\n    Path to the TLS private key"));
    CHECK(contains(help, "--JupyterHub.upgrade_db=<Bool>\n    [not yet supported] "));
    CHECK(contains(help, "--JupyterHub.internal_ssl=<Bool>\n    Mutually authenticated TLS"));
    CHECK(contains(help, "--ConfigurableHTTPProxy.api_token=<Unicode>\n    [not needed by hubd: "));
    CHECK(contains(help, "JupyterHub options\n------------------\n"));
    for (const auto& t : all) CHECK(contains(help, "--" + t.name + "=<" + t.type + ">\n"));
}

TEST_CASE("seed snippets: every c.… snippet of the security guides loads") {
    const fs::path file = dataFile("seed_snippets_config.py");
    // As the guide runs it (sudo -u rhea jupyterhub --JupyterHub.spawner_class=sudospawner.SudoSpawner).
    auto r = hub::loadSettings(file.string(), {"--JupyterHub.spawner_class=sudospawner.SudoSpawner"});
    INFO(dump(r));
    REQUIRE(r.ok());
    const auto& s = r.settings;
    CHECK(s.dbUrl == "sqlite:////srv/jupyterhub/jupyterhub.sqlite");
    CHECK(s.allowedUsers == v({"mal", "zoe", "inara", "kaylee"}));
    CHECK(s.blockedUsers == v({"jane"}));
    CHECK(s.adminUsers == v({"mal", "zoe"}));
    CHECK(s.adminGroups == v({"wheel"}));
    CHECK(s.dummyPassword.empty());  // PAM is the active authenticator
    CHECK(s.sslKey == "/etc/letsencrypt/live/example.com/privkey.pem");
    CHECK(s.sslCert == "/etc/letsencrypt/live/example.com/fullchain.pem");
    CHECK(s.cookieSecretFile == "/srv/jupyterhub/cookie_secret");
    REQUIRE(s.cookieSecret);
    CHECK(s.cookieSecret->size() == 32);
    CHECK(static_cast<unsigned char>(s.cookieSecret->front()) == 0x03);
    CHECK(static_cast<unsigned char>(s.cookieSecret->back()) == 0x45);
    CHECK(s.spawnerCmd == v({"jupyterhub-singleuser"}));
    CHECK(s.disableUserConfig);
    CHECK_FALSE(s.pamOpenSessions);
    CHECK(s.spawnerClass == "sudo");
    CHECK(s.authenticatorClass == "pam");

    // Exactly the expected warnings, each on its line.
    std::ifstream in(file);
    std::vector<std::string> lines(1);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    auto lineOf = [&](std::string_view needle) {
        for (std::size_t i = 0; i < lines.size(); ++i)
            if (lines[i].rfind("c.", 0) == 0 && contains(lines[i], needle)) return static_cast<int>(i);
        return -1;
    };
    std::multiset<std::pair<int, std::string>> got, want;
    for (const auto& d : r.diagnostics) got.emplace(d.line, d.message.substr(0, d.message.find(':')));
    want.emplace(lineOf("c.DummyAuthenticator.password"), "DummyAuthenticator.password has no effect");
    // The seed guides' ssl_key/ssl_cert (the Let's Encrypt pair) load without a word: the files are
    // read at start (tests/unit/tls_test.cpp), not while loading the configuration.
    want.emplace(lineOf("c.ConfigurableHTTPProxy.api_token"),
                 "ConfigurableHTTPProxy.api_token does not apply to hubd and is ignored");
    want.emplace(lineOf("c.JupyterHub.proxy_auth_token"),
                 "JupyterHub.proxy_auth_token does not apply to hubd and is ignored");
    CHECK(got == want);
    for (const auto& d : r.diagnostics) CHECK(d.severity == Severity::Warning);

    // Every snippet names a trait hubd knows.
    std::vector<ConfigDiagnostic> diags;
    std::stringstream text;
    text << std::ifstream(file).rdbuf();
    const auto assignments = hub::parseConfigText(text.str(), "seed", diags);
    CHECK(diags.empty());
    CHECK(assignments.size() == 21);
    for (const auto& a : assignments)
        CHECK_MESSAGE(hub::findTrait(a.cls, a.trait) != nullptr, a.cls, ".", a.trait);
}

TEST_CASE("seed snippets hubd refuses on purpose") {
    const fs::path file = dataFile("seed_snippets_refused.py");
    auto r = hub::loadSettings(file.string(), {});
    INFO(dump(r));
    CHECK_FALSE(r.ok());
    REQUIRE(r.diagnostics.size() == 3);
    CHECK(r.diagnostics[0].line == 6);
    CHECK(contains(r.diagnostics[0].message, "LocalAuthenticator.create_system_users = True is refused"));
    CHECK(r.diagnostics[1].line == 9);
    CHECK(contains(r.diagnostics[1].message, "LocalProcessSpawner needs root, which hubd never has"));
    CHECK(r.diagnostics[2].line == 12);
    CHECK(contains(
        r.diagnostics[2].format(),
        "seed_snippets_refused.py:12: the name jupyterhub.spawner.LocalProcessSpawner is not supported"));
    CHECK(
        contains(r.diagnostics[2].message, "write it as a string: 'jupyterhub.spawner.LocalProcessSpawner'"));
}

TEST_CASE("hostile files fail cleanly") {
    CHECK(hasError(load("c.JupyterHub.services = " + std::string(100000, '[') + "\n"), "too many nested"));
    std::string deep = "c.JupyterHub.services = ";
    for (int i = 0; i < 100; ++i) deep += "[";
    for (int i = 0; i < 100; ++i) deep += "]";
    CHECK(hasError(load(deep + "\n"), "nested more than 64"));
    CHECK(loadError(std::string("c.JupyterHub.ip = 'a\0b'\n", 24), "null bytes").line == 1);
    CHECK(loadError("c = get_config()\nc.JupyterHub.ip = '\xc3\x28'\n", "invalid UTF-8").line == 2);
    CHECK(loadError("c.JupyterHub.ip = 'abc\n", "unterminated string literal").line == 1);
    CHECK(loadError("c.JupyterHub.ip = '''abc\n\n", "unterminated triple-quoted").line == 1);
    CHECK(loadError("c.JupyterHub.ip = ['abc'\n", "was never closed").line == 1);
    CHECK(loadError("c.JupyterHub.port = 8000\xc2\xa0\n", "non-breaking space").line == 1);
    CHECK(loadError("c.Authenticator.admin_users = {\xe2\x80\x98"
                    "a\xe2\x80\x99}\n",
                    "straight quotes")
              .line == 1);

    const std::string big(1 << 20, 'x');
    auto r =
        loadOk("c.DummyAuthenticator.password = '" + big + "'\nc.JupyterHub.authenticator_class = 'dummy'\n");
    CHECK(r.settings.dummyPassword.size() == big.size());

    // Many unknown traits: every one warned, quickly.
    std::string many;
    for (int i = 0; i < 20000; ++i) many += "c.JupyterHub.bind_ur" + std::to_string(i) + " = 1\n";
    r = loadOk(many);
    CHECK(r.diagnostics.size() == 20000);

    // Binary garbage.
    std::string garbage;
    for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919) & 0xff);
    CHECK_FALSE(load(garbage).ok());
}

TEST_CASE("internal_ssl: the hub API becomes https; what cannot work is refused") {
    auto r = loadOk(
        "c.JupyterHub.internal_ssl = True\nc.JupyterHub.trusted_alt_names = ['DNS:hub.internal', "
        "'IP:10.0.0.5']\n"
        "c.Spawner.ssl_alt_names = ['IP:::1']\nc.JupyterHub.internal_certs_location = "
        "'/var/lib/hubd/certs'\n");
    CHECK(r.settings.internalSsl);
    CHECK(r.settings.hubBindUrl == "https://127.0.0.1:8081");
    CHECK(r.settings.trustedAltNames == std::vector<std::string>{"DNS:hub.internal", "IP:10.0.0.5"});
    CHECK(r.settings.sslAltNames == std::vector<std::string>{"IP:::1"});
    CHECK(r.settings.internalCertsLocation == "/var/lib/hubd/certs");
    CHECK(r.diagnostics.empty());
    CHECK(loadOk("").settings.hubBindUrl == "http://127.0.0.1:8081");
    CHECK(loadOk("").settings.internalCertsLocation == "internal-ssl");

    loadError("c.JupyterHub.hub_bind_url = 'https://127.0.0.1:8081'\n",
              "needs JupyterHub.internal_ssl = True");
    loadError("c.JupyterHub.internal_ssl = True\nc.JupyterHub.hub_connect_url = 'http://10.0.0.5:8081'\n",
              "write it with https://");
    loadError("c.JupyterHub.internal_ssl = True\nc.JupyterHub.bind_url = 'http://127.0.0.1:8081'\n",
              "its own listener");
    loadError("c.JupyterHub.trusted_alt_names = ['hub.internal']\n", "must start with DNS: or IP:");
    loadError("c.Spawner.ssl_alt_names = ['IP:10.0.0.300']\n", "is not an IP address");
    loadError("c.Spawner.ssl_alt_names = ['DNS:a,IP:1.2.3.4']\n", "is not a DNS name");
    loadError("c.JupyterHub.internal_certs_location = ''\n", "must name a directory");
}

TEST_CASE("GenericOAuthenticator: OAuthenticator's names, required settings, secrets kept out of argv") {
    const std::string base =
        "c.JupyterHub.authenticator_class = 'oauthenticator.generic.GenericOAuthenticator'\n"
        "c.OAuthenticator.client_id = 'hub'\n"
        "c.OAuthenticator.client_secret = 'sec'\n"
        "c.OAuthenticator.oauth_callback_url = 'https://hub.example/hub/oauth_callback'\n";
    auto r = load(base +
                  "c.GenericOAuthenticator.oidc_issuer = 'https://idp.example'\n"
                  "c.GenericOAuthenticator.username_key = 'email'\n"
                  "c.GenericOAuthenticator.allowed_groups = {'staff'}\n"
                  "c.GenericOAuthenticator.admin_groups = ['ops']\n"
                  "c.OAuthenticator.scope = ['profile']\n"
                  "c.OAuthenticator.login_service = 'Example SSO'\n"
                  "c.OAuthenticator.basic_auth = False\n");
    REQUIRE(r.ok());
    const auto& o = r.settings.oauth;
    CHECK(r.settings.authenticatorClass == "generic-oauth");
    CHECK(o.clientId == "hub");
    CHECK(o.clientSecret == "sec");
    CHECK(o.issuer == "https://idp.example");
    CHECK(o.usernameClaim == "email");  // OAuthenticator before 16 called it username_key
    CHECK(o.scope == std::vector<std::string>{"openid", "profile"});
    CHECK(o.loginService == "Example SSO");
    CHECK_FALSE(o.basicAuth);
    CHECK(r.settings.allowedGroups == std::vector<std::string>{"staff"});
    CHECK(r.settings.adminGroups == std::vector<std::string>{"ops"});

    // Without an issuer the endpoints must be given.
    auto missing = load(base);
    CHECK_FALSE(missing.ok());
    CHECK(hasError(missing, "GenericOAuthenticator needs the provider's authorization endpoint"));
    auto noClient = load(
        "c.JupyterHub.authenticator_class = 'generic-oauth'\n"
        "c.GenericOAuthenticator.oidc_issuer = 'https://idp.example'\n");
    CHECK(hasError(noClient, "GenericOAuthenticator needs the client id"));
    // Plain http only to loopback; the secret never on the command line.
    auto http = load(base + "c.GenericOAuthenticator.oidc_issuer = 'http://idp.example'\n");
    CHECK(hasError(http, "GenericOAuthenticator.oidc_issuer must be an https:// URL"));
    CHECK(load(base + "c.GenericOAuthenticator.oidc_issuer = 'http://127.0.0.1:9000'\n").ok());
    auto argv = load(base + "c.GenericOAuthenticator.oidc_issuer = 'https://idp.example'\n",
                     {"--OAuthenticator.client_secret=leak"});
    CHECK(hasError(argv, "OAuthenticator.client_secret is refused on the command line"));
    // OAuth traits do not touch PAM, and PAM's groups do not reach OAuth.
    auto pam = load("c.OAuthenticator.client_id = 'x'\n");
    CHECK(pam.ok());
    CHECK(hasWarning(pam, "OAuthenticator.client_id has no effect: the active class is PAMAuthenticator"));
}

TEST_CASE("OAuth presets: GoogleOAuthenticator and AzureAdOAuthenticator over the generic client") {
    const std::string client =
        "c.OAuthenticator.client_id = 'hub'\n"
        "c.OAuthenticator.client_secret = 'sec'\n"
        "c.OAuthenticator.oauth_callback_url = 'https://hub.example/hub/oauth_callback'\n";
    auto google = load("c.JupyterHub.authenticator_class = 'oauthenticator.google.GoogleOAuthenticator'\n" +
                       client + "c.GoogleOAuthenticator.hosted_domain = ['example.org']\n");
    REQUIRE(google.ok());
    const auto& g = google.settings.oauth;
    CHECK(google.settings.authenticatorClass == "generic-oauth");
    CHECK(g.preset == "google");
    CHECK(g.issuer == "https://accounts.google.com");
    CHECK(g.usernameClaim == "email");
    CHECK(g.loginService == "Google");
    CHECK(g.scope == std::vector<std::string>{"openid", "email"});
    REQUIRE(g.requiredIdClaims.size() == 1);
    CHECK(g.requiredIdClaims[0].first == "hd");
    CHECK(g.requiredIdClaims[0].second == std::vector<std::string>{"example.org"});
    CHECK(g.stripDomain == "example.org");
    // Two domains: the claim is checked against both, names keep their domain.
    auto two = load("c.JupyterHub.authenticator_class = 'google'\n" + client +
                    "c.GoogleOAuthenticator.hosted_domain = ['a.org', 'b.org']\n"
                    "c.OAuthenticator.username_claim = 'sub'\n");
    REQUIRE(two.ok());
    CHECK(two.settings.oauth.requiredIdClaims[0].second == std::vector<std::string>{"a.org", "b.org"});
    CHECK(two.settings.oauth.stripDomain.empty());
    CHECK(two.settings.oauth.usernameClaim == "sub");
    // No hosted_domain: any Google account (as in OAuthenticator), no claim check.
    auto open = load("c.JupyterHub.authenticator_class = 'google'\n" + client);
    REQUIRE(open.ok());
    CHECK(open.settings.oauth.requiredIdClaims.empty());
    // An allow-list hubd does not check refuses start-up instead of admitting everyone.
    auto groups = load("c.JupyterHub.authenticator_class = 'google'\n" + client +
                       "c.GoogleOAuthenticator.allowed_google_groups = {'example.org': {'staff'}}\n");
    CHECK_FALSE(groups.ok());
    CHECK(hasError(groups, "GoogleOAuthenticator.allowed_google_groups is not implemented by hubd"));
    auto old = load("c.JupyterHub.authenticator_class = 'google'\n" + client +
                    "c.GoogleOAuthenticator.google_group_whitelist = {'example.org': {'staff'}}\n");
    CHECK(hasError(old, "GoogleOAuthenticator.google_group_whitelist is not implemented by hubd"));
    CHECK(load("c.JupyterHub.authenticator_class = 'google'\n" + client +
               "c.GoogleOAuthenticator.allowed_google_groups = {}\n")
              .ok());
    // The preset's endpoints are fixed.
    auto moved = load("c.JupyterHub.authenticator_class = 'google'\n" + client +
                      "c.OAuthenticator.token_url = 'https://evil.example/token'\n");
    CHECK(hasError(moved, "GoogleOAuthenticator knows its provider's endpoints"));

    const std::string tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    auto azure = load("c.JupyterHub.authenticator_class = 'oauthenticator.azuread.AzureAdOAuthenticator'\n" +
                      client + "c.AzureAdOAuthenticator.tenant_id = '" + tid + "'\n");
    REQUIRE(azure.ok());
    const auto& a = azure.settings.oauth;
    CHECK(a.preset == "azuread");
    CHECK(a.issuer == "https://login.microsoftonline.com/" + tid + "/v2.0");
    CHECK(a.usernameClaim == "name");
    CHECK(a.loginService == "Azure AD");
    REQUIRE(a.requiredIdClaims.size() == 1);
    CHECK(a.requiredIdClaims[0].first == "tid");
    CHECK(a.requiredIdClaims[0].second == std::vector<std::string>{tid});
    auto common = load("c.JupyterHub.authenticator_class = 'azuread'\n" + client +
                       "c.AzureAdOAuthenticator.tenant_id = 'common'\n");
    CHECK(hasError(common, "'common' admits other organisations' accounts"));
    auto domain = load("c.JupyterHub.authenticator_class = 'azuread'\n" + client +
                       "c.AzureAdOAuthenticator.tenant_id = 'contoso.onmicrosoft.com'\n");
    CHECK(hasError(domain, "AzureAdOAuthenticator.tenant_id must be your directory's tenant id"));
    CHECK_FALSE(load("c.JupyterHub.authenticator_class = 'azuread'\n" + client).ok());
    // Classes hubd does not have are refused, not silently replaced (GitHub and
    // GitLab: tests/unit/oauth_git_presets_test.cpp).
    CHECK_FALSE(
        load("c.JupyterHub.authenticator_class = 'oauthenticator.bitbucket.BitbucketOAuthenticator'\n" +
             client)
            .ok());
}
