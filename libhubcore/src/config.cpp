// SPDX-License-Identifier: BSD-3-Clause
// Turns parsed assignments into Settings with JupyterHub's class and URL rules; --help-all text.
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>

#include <fmt/format.h>

#include "hubcore/cidr.h"
#include "hubcore/config.h"
#include "hubcore/idle_culler_command.h"
#include "hubcore/ldap_escape.h"
#include "hubcore/subdomain.h"

namespace hub {
namespace {

using Severity = ConfigDiagnostic::Severity;
using VK = PyValue::Kind;

constexpr std::uintmax_t kMaxFileBytes = 16u << 20;  // far beyond any real configuration
constexpr int kMaxSuggestions = 100;                 // edit distances cost time on hostile input
const std::string kCommandLine = "<command line>";

std::string lower(std::string_view s) {
    std::string out;
    for (char c : s) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    return out;
}

// repr() for messages: a 1 MB value must not make a 1 MB log line.
std::string shortRepr(const PyValue& v) {
    std::string r = v.repr();
    constexpr std::size_t kMax = 60;
    if (r.size() <= kMax) return r;
    std::size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(r[cut]) & 0xC0) == 0x80) --cut;  // UTF-8 boundary
    return r.substr(0, cut) + "...";
}

bool isSequence(const PyValue& v) {
    return v.kind == VK::List || v.kind == VK::Tuple || v.kind == VK::Set;
}

struct Url {
    std::string scheme, host;
    int port = 0;
    bool explicitPort = false;
    std::string path = "/";
    std::string origin() const { return fmt::format("{}://{}:{}", scheme, host, port); }
};

bool hostChars(std::string_view host) {
    for (char c : host)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-' || c == '_'))
            return false;
    return true;
}
bool ipv6Chars(std::string_view host) {
    for (char c : host)
        if (!((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
              c == '.'))
            return false;
    return !host.empty();
}
// Characters that cannot appear in a URL path hubd builds on.
bool badPathChar(char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '\\' ||
           c == '"' || c == '<' || c == '>';
}

std::optional<Url> parseUrl(std::string_view s, std::string& why) {
    const std::size_t sep = s.find("://");
    if (sep == std::string_view::npos) {
        why = "it must start with http:// or https://";
        return std::nullopt;
    }
    Url u;
    u.scheme = lower(s.substr(0, sep));
    if (u.scheme != "http" && u.scheme != "https") {
        why = fmt::format("the scheme must be http or https, not '{}'", u.scheme);
        return std::nullopt;
    }
    const std::string_view rest = s.substr(sep + 3);
    const std::size_t authEnd = std::min(rest.find_first_of("/?#"), rest.size());
    const std::string_view authority = rest.substr(0, authEnd);
    const std::string_view tail = rest.substr(authEnd);
    if (tail.find_first_of("?#") != std::string_view::npos) {
        why = "it must not contain a query or fragment";
        return std::nullopt;
    }
    if (authority.find('@') != std::string_view::npos) {
        why = "it must not contain a user name or password";
        return std::nullopt;
    }
    std::string_view portPart;
    if (!authority.empty() && authority[0] == '[') {
        const std::size_t close = authority.find(']');
        if (close == std::string_view::npos || !ipv6Chars(authority.substr(1, close - 1))) {
            why = "the IPv6 address is malformed";
            return std::nullopt;
        }
        u.host = std::string(authority.substr(0, close + 1));
        portPart = authority.substr(close + 1);
    } else {
        const std::size_t colon = authority.find(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) portPart = authority.substr(colon);
        if (!hostChars(u.host)) {
            why = fmt::format("'{}' is not a valid host name", u.host);
            return std::nullopt;
        }
    }
    u.port = u.scheme == "https" ? 443 : 80;
    if (!portPart.empty()) {
        const std::string_view digits = portPart.substr(1);
        int port = 0;
        bool ok = portPart[0] == ':' && !digits.empty() && digits.size() <= 5;
        for (char c : digits) {
            ok = ok && c >= '0' && c <= '9';
            if (ok) port = port * 10 + (c - '0');
        }
        if (!ok || port < 1 || port > 65535) {
            why = "the port must be a number from 1 to 65535";
            return std::nullopt;
        }
        u.port = port;
        u.explicitPort = true;
    }
    if (!tail.empty()) u.path = std::string(tail);
    if (std::any_of(u.path.begin(), u.path.end(), badPathChar)) {
        why = "the path contains spaces or characters that must be percent-encoded";
        return std::nullopt;
    }
    return u;
}

// Everything resolution collects before the cross-trait rules run.
struct Loc {
    std::string file;
    int line = 0;
};
struct State {
    Settings s;
    std::optional<Url> bindUrl, hubBindUrl;
    std::optional<std::string> ip, hubIp, baseUrl;
    std::optional<int> port, hubPort;
    std::map<std::string, Loc> where;  // canonical trait -> the assignment that set it last
};

// The context a trait handler works in.
struct Apply {
    State& st;
    const Assignment& a;
    std::string name;  // as written: "PAMAuthenticator.admin_groups"
    std::vector<ConfigDiagnostic>& diags;

    void report(Severity sev, std::string message) const {
        ConfigDiagnostic d;
        d.severity = sev;
        d.file = a.file;
        d.line = a.line;
        d.message = std::move(message);
        diags.push_back(std::move(d));
    }
    void error(std::string message) const { report(Severity::Error, std::move(message)); }
    void warn(std::string message) const { report(Severity::Warning, std::move(message)); }

    // Items of a list/tuple/set that must all be strings.
    std::optional<std::vector<std::string>> strings(const PyValue& v, std::string_view what,
                                                    bool unique) const {
        if (!isSequence(v)) {
            error(fmt::format("{} must be a list of strings, got {}", what, shortRepr(v)));
            return std::nullopt;
        }
        std::vector<std::string> out;
        for (const auto& item : v.items) {
            if (item.kind != VK::Str) {
                error(fmt::format("{} must contain only strings, got {}", what, shortRepr(item)));
                return std::nullopt;
            }
            if (!unique || std::find(out.begin(), out.end(), item.str) == out.end()) out.push_back(item.str);
        }
        return out;
    }
    std::optional<std::map<std::string, std::string>> strMap(const PyValue& v, std::string_view what) const {
        if (v.kind != VK::Dict) {
            error(fmt::format("{} must be a dict, got {}", what, shortRepr(v)));
            return std::nullopt;
        }
        std::map<std::string, std::string> out;
        for (const auto& [k, val] : v.dict) {
            if (k.kind != VK::Str || val.kind != VK::Str) {
                error(fmt::format("{} must map strings to strings, got {}: {}", what, shortRepr(k),
                                  shortRepr(val)));
                return std::nullopt;
            }
            out[k.str] = val.str;
        }
        return out;
    }
    void remember(std::string_view canonical) const {
        st.where[std::string(canonical)] = Loc{a.file, a.line};
    }
};

using Handler = void (*)(const Apply&, const PyValue&);

std::optional<Url> urlTrait(const Apply& x, const PyValue& v) {
    std::string why;
    auto url = parseUrl(v.str, why);
    if (!url) x.error(fmt::format("{} {} is not a valid URL: {}", x.name, shortRepr(v), why));
    return url;
}

std::optional<int> portTrait(const Apply& x, const PyValue& v) {
    if (v.integer < 1 || v.integer > 65535) {
        x.error(fmt::format("{} must be from 1 to 65535, got {}", x.name, v.integer));
        return std::nullopt;
    }
    return static_cast<int>(v.integer);
}

std::optional<std::string> ipTrait(const Apply& x, const PyValue& v) {
    const bool v6 = v.str.find(':') != std::string::npos;
    if (v6 ? !ipv6Chars(v.str) : !hostChars(v.str)) {
        x.error(fmt::format("{} {} is not an IP address or host name", x.name, shortRepr(v)));
        return std::nullopt;
    }
    return v6 ? "[" + v.str + "]" : v.str;
}

std::optional<int> positiveInt(const Apply& x, const PyValue& v) {
    if (v.integer < 1 || v.integer > 1'000'000'000) {
        x.error(fmt::format("{} must be a positive int, got {}", x.name, v.integer));
        return std::nullopt;
    }
    return static_cast<int>(v.integer);
}

void dbUrl(const Apply& x, const PyValue& v) {
    constexpr std::string_view prefix = "sqlite:///";
    const std::string& s = v.str;
    if (s.compare(0, prefix.size(), prefix) != 0) {
        x.error(
            fmt::format("only SQLite is supported: {} must be sqlite:///relative/path.sqlite or "
                        "sqlite:////absolute/path.sqlite, got {}",
                        x.name, shortRepr(v)));
        return;
    }
    const std::string path = s.substr(prefix.size());
    if (path.empty() || path == "/") {
        x.error(fmt::format("{} {} names no database file", x.name, shortRepr(v)));
        return;
    }
    if (path.find('?') != std::string::npos) {
        x.error(fmt::format("{} {}: query parameters are not supported", x.name, shortRepr(v)));
        return;
    }
    x.st.s.dbUrl = s;
}

void cookieSecret(const Apply& x, const PyValue& v) {
    std::string secret;
    if (v.kind == VK::Bytes) {
        secret = v.str;
    } else if (v.kind == VK::Str) {
        // JupyterHub reads a str cookie_secret as hex.
        PySyntaxError err;
        PyValue quoted;
        quoted.kind = VK::Str;
        quoted.str = v.str;
        auto decoded = parsePyLiteral("bytes.fromhex(" + quoted.repr() + ")", err);
        if (!decoded) {
            x.error(
                fmt::format("{} given as a string must be hexadecimal: replace it with the output of "
                            "`openssl rand -hex 32`",
                            x.name));
            return;
        }
        secret = decoded->str;
    } else {
        x.error(fmt::format("{} must be bytes, such as bytes.fromhex('<64 hex digits>'), got {}", x.name,
                            shortRepr(v)));
        return;
    }
    if (secret.size() != 32) {
        x.error(fmt::format(
            "{} must be 32 bytes (64 hex digits), got {}: use the output of `openssl rand -hex 32`", x.name,
            secret.size()));
        return;
    }
    x.st.s.cookieSecret = std::move(secret);
}

void logLevel(const Apply& x, const PyValue& v) {
    static constexpr std::pair<std::string_view, int> levels[] = {
        {"DEBUG", 10}, {"INFO", 20}, {"WARN", 30}, {"WARNING", 30}, {"ERROR", 40}, {"CRITICAL", 50}};
    for (const auto& [name, number] : levels) {
        const bool match =
            (v.kind == VK::Str && lower(v.str) == lower(name)) || (v.kind == VK::Int && v.integer == number);
        if (match) {
            x.st.s.logLevel = name == "WARN" ? "WARNING" : std::string(name);
            return;
        }
    }
    x.error(fmt::format(
        "{} must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL' (or 10, 20, 30, 40, 50), "
        "got {}",
        x.name, shortRepr(v)));
}

// Reads dict entries by key, reporting wrong types against "JupyterHub.services[2]".
struct DictReader {
    const Apply& x;
    std::string what;
    bool ok = true;

    const PyValue* find(const PyValue& d, std::string_view key) const {
        for (const auto& [k, val] : d.dict)
            if (k.kind == VK::Str && k.str == key) return &val;
        return nullptr;
    }
    void str(const PyValue& d, std::string_view key, std::string& out) {
        if (const PyValue* v = find(d, key)) {
            if (v->kind == VK::Str) {
                out = v->str;
            } else {
                x.error(fmt::format("{} key '{}' must be a string, got {}", what, key, shortRepr(*v)));
                ok = false;
            }
        }
    }
    void boolean(const PyValue& d, std::string_view key, bool& out) {
        if (const PyValue* v = find(d, key)) {
            if (v->kind == VK::Bool) {
                out = v->boolean;
            } else {
                x.error(fmt::format("{} key '{}' must be True or False, got {}", what, key, shortRepr(*v)));
                ok = false;
            }
        }
    }
    void list(const PyValue& d, std::string_view key, std::vector<std::string>& out, bool allowStr = false) {
        if (const PyValue* v = find(d, key)) {
            if (allowStr && v->kind == VK::Str) {
                out = {v->str};
            } else if (auto items = x.strings(*v, fmt::format("{} key '{}'", what, key), true)) {
                out = std::move(*items);
            } else {
                ok = false;
            }
        }
    }
    void unknownKeys(const PyValue& d, std::initializer_list<std::string_view> known) {
        for (const auto& [k, val] : d.dict) {
            if (k.kind != VK::Str) {
                x.error(fmt::format("{} keys must be strings, got {}", what, shortRepr(k)));
                ok = false;
            } else if (std::find(known.begin(), known.end(), k.str) == known.end()) {
                x.warn(fmt::format("{}: unknown key {} is ignored", what, shortRepr(k)));
            }
        }
    }
};

// User-provided tokens: JupyterHub refuses shorter ones (orm.APIToken.check_token).
constexpr std::size_t kMinTokenLength = 8;

void services(const Apply& x, const PyValue& v) {
    std::vector<ServiceSpec> out;
    for (std::size_t i = 0; i < v.items.size(); ++i) {
        const PyValue& d = v.items[i];
        DictReader r{x, fmt::format("{}[{}]", x.name, i)};
        if (d.kind != VK::Dict) {
            x.error(fmt::format("{} must be a dict, got {}", r.what, shortRepr(d)));
            return;
        }
        r.unknownKeys(d, {"name", "api_token", "admin", "url", "command", "environment", "user", "cwd",
                          "display", "info", "oauth_no_confirm", "oauth_client_id", "oauth_redirect_uri",
                          "oauth_roles", "oauth_client_allowed_scopes"});
        ServiceSpec svc;
        r.str(d, "name", svc.name);
        r.str(d, "api_token", svc.apiToken);
        r.boolean(d, "admin", svc.admin);
        r.str(d, "url", svc.url);
        r.list(d, "command", svc.command, true);
        if (!r.ok) return;
        if (svc.name.empty() || svc.name.find_first_of("/ \t\n?#%") != std::string::npos) {
            x.error(fmt::format("{} needs a 'name' without spaces, '/', '?', '#' or '%'", r.what));
            return;
        }
        for (const auto& other : out)
            if (other.name == svc.name) {
                x.error(fmt::format("{}: service name '{}' is used twice", r.what, svc.name));
                return;
            }
        if (!svc.apiToken.empty() && svc.apiToken.size() < kMinTokenLength) {
            x.error(fmt::format("{} ('{}'): api_token must be at least {} characters", r.what, svc.name,
                                kMinTokenLength));
            return;
        }
        std::string why;
        if (!svc.url.empty() && !parseUrl(svc.url, why)) {
            x.error(
                fmt::format("{} ('{}'): url '{}' is not a valid URL: {}", r.what, svc.name, svc.url, why));
            return;
        }
        // A jupyterhub_idle_culler command becomes the built-in culler (finish()).
        if (!svc.command.empty() && !readIdleCullerCommand(svc.command))
            x.warn(
                fmt::format("{} ('{}'): command is accepted but hubd does not launch managed services: start "
                            "the service yourself",
                            r.what, svc.name));
        for (const auto& [k, val] : d.dict)
            if (k.kind == VK::Str && k.str.compare(0, 6, "oauth_") == 0)
                svc.oauthFields[k.str] = val.kind == VK::Str ? val.str : val.repr();
        out.push_back(std::move(svc));
    }
    x.st.s.services = std::move(out);
}

// IdleCuller.* durations: whole seconds, 0 = off; at most ten years.
std::optional<int64_t> cullerSeconds(const Apply& x, const PyValue& v) {
    if (v.integer < 0 || v.integer > 315'360'000) {
        x.error(fmt::format("{} must be a number of seconds from 0 (off) to 315360000, got {}", x.name,
                            v.integer));
        return std::nullopt;
    }
    return v.integer;
}

void groupTimeouts(const Apply& x, const PyValue& v) {
    std::map<std::string, int64_t> out;
    for (const auto& [k, val] : v.dict) {
        if (k.kind != VK::Str || k.str.empty() || val.kind != VK::Int) {
            x.error(fmt::format("{} must map group names to seconds, e.g. {{'students': 3600}}, got {}: {}",
                                x.name, shortRepr(k), shortRepr(val)));
            return;
        }
        auto n = cullerSeconds(x, val);
        if (!n) return;
        out[k.str] = *n;
    }
    x.st.s.idleCuller.groupTimeouts = std::move(out);
}

bool validRoleName(std::string_view n) {
    // JupyterHub 3.0's rule (roles.py): ^[a-z][a-z0-9\-_~\.]{1,253}[a-z0-9]$
    if (n.size() < 3 || n.size() > 255 || !(n[0] >= 'a' && n[0] <= 'z')) return false;
    const char last = n.back();
    if (!((last >= 'a' && last <= 'z') || (last >= '0' && last <= '9'))) return false;
    return std::all_of(n.begin(), n.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '~' ||
               c == '.';
    });
}

void loadRoles(const Apply& x, const PyValue& v) {
    std::vector<RoleSpec> out;
    for (std::size_t i = 0; i < v.items.size(); ++i) {
        const PyValue& d = v.items[i];
        DictReader r{x, fmt::format("{}[{}]", x.name, i)};
        if (d.kind != VK::Dict) {
            x.error(fmt::format("{} must be a dict, got {}", r.what, shortRepr(d)));
            return;
        }
        r.unknownKeys(d, {"name", "description", "scopes", "users", "services", "groups"});
        RoleSpec role;
        r.str(d, "name", role.name);
        r.str(d, "description", role.description);
        r.list(d, "scopes", role.scopes);
        r.list(d, "users", role.users);
        r.list(d, "services", role.services);
        r.list(d, "groups", role.groups);
        if (!r.ok) return;
        if (!validRoleName(role.name)) {
            x.error(
                fmt::format("{} needs a 'name' of 3 to 255 characters: lowercase letters, digits and -_~. "
                            "starting with a letter and ending with a letter or digit, got '{}'",
                            r.what, role.name));
            return;
        }
        for (const auto& other : out)
            if (other.name == role.name) {
                x.error(fmt::format("{}: role name '{}' is used twice", r.what, role.name));
                return;
            }
        out.push_back(std::move(role));
    }
    x.st.s.loadRoles = std::move(out);
}

void apiTokens(const Apply& x, const PyValue& v) {
    auto map = x.strMap(v, x.name);
    if (!map) return;
    for (const auto& [token, user] : *map)
        if (token.size() < kMinTokenLength) {
            x.error(fmt::format("{}: tokens must be at least {} characters", x.name, kMinTokenLength));
            return;
        }
    x.st.s.apiTokens = std::move(*map);
}

void usernamePattern(const Apply& x, const PyValue& v) {
    // libstdc++ compiles regular expressions recursively: thousands of nested groups overflow the stack.
    constexpr std::size_t kMaxPattern = 1000;
    if (v.str.size() > kMaxPattern) {
        x.error(fmt::format("{} is longer than {} characters", x.name, kMaxPattern));
        return;
    }
    try {
        std::regex check(v.str, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        x.error(fmt::format("{} {} is not a valid regular expression: {}", x.name, shortRepr(v), e.what()));
        return;
    }
    x.st.s.usernamePattern = v.str;
}

void createSystemUsers(const Apply& x, const PyValue& v) {
    if (v.boolean) {
        x.error(
            fmt::format("{} = True is refused: hubd runs unprivileged, so it cannot and must not create Unix "
                        "accounts; create them beforehand (adduser NAME) or add existing users to the group "
                        "the sudoers rule names",
                        x.name));
        return;
    }
    x.st.s.createSystemUsers = false;
}

void subdomainHost(const Apply& x, const PyValue& v) {
    if (v.str.empty()) {
        x.st.s.subdomainHost.clear();
        return;
    }
    std::string why;
    auto host = parseSubdomainHost(v.str, why);
    if (!host) {
        x.error(fmt::format("{} {} cannot be used: {}; set it like 'https://hub.example.org'", x.name,
                            shortRepr(v), why));
        return;
    }
    x.st.s.subdomainHost = host->hubOrigin();
}

void trustedDownstreamIps(const Apply& x, const PyValue& v) {
    auto items = x.strings(v, x.name, true);
    if (!items) return;
    std::string why;
    if (!IpNetworkList::parse(*items, why)) {
        x.error(fmt::format("{}: {}", x.name, why));
        return;
    }
    x.st.s.trustedDownstreamIps = std::move(*items);
}

void spawnerCmd(const Apply& x, const PyValue& v) {
    // JupyterHub's Command trait takes a single string as a one-word command.
    if (v.kind == VK::Str) {
        x.st.s.spawnerCmd = {v.str};
    } else if (auto items = x.strings(v, x.name, false)) {
        x.st.s.spawnerCmd = std::move(*items);
    } else {
        return;
    }
    if (x.st.s.spawnerCmd.empty() || x.st.s.spawnerCmd[0].empty()) {
        x.error(fmt::format("{} must name a command", x.name));
        x.st.s.spawnerCmd = {"jupyterhub-singleuser"};
    }
}

void environment(const Apply& x, const PyValue& v) {
    auto map = x.strMap(v, x.name);
    if (!map) return;
    for (const auto& [key, value] : *map)
        if (key.empty() || key.find('=') != std::string::npos) {
            x.error(fmt::format("{}: '{}' is not a valid environment variable name", x.name, key));
            return;
        }
    x.st.s.spawnerEnvironment = std::move(*map);
}

void sudospawnerPath(const Apply& x, const PyValue& v) {
    if (v.str.empty() || v.str[0] != '/') {
        x.error(fmt::format("{} must be an absolute path, exactly as the sudoers rule names it, got {}",
                            x.name, shortRepr(v)));
        return;
    }
    x.st.s.sudospawnerPath = v.str;
}

// JupyterHub.trusted_alt_names and Spawner.ssl_alt_names: "DNS:..." / "IP:...".
void altNames(const Apply& x, const PyValue& v) {
    auto items = x.strings(v, x.name, true);
    if (!items) return;
    for (const auto& n : *items)
        if (std::string why = checkAltName(n); !why.empty())
            return x.error(fmt::format("{}: {}", x.name, why));
    (x.name.ends_with("trusted_alt_names") ? x.st.s.trustedAltNames : x.st.s.sslAltNames) = std::move(*items);
}

// A provider endpoint: https, or http to this machine's loopback (a
// provider on the same host, tests). Client secrets and codes never cross a
// network in clear text.
bool providerUrlOk(const std::string& url) {
    if (url.rfind("https://", 0) == 0) return url.size() > 8;
    for (std::string_view loop : {"http://127.", "http://localhost:", "http://localhost/", "http://[::1]"})
        if (url.rfind(loop, 0) == 0) return true;
    return false;
}

void providerUrl(const Apply& x, const PyValue& v, std::string OAuthSettings::*field) {
    if (!v.str.empty() && !providerUrlOk(v.str))
        return x.error(
            fmt::format("{} must be an https:// URL (http:// only to 127.0.0.1 or localhost), got {}", x.name,
                        shortRepr(v)));
    x.st.s.oauth.*field = v.str;
}

void unimplementedAllowList(const Apply& x, const PyValue& v) {
    // Empty is no allow-list; preset "" is the inactive-class dry run.
    if ((v.items.empty() && v.dict.empty()) || x.st.s.oauth.preset.empty()) return;
    x.error(
        fmt::format("{} is not implemented by hubd, and an allow-list that is not checked would let "
                    "in every account of the provider: remove it, or restrict sign-in with "
                    "Authenticator.allowed_users",
                    x.name));
}

// GitHubOAuthenticator.github_url / GitLabOAuthenticator.gitlab_url: the
// server's base URL, https (http only to loopback), no trailing slash.
void gitServerUrl(const Apply& x, const PyValue& v, std::string OAuthSettings::*field) {
    std::string url = v.str;
    while (!url.empty() && url.back() == '/') url.pop_back();
    if (url.empty() || !providerUrlOk(url) || url.find_first_of("?#") != std::string::npos)
        return x.error(
            fmt::format("{} must be the server's https:// URL without a query, e.g. "
                        "'https://git.example.org' (http:// only to 127.0.0.1 or localhost), got {}",
                        x.name, shortRepr(v)));
    x.st.s.oauth.*field = url;
}

// "org" or "org:team", the names as they appear in GitHub's URLs.
void githubOrganizations(const Apply& x, const PyValue& v) {
    auto items = x.strings(v, x.name, true);
    if (!items) return;
    for (const auto& entry : *items) {
        const auto colon = entry.find(':');
        const bool ok = !entry.empty() && entry.find('/') == std::string::npos &&
                        (colon == std::string::npos || (colon > 0 && colon + 1 < entry.size() &&
                                                        entry.find(':', colon + 1) == std::string::npos));
        if (!ok)
            return x.error(
                fmt::format("{}: '{}' must be an organization ('my-org') or an organization's team "
                            "('my-org:my-team'), as in the GitHub URL of the team",
                            x.name, entry.substr(0, 100)));
    }
    x.st.s.oauth.allowedOrganizations = std::move(*items);
}

// GitLab group paths: "group" or "group/subgroup", never empty.
void gitlabGroups(const Apply& x, const PyValue& v) {
    auto items = x.strings(v, x.name, true);
    if (!items) return;
    for (const auto& g : *items)
        if (g.empty() || g.front() == '/' || g.back() == '/')
            return x.error(
                fmt::format("{}: '{}' must be a group's full path, e.g. 'my-group' or "
                            "'my-group/sub-group'",
                            x.name, g.substr(0, 100)));
    x.st.s.oauth.allowedGitlabGroups = std::move(*items);
}

// GitLab project ids: numbers (as OAuthenticator puts them in the API path).
void gitlabProjectIds(const Apply& x, const PyValue& v) {
    std::vector<int64_t> ids;
    for (const auto& item : v.items) {
        int64_t id = item.integer;
        const bool digits = item.kind == VK::Str && !item.str.empty() && item.str.size() < 19 &&
                            std::all_of(item.str.begin(), item.str.end(),
                                        [](unsigned char c) { return std::isdigit(c) != 0; });
        if (digits) id = std::stoll(item.str);
        if ((item.kind != VK::Int && !digits) || id <= 0)
            return x.error(
                fmt::format("{}: every entry must be a project's numeric id (GitLab: the project's "
                            "page > Settings > General), got {}",
                            x.name, shortRepr(item)));
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    }
    x.st.s.oauth.allowedProjectIds = std::move(ids);
}

// Allow-lists OAuthenticator renamed in 0.12 (github_organization_whitelist,
// gitlab_group_whitelist, ...): refused even where OAuthenticator 16 still
// maps them, so an old configuration never starts with its list unread
// (GHSA-384w-5v3f-q499 was an allow-list silently ignored).
void renamedAllowList(const Apply& x, const PyValue& v, std::string_view now) {
    if (v.items.empty() && v.dict.empty()) return;
    x.error(
        fmt::format("{} is the name OAuthenticator used before 0.12; hubd does not read it, and an "
                    "allow-list that is not read would let in every account: rename it to {}",
                    x.name, now));
}

// ldapauthenticator's optional strings (allow_none): None means unset.
std::optional<std::string> ldapOptional(const Apply& x, const PyValue& v) {
    if (v.kind == VK::None) return std::string();
    if (v.kind == VK::Str) return v.str;
    x.error(fmt::format("{} must be a string or None, got {}", x.name, shortRepr(v)));
    return std::nullopt;
}

// LDAPAuthenticator.bind_dn_template: a string or a list; blank entries are
// dropped (as ldapauthenticator does) and every {placeholder} is checked now
// rather than at the first login.
void ldapBindDnTemplate(const Apply& x, const PyValue& v) {
    std::vector<std::string> templates;
    if (v.kind == VK::Str) {
        templates = {v.str};
    } else if (auto items = x.strings(v, x.name, true)) {
        templates = std::move(*items);
    } else {
        return;
    }
    std::vector<std::string> out;
    for (const auto& t : templates) {
        std::string why;
        if (t.empty()) {
            x.warn(fmt::format("{}: a blank entry is ignored", x.name));
        } else if (!ldap::userDn(t, "user", why)) {
            return x.error(fmt::format("{} {}: {}", x.name, t, why));
        } else {
            out.push_back(t);
        }
    }
    x.st.s.ldap.bindDnTemplate = std::move(out);
}

void ldapSearchFilter(const Apply& x, const PyValue& v) {
    std::string why;
    if (!ldap::lookupFilter(v.str, "uid", "user", why))
        return x.error(fmt::format("{} {}: {}", x.name, shortRepr(v), why));
    x.st.s.ldap.lookupDnSearchFilter = v.str;
}

void ldapTlsStrategy(const Apply& x, const PyValue& v) {
    if (v.str != "before_bind" && v.str != "on_connect" && v.str != "insecure")
        return x.error(
            fmt::format("{} must be 'before_bind' (StartTLS), 'on_connect' (ldaps://) or 'insecure', got {}",
                        x.name, shortRepr(v)));
    x.st.s.ldap.tlsStrategy = v.str;
}

// LDAPAuthenticator.search_filter: {username} and {userattr} are checked
// now; that {userattr} has a user_attribute is checked in checkLdap.
void ldapUserFilter(const Apply& x, const PyValue& v) {
    std::string why;
    if (!ldap::userFilter(v.str, "uid", "user", why))
        return x.error(fmt::format("{} {}: {}", x.name, shortRepr(v), why));
    x.st.s.ldap.searchFilter = v.str;
}

// LDAPAuthenticator.group_search_filter: {userdn} and {uid}.
void ldapGroupFilter(const Apply& x, const PyValue& v) {
    std::string why;
    if (!ldap::groupFilter(v.str, "uid=user,dc=x", "user", why))
        return x.error(fmt::format("{} {}: {}", x.name, shortRepr(v), why));
    x.st.s.ldap.groupSearchFilter = v.str;
}

// ldap3's Tls() keyword arguments: hubd understands the CA file. The other
// keys (validate, version, ciphers, client certificates, ...) would weaken
// or change verification, so they are refused rather than ignored.
void ldapTlsKwargs(const Apply& x, const PyValue& v) {
    DictReader r{x, x.name};
    for (const auto& [k, val] : v.dict)
        if (k.kind != VK::Str || k.str != "ca_certs_file")
            return x.error(fmt::format(
                "{} key {} is not supported by hubd, which always verifies the LDAP server's certificate "
                "(against ca_certs_file or the system CAs) and its name: remove the key, keeping only "
                "'ca_certs_file'",
                x.name, shortRepr(k)));
    r.str(v, "ca_certs_file", x.st.s.ldap.caCertsFile);
}

void ldapUsernameRegex(const Apply& x, const PyValue& v) {
    try {
        std::regex re(v.str, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
        return x.error(
            fmt::format("{} {} is not a valid regular expression: {}", x.name, shortRepr(v), e.what()));
    }
    x.st.s.ldap.validUsernameRegex = v.str;
}

#define SETTER(field, expr) [](const Apply& x, const PyValue& v) { x.st.s.field = (expr); }
#define POSITIVE_INT(field)                                \
    [](const Apply& x, const PyValue& v) {                 \
        if (auto n = positiveInt(x, v)) x.st.s.field = *n; \
    }
#define CULLER_SECONDS(field)                                           \
    [](const Apply& x, const PyValue& v) {                              \
        if (auto n = cullerSeconds(x, v)) x.st.s.idleCuller.field = *n; \
    }
#define STRINGS(field, unique)                                                           \
    [](const Apply& x, const PyValue& v) {                                               \
        if (auto items = x.strings(v, x.name, unique)) x.st.s.field = std::move(*items); \
    }

const std::map<std::string_view, Handler>& handlers() {
    static const std::map<std::string_view, Handler> table = {
        {"JupyterHub.bind_url",
         [](const Apply& x, const PyValue& v) {
             if (auto u = urlTrait(x, v)) x.st.bindUrl = std::move(u);
         }},
        {"JupyterHub.ip",
         [](const Apply& x, const PyValue& v) {
             if (auto ip = ipTrait(x, v)) x.st.ip = std::move(ip);
         }},
        {"JupyterHub.port",
         [](const Apply& x, const PyValue& v) {
             if (auto p = portTrait(x, v)) x.st.port = p;
         }},
        {"JupyterHub.base_url",
         [](const Apply& x, const PyValue& v) {
             if (std::any_of(v.str.begin(), v.str.end(), badPathChar))
                 x.error(fmt::format("{} {} contains spaces or characters that must be percent-encoded",
                                     x.name, shortRepr(v)));
             else
                 x.st.baseUrl = v.str;
         }},
        {"JupyterHub.hub_bind_url",
         [](const Apply& x, const PyValue& v) {
             if (v.str.empty()) {
                 x.st.hubBindUrl.reset();
             } else if (auto u = urlTrait(x, v)) {
                 x.st.hubBindUrl = std::move(u);
             }
         }},
        {"JupyterHub.hub_ip",
         [](const Apply& x, const PyValue& v) {
             if (auto ip = ipTrait(x, v)) x.st.hubIp = std::move(ip);
         }},
        {"JupyterHub.hub_port",
         [](const Apply& x, const PyValue& v) {
             if (auto p = portTrait(x, v)) x.st.hubPort = p;
         }},
        {"JupyterHub.hub_connect_url",
         [](const Apply& x, const PyValue& v) {
             if (v.str.empty() || urlTrait(x, v)) x.st.s.hubConnectUrl = v.str;
         }},
        {"JupyterHub.db_url", dbUrl},
        {"JupyterHub.cookie_secret_file",
         [](const Apply& x, const PyValue& v) {
             if (v.str.empty())
                 x.error(fmt::format("{} must name a file", x.name));
             else
                 x.st.s.cookieSecretFile = v.str;
         }},
        {"JupyterHub.cookie_secret", cookieSecret},
        {"JupyterHub.cookie_max_age_days",
         [](const Apply& x, const PyValue& v) {
             const double days = v.kind == VK::Int ? static_cast<double>(v.integer) : v.real;
             if (!(days > 0) || days > 36500)
                 x.error(fmt::format("{} must be a positive number of days, got {}", x.name, shortRepr(v)));
             else
                 x.st.s.cookieMaxAgeDays = days;
         }},
        {"JupyterHub.admin_access", SETTER(adminAccess, v.boolean)},
        {"JupyterHub.audit_log",
         [](const Apply& x, const PyValue& v) {
             if (v.str != "syslog" && v.str != "off" && !v.str.empty() && v.str.front() != '/')
                 x.error(fmt::format("{} must be 'syslog', 'off' or an absolute file path", x.name));
             else
                 x.st.s.auditLog = v.str;
         }},
        {"JupyterHub.throttle_logins", SETTER(throttleLogins, v.boolean)},
        {"JupyterHub.authenticate_prometheus", SETTER(authenticatePrometheus, v.boolean)},
        {"JupyterHub.services", services},
        {"IdleCuller.timeout", CULLER_SECONDS(timeout)},
        {"IdleCuller.max_age", CULLER_SECONDS(maxAge)},
        {"IdleCuller.cull_every", CULLER_SECONDS(cullEvery)},
        {"IdleCuller.cull_users", SETTER(idleCuller.cullUsers, v.boolean)},
        {"IdleCuller.cull_admin_users", SETTER(idleCuller.cullAdminUsers, v.boolean)},
        {"IdleCuller.group_timeouts", groupTimeouts},
        {"JupyterHub.load_roles", loadRoles},
        {"JupyterHub.api_tokens", apiTokens},
        {"JupyterHub.api_page_default_limit", POSITIVE_INT(apiPageDefaultLimit)},
        {"JupyterHub.api_page_max_limit", POSITIVE_INT(apiPageMaxLimit)},
        {"JupyterHub.ssl_key", SETTER(sslKey, v.str)},
        {"JupyterHub.ssl_cert", SETTER(sslCert, v.str)},
        {"JupyterHub.ssl_ocsp_response", SETTER(sslOcspResponse, v.str)},
        {"JupyterHub.ssl_allow_world_readable_key", SETTER(sslAllowWorldReadableKey, v.boolean)},
        {"JupyterHub.internal_ssl", SETTER(internalSsl, v.boolean)},
        {"JupyterHub.internal_certs_location",
         [](const Apply& x, const PyValue& v) {
             if (v.str.empty())
                 x.error(fmt::format("{} must name a directory", x.name));
             else
                 x.st.s.internalCertsLocation = v.str;
         }},
        {"JupyterHub.trusted_alt_names", altNames},
        {"JupyterHub.redirect_http_port",
         [](const Apply& x, const PyValue& v) {
             if (v.integer == 0)
                 x.st.s.redirectHttpPort = 0;
             else if (auto p = portTrait(x, v))
                 x.st.s.redirectHttpPort = *p;
         }},
        {"JupyterHub.log_level", logLevel},
        {"JupyterHub.shutdown_on_logout", SETTER(shutdownOnLogout, v.boolean)},
        {"JupyterHub.trusted_downstream_ips", trustedDownstreamIps},
        {"JupyterHub.subdomain_host", subdomainHost},
        {"Authenticator.allowed_users", STRINGS(allowedUsers, true)},
        {"Authenticator.blocked_users", STRINGS(blockedUsers, true)},
        {"Authenticator.admin_users", STRINGS(adminUsers, true)},
        {"Authenticator.username_pattern", usernamePattern},
        {"Authenticator.username_map",
         [](const Apply& x, const PyValue& v) {
             if (auto m = x.strMap(v, x.name)) x.st.s.usernameMap = std::move(*m);
         }},
        {"LocalAuthenticator.allowed_groups", STRINGS(allowedGroups, true)},
        {"LocalAuthenticator.admin_groups", STRINGS(adminGroups, true)},
        {"LocalAuthenticator.create_system_users", createSystemUsers},
        {"PAMAuthenticator.service",
         [](const Apply& x, const PyValue& v) {
             if (v.str.empty() || v.str.find('/') != std::string::npos)
                 x.error(fmt::format("{} must name a file in /etc/pam.d, got {}", x.name, shortRepr(v)));
             else
                 x.st.s.pamService = v.str;
         }},
        {"PAMAuthenticator.open_sessions", SETTER(pamOpenSessions, v.boolean)},
        {"PAMAuthenticator.check_account", SETTER(pamCheckAccount, v.boolean)},
        {"PAMAuthenticator.encoding", SETTER(pamEncoding, v.str)},
        {"PAMAuthenticator.conversation_timeout", POSITIVE_INT(pamConversationTimeout)},
        {"DummyAuthenticator.password", SETTER(dummyPassword, v.str)},
        {"OAuthenticator.client_id", SETTER(oauth.clientId, v.str)},
        {"OAuthenticator.client_secret",
         [](const Apply& x, const PyValue& v) {
             // Every local user can read a process's argv.
             if (x.a.file == kCommandLine)
                 return x.error(fmt::format("{} is refused on the command line, where every local user can "
                                            "read it: put it in the configuration file (mode 0600) or in "
                                            "$OAUTH_CLIENT_SECRET",
                                            x.name));
             x.st.s.oauth.clientSecret = v.str;
         }},
        {"OAuthenticator.oauth_callback_url",
         [](const Apply& x, const PyValue& v) {
             if (!v.str.empty() && v.str.rfind("https://", 0) != 0 && v.str.rfind("http://", 0) != 0)
                 return x.error(fmt::format("{} must be this hub's http(s) URL ending in /hub/oauth_callback, "
                                            "got {}",
                                            x.name, shortRepr(v)));
             x.st.s.oauth.callbackUrl = v.str;
         }},
        {"OAuthenticator.authorize_url",
         [](const Apply& x, const PyValue& v) { providerUrl(x, v, &OAuthSettings::authorizeUrl); }},
        {"OAuthenticator.token_url",
         [](const Apply& x, const PyValue& v) { providerUrl(x, v, &OAuthSettings::tokenUrl); }},
        {"OAuthenticator.userdata_url",
         [](const Apply& x, const PyValue& v) { providerUrl(x, v, &OAuthSettings::userdataUrl); }},
        {"OAuthenticator.oidc_issuer",
         [](const Apply& x, const PyValue& v) { providerUrl(x, v, &OAuthSettings::issuer); }},
        {"OAuthenticator.scope", STRINGS(oauth.scope, true)},
        {"OAuthenticator.username_claim", SETTER(oauth.usernameClaim, v.str)},
        {"GenericOAuthenticator.username_key", SETTER(oauth.usernameClaim, v.str)},
        {"GenericOAuthenticator.claim_groups_key", SETTER(oauth.claimGroupsKey, v.str)},
        {"GenericOAuthenticator.allowed_groups", STRINGS(allowedGroups, true)},
        {"GenericOAuthenticator.admin_groups", STRINGS(adminGroups, true)},
        {"OAuthenticator.login_service", SETTER(oauth.loginService, v.str)},
        {"OAuthenticator.basic_auth", SETTER(oauth.basicAuth, v.boolean)},
        {"OAuthenticator.ca_file", SETTER(oauth.caFile, v.str)},
        {"OAuthenticator.min_uid", SETTER(oauth.minUid, v.integer)},
        {"GoogleOAuthenticator.hosted_domain", STRINGS(oauth.hostedDomain, true)},
        {"AzureAdOAuthenticator.tenant_id", SETTER(oauth.tenantId, v.str)},
        // Allow-lists hubd does not check: starting would let in everyone they
        // were meant to keep out, so refuse (never "no effect").
        {"GoogleOAuthenticator.allowed_google_groups", unimplementedAllowList},
        {"GoogleOAuthenticator.admin_google_groups", unimplementedAllowList},
        {"GoogleOAuthenticator.google_group_whitelist", unimplementedAllowList},
        {"GitHubOAuthenticator.github_url",
         [](const Apply& x, const PyValue& v) { gitServerUrl(x, v, &OAuthSettings::githubUrl); }},
        {"GitHubOAuthenticator.allowed_organizations", githubOrganizations},
        {"GitHubOAuthenticator.populate_teams_in_auth_state",
         [](const Apply& x, const PyValue& v) {
             if (v.boolean)
                 x.error(fmt::format("{} = True is not supported: hubd keeps no auth_state to put the teams "
                                     "in; remove it (allowed_organizations = {{'org:team'}} admits a team)",
                                     x.name));
         }},
        {"GitHubOAuthenticator.github_organization_whitelist",
         [](const Apply& x, const PyValue& v) {
             renamedAllowList(x, v, "GitHubOAuthenticator.allowed_organizations");
         }},
        {"GitLabOAuthenticator.gitlab_url",
         [](const Apply& x, const PyValue& v) { gitServerUrl(x, v, &OAuthSettings::gitlabUrl); }},
        {"GitLabOAuthenticator.allowed_gitlab_groups", gitlabGroups},
        {"GitLabOAuthenticator.allowed_project_ids", gitlabProjectIds},
        {"GitLabOAuthenticator.gitlab_group_whitelist",
         [](const Apply& x, const PyValue& v) {
             renamedAllowList(x, v, "GitLabOAuthenticator.allowed_gitlab_groups");
         }},
        {"GitLabOAuthenticator.gitlab_project_id_whitelist",
         [](const Apply& x, const PyValue& v) {
             renamedAllowList(x, v, "GitLabOAuthenticator.allowed_project_ids");
         }},
        {"LDAPAuthenticator.server_address",
         [](const Apply& x, const PyValue& v) {
             if (auto host = ipTrait(x, v)) x.st.s.ldap.serverAddress = v.str;
         }},
        {"LDAPAuthenticator.server_port",
         [](const Apply& x, const PyValue& v) {
             if (auto p = portTrait(x, v)) x.st.s.ldap.serverPort = *p;
         }},
        {"LDAPAuthenticator.use_ssl",
         [](const Apply& x, const PyValue& v) {
             if (v.boolean) x.st.s.ldap.tlsStrategy = "on_connect";  // ldapauthenticator 2.0's translation
         }},
        {"LDAPAuthenticator.tls_strategy", ldapTlsStrategy},
        {"LDAPAuthenticator.tls_kwargs", ldapTlsKwargs},
        {"LDAPAuthenticator.bind_dn_template", ldapBindDnTemplate},
        {"LDAPAuthenticator.lookup_dn", SETTER(ldap.lookupDn, v.boolean)},
        {"LDAPAuthenticator.lookup_dn_search_filter", ldapSearchFilter},
        {"LDAPAuthenticator.lookup_dn_search_user",
         [](const Apply& x, const PyValue& v) {
             if (auto s = ldapOptional(x, v)) x.st.s.ldap.lookupDnSearchUser = std::move(*s);
         }},
        {"LDAPAuthenticator.lookup_dn_search_password",
         [](const Apply& x, const PyValue& v) {
             if (x.a.file == kCommandLine)
                 return x.error(fmt::format("{} is refused on the command line, where every local user can "
                                            "read it: put it in the configuration file (mode 0600)",
                                            x.name));
             if (auto s = ldapOptional(x, v)) x.st.s.ldap.lookupDnSearchPassword = std::move(*s);
         }},
        {"LDAPAuthenticator.user_search_base",
         [](const Apply& x, const PyValue& v) {
             if (auto s = ldapOptional(x, v)) x.st.s.ldap.userSearchBase = std::move(*s);
         }},
        {"LDAPAuthenticator.user_attribute",
         [](const Apply& x, const PyValue& v) {
             if (auto s = ldapOptional(x, v)) x.st.s.ldap.userAttribute = std::move(*s);
         }},
        {"LDAPAuthenticator.lookup_dn_user_dn_attribute",
         [](const Apply& x, const PyValue& v) {
             if (auto s = ldapOptional(x, v)) x.st.s.ldap.lookupDnUserDnAttribute = std::move(*s);
         }},
        {"LDAPAuthenticator.allowed_groups",
         [](const Apply& x, const PyValue& v) {
             // None and [] both mean "no group restriction" (ldapauthenticator).
             if (v.kind == VK::None) return x.st.s.ldap.allowedGroups.clear();
             if (auto items = x.strings(v, x.name, true)) x.st.s.ldap.allowedGroups = std::move(*items);
         }},
        {"LDAPAuthenticator.group_search_filter", ldapGroupFilter},
        {"LDAPAuthenticator.group_attributes", STRINGS(ldap.groupAttributes, true)},
        {"LDAPAuthenticator.search_filter", ldapUserFilter},
        {"LDAPAuthenticator.attributes", STRINGS(ldap.attributes, true)},
        {"LDAPAuthenticator.valid_username_regex", ldapUsernameRegex},
        {"LDAPAuthenticator.use_lookup_dn_username", SETTER(ldap.useLookupDnUsername, v.boolean)},
        {"LDAPAuthenticator.timeout",
         [](const Apply& x, const PyValue& v) {
             if (v.integer < 1 || v.integer > 300)
                 return x.error(fmt::format("{} must be from 1 to 300 seconds, got {}", x.name, v.integer));
             x.st.s.ldap.timeout = static_cast<int>(v.integer);
         }},
        {"Spawner.cmd", spawnerCmd},
        {"Spawner.args", STRINGS(spawnerArgs, false)},
        {"Spawner.environment", environment},
        {"Spawner.start_timeout", POSITIVE_INT(startTimeout)},
        {"Spawner.http_timeout", POSITIVE_INT(httpTimeout)},
        {"Spawner.notebook_dir", SETTER(notebookDir, v.str)},
        {"Spawner.default_url", SETTER(defaultUrl, v.str)},
        {"Spawner.disable_user_config", SETTER(disableUserConfig, v.boolean)},
        {"Spawner.debug", SETTER(spawnerDebug, v.boolean)},
        {"Spawner.ssl_alt_names", altNames},
        {"SudoSpawner.sudospawner_path", sudospawnerPath},
        {"SudoSpawner.profile",
         [](const Apply& x, const PyValue& v) {
             // The policy names profiles with [a-z0-9_-]; refuse early what the helper would.
             bool ok = !v.str.empty() && v.str.size() <= 64;
             for (char ch : v.str)
                 ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-');
             if (ok)
                 x.st.s.sudospawnerProfile = v.str;
             else
                 x.error(
                     fmt::format("SudoSpawner.profile must be a profile name of the sudospawner policy "
                                 "([a-z0-9_-], at most 64 characters), got {}",
                                 v.repr()));
         }},
    };
    return table;
}

#undef SETTER
#undef POSITIVE_INT
#undef STRINGS
#undef CULLER_SECONDS

// The generic check of TraitInfo::type; "Union", "Enum" and "Any" are left to handlers.
bool typeMatches(std::string_view type, const PyValue& v, std::string& want) {
    if (type == "Unicode") return want = "a string", v.kind == VK::Str;
    if (type == "Bool") return want = "True or False", v.kind == VK::Bool;
    if (type == "Int") return want = "an int", v.kind == VK::Int;
    if (type == "Float") return want = "a number", v.kind == VK::Int || v.kind == VK::Float;
    if (type == "List") return want = "a list", isSequence(v);
    if (type == "Set") return want = "a set", isSequence(v);
    if (type == "Dict") return want = "a dict", v.kind == VK::Dict;
    if (type == "Bytes") return want = "bytes", v.kind == VK::Bytes;
    if (type == "Command") return want = "a list of strings", isSequence(v) || v.kind == VK::Str;
    return true;
}

std::size_t editDistance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

std::string suggest(std::string_view cls, std::string_view trait) {
    const std::string wanted = lower(fmt::format("{}.{}", cls, trait));
    if (wanted.size() > 100) return {};
    std::size_t best = 4;  // farther than 3 edits is no longer a typo
    std::string found;
    for (const auto& t : traitCatalogue()) {
        std::size_t d = editDistance(wanted, lower(t.name));
        // The right trait on the wrong class, e.g. JupyterHub.admin_users.
        const std::string_view name = t.name;
        if (name.substr(name.find('.') + 1) == trait) d = std::min<std::size_t>(d, 1);
        if (d < best) best = d, found = t.name;
    }
    return found;
}

std::string activeAuthenticator(const Settings& s) {
    if (s.authenticatorClass == "generic-oauth" && s.oauth.preset == "google") return "GoogleOAuthenticator";
    if (s.authenticatorClass == "generic-oauth" && s.oauth.preset == "azuread")
        return "AzureAdOAuthenticator";
    if (s.authenticatorClass == "generic-oauth" && s.oauth.preset == "github") return "GitHubOAuthenticator";
    if (s.authenticatorClass == "generic-oauth" && s.oauth.preset == "gitlab") return "GitLabOAuthenticator";
    if (s.authenticatorClass == "generic-oauth") return "GenericOAuthenticator";
    if (s.authenticatorClass == "ldap") return "LDAPAuthenticator";
    return s.authenticatorClass == "dummy" ? "DummyAuthenticator" : "PAMAuthenticator";
}
std::string activeSpawner(const Settings& s) {
    return s.spawnerClass == "sudo" ? "SudoSpawner" : "SimpleLocalProcessSpawner";
}

bool lineageHas(const std::vector<std::string>& lineage, std::string_view cls) {
    return std::find(lineage.begin(), lineage.end(), cls) != lineage.end();
}

class Loader {
public:
    LoadResult run(const std::optional<std::string>& configFile, const std::vector<std::string>& overrides) {
        std::vector<Assignment> assignments;
        if (configFile) readFile(*configFile, assignments);
        for (const auto& arg : overrides)
            if (auto a = parseOverride(arg, diags_)) assignments.push_back(std::move(*a));
        chooseClasses(assignments);
        applyAll(assignments);
        finish();
        // File diagnostics first, each source in line order.
        std::stable_sort(
            diags_.begin(), diags_.end(), [](const ConfigDiagnostic& l, const ConfigDiagnostic& r) {
                return std::pair{l.file == kCommandLine, l.line} < std::pair{r.file == kCommandLine, r.line};
            });
        LoadResult result;
        result.settings = std::move(st_.s);
        result.diagnostics = std::move(diags_);
        return result;
    }

private:
    void fileError(const std::string& file, std::string message) {
        ConfigDiagnostic d;
        d.file = file;
        d.message = std::move(message);
        diags_.push_back(std::move(d));
    }

    void readFile(const std::string& path, std::vector<Assignment>& out) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            fileError(path, fmt::format("cannot read the configuration file: {}", std::strerror(errno)));
            return;
        }
        std::string text;
        char buf[65536];
        while (in.read(buf, sizeof buf) || in.gcount() > 0) {
            text.append(buf, static_cast<std::size_t>(in.gcount()));
            if (text.size() > kMaxFileBytes) {
                fileError(path, "the configuration file is larger than 16 MiB");
                return;
            }
        }
        if (in.bad()) {
            fileError(path, "cannot read the configuration file");
            return;
        }
        out = parseConfigText(text, path, diags_);
    }

    // The active classes decide which subclass assignments apply, so they are settled first.
    void chooseClasses(const std::vector<Assignment>& assignments) {
        for (const auto& a : assignments) {
            const TraitInfo* info = findTrait(a.cls, a.trait);
            if (!info) continue;
            const bool auth = info->name == "JupyterHub.authenticator_class";
            if (!auth && info->name != "JupyterHub.spawner_class") continue;
            Apply x{st_, a, a.cls + "." + a.trait, diags_};
            if (a.value.kind != VK::Str) {
                x.error(fmt::format("{} must be a string, got {}", x.name, shortRepr(a.value)));
                continue;
            }
            const std::string& v = a.value.str;
            if (auth) {
                if (v == "pam" || v == "default" || v == "jupyterhub.auth.PAMAuthenticator") {
                    st_.s.authenticatorClass = "pam";
                } else if (v == "dummy" || v == "jupyterhub.auth.DummyAuthenticator" ||
                           v == "dummyauthenticator.DummyAuthenticator") {
                    st_.s.authenticatorClass = "dummy";
                } else if (v == "generic-oauth" || v == "generic" ||
                           v == "oauthenticator.generic.GenericOAuthenticator" ||
                           v == "oauthenticator.GenericOAuthenticator") {
                    st_.s.authenticatorClass = "generic-oauth";
                    st_.s.oauth.preset.clear();  // a later assignment replaces a preset
                } else if (v == "google" || v == "oauthenticator.google.GoogleOAuthenticator" ||
                           v == "oauthenticator.GoogleOAuthenticator") {
                    st_.s.authenticatorClass = "generic-oauth";
                    st_.s.oauth.preset = "google";
                } else if (v == "azuread" || v == "oauthenticator.azuread.AzureAdOAuthenticator" ||
                           v == "oauthenticator.AzureAdOAuthenticator") {
                    st_.s.authenticatorClass = "generic-oauth";
                    st_.s.oauth.preset = "azuread";
                } else if (v == "github" || v == "oauthenticator.github.GitHubOAuthenticator" ||
                           v == "oauthenticator.GitHubOAuthenticator") {
                    st_.s.authenticatorClass = "generic-oauth";
                    st_.s.oauth.preset = "github";
                } else if (v == "gitlab" || v == "oauthenticator.gitlab.GitLabOAuthenticator" ||
                           v == "oauthenticator.GitLabOAuthenticator") {
                    st_.s.authenticatorClass = "generic-oauth";
                    st_.s.oauth.preset = "gitlab";
                } else if (v == "ldap" || v == "ldapauthenticator.LDAPAuthenticator" ||
                           v == "ldapauthenticator.ldapauthenticator.LDAPAuthenticator") {
                    st_.s.authenticatorClass = "ldap";
                } else {
                    x.error(fmt::format(
                        "{} must be 'pam' (jupyterhub.auth.PAMAuthenticator), 'dummy' "
                        "(jupyterhub.auth.DummyAuthenticator, dummyauthenticator.DummyAuthenticator) or "
                        "'generic-oauth' (oauthenticator.generic.GenericOAuthenticator), 'google' "
                        "(oauthenticator.google.GoogleOAuthenticator), 'azuread' "
                        "(oauthenticator.azuread.AzureAdOAuthenticator), 'github' "
                        "(oauthenticator.github.GitHubOAuthenticator), 'gitlab' "
                        "(oauthenticator.gitlab.GitLabOAuthenticator) or 'ldap' "
                        "(ldapauthenticator.LDAPAuthenticator), got {}",
                        x.name, shortRepr(a.value)));
                }
            } else if (v == "sudo" || v == "sudospawner.SudoSpawner") {
                st_.s.spawnerClass = "sudo";
            } else if (v == "simple" || v == "jupyterhub.spawner.SimpleLocalProcessSpawner") {
                st_.s.spawnerClass = "simple";
            } else if (v == "localprocess" || v == "default" ||
                       v == "jupyterhub.spawner.LocalProcessSpawner") {
                x.error(
                    fmt::format("{} {} is refused: LocalProcessSpawner needs root, which hubd never has: use "
                                "sudospawner.SudoSpawner",
                                x.name, shortRepr(a.value)));
            } else {
                x.error(
                    fmt::format("{} must be 'sudospawner.SudoSpawner' (or 'sudo') or "
                                "'jupyterhub.spawner.SimpleLocalProcessSpawner' (or 'simple'), got {}",
                                x.name, shortRepr(a.value)));
            }
        }
    }

    struct Pending {
        const Assignment* a;
        const TraitInfo* info;
        std::string cls, trait;  // after deprecated renames
        std::size_t rank;        // class depth: subclasses win over base classes
    };

    void applyAll(const std::vector<Assignment>& assignments) {
        std::vector<Pending> pending;
        int suggestions = 0;
        for (const auto& a : assignments) {
            Pending p{&a, nullptr, a.cls, a.trait, classLineage(a.cls).size()};
            Apply x{st_, a, a.cls + "." + a.trait, diags_};
            renameDeprecated(x, p);
            p.info = findTrait(p.cls, p.trait);
            if (!p.info) {
                std::string message = fmt::format(
                    "unknown trait {} is ignored: check the spelling (hubd --help-all lists every trait)",
                    x.name);
                if (suggestions++ < kMaxSuggestions)
                    if (const std::string s = suggest(p.cls, p.trait); !s.empty())
                        message += fmt::format("; did you mean {}?", s);
                x.warn(std::move(message));
                continue;
            }
            if (p.info->name == "JupyterHub.authenticator_class" ||
                p.info->name == "JupyterHub.spawner_class")
                continue;
            x.name = p.cls + "." + p.trait;
            if (p.info->status == TraitInfo::Status::Later)
                x.warn(fmt::format("{} is not yet supported by hubd{}; it has no effect", x.name,
                                   p.info->note.empty() ? "" : " (" + p.info->note + ")"));
            if (p.info->status == TraitInfo::Status::NotNeeded)
                x.warn(fmt::format("{} does not apply to hubd and is ignored: {}", x.name, p.info->note));
            std::string want;
            if (!typeMatches(p.info->type, a.value, want)) {
                x.error(fmt::format("{} must be {}, got {}", x.name, want, shortRepr(a.value)));
                continue;
            }
            if (!applicable(x, p)) {
                // Still validated, so a mistake shows before someone switches classes.
                State scratch;
                Apply check{scratch, a, x.name, diags_};
                if (auto h = handlers().find(p.info->name); h != handlers().end()) h->second(check, a.value);
                continue;
            }
            pending.push_back(std::move(p));
        }
        // Subclass sections override base-class sections whatever the order (traitlets);
        // within one class the last assignment wins.
        std::stable_sort(pending.begin(), pending.end(),
                         [](const Pending& l, const Pending& r) { return l.rank < r.rank; });
        for (const auto& p : pending) {
            Apply x{st_, *p.a, p.cls + "." + p.trait, diags_};
            if (auto h = handlers().find(p.info->name); h != handlers().end()) {
                h->second(x, p.a->value);
                x.remember(p.info->name);
            }
        }
    }

    // JupyterHub 1.2 renamed these; 3.0 still accepts the old names with a warning.
    void renameDeprecated(const Apply& x, Pending& p) {
        static constexpr std::pair<std::string_view, std::string_view> renames[] = {
            {"whitelist", "allowed_users"},
            {"blacklist", "blocked_users"},
            {"group_whitelist", "allowed_groups"}};
        if (!lineageHas(classLineage(p.cls), "Authenticator")) return;
        for (const auto& [old, now] : renames)
            if (p.trait == old) {
                x.warn(fmt::format("{}.{} is deprecated since JupyterHub 1.2: use {}.{}", p.cls, old, p.cls,
                                   now));
                p.trait = std::string(now);
                return;
            }
    }

    // Authenticator and spawner sections apply only when they are in the active class's lineage.
    bool applicable(const Apply& x, const Pending& p) {
        const std::string owner = p.info->name.substr(0, p.info->name.find('.'));
        const auto ownerLineage = classLineage(owner);
        std::string active, selector;
        if (lineageHas(ownerLineage, "Authenticator")) {
            active = activeAuthenticator(st_.s);
            selector = "JupyterHub.authenticator_class";
        } else if (lineageHas(ownerLineage, "Spawner")) {
            active = activeSpawner(st_.s);
            selector = "JupyterHub.spawner_class";
        } else {
            return true;
        }
        const auto lineage = classLineage(active);
        if (lineageHas(lineage, p.cls) && lineageHas(lineage, owner)) return true;
        // Later and NotNeeded traits have already said they do nothing.
        if (p.info->status == TraitInfo::Status::Supported)
            x.warn(fmt::format("{} has no effect: the active class is {} (set by {})", x.name, active,
                               selector));
        return false;
    }

    ConfigDiagnostic at(const std::string& trait, Severity sev, std::string message) {
        ConfigDiagnostic d;
        d.severity = sev;
        if (auto it = st_.where.find(trait); it != st_.where.end()) {
            d.file = it->second.file;
            d.line = it->second.line;
        }
        d.message = std::move(message);
        return d;
    }

    // Rules that involve several traits.
    void finish() {
        Settings& s = st_.s;
        // bind_url: ip, port and base_url override its parts (JupyterHub 3.0).
        Url bind;
        bind.scheme = "http", bind.host = "", bind.port = 8000;
        if (st_.bindUrl) bind = *st_.bindUrl;
        const Url fromBindUrl = bind;
        if (st_.ip) bind.host = *st_.ip;
        if (st_.port) bind.port = *st_.port;
        std::string base = st_.baseUrl ? *st_.baseUrl : bind.path;
        if (base.empty() || base.front() != '/') base.insert(base.begin(), '/');
        if (base.back() != '/') base += '/';
        if (st_.bindUrl && (bind.host != fromBindUrl.host || bind.port != fromBindUrl.port ||
                            (st_.baseUrl && base != fromBindUrl.path && base != fromBindUrl.path + "/")))
            diags_.push_back(
                at("JupyterHub.bind_url", Severity::Warning,
                   "JupyterHub.bind_url and JupyterHub.ip/port/base_url are all set: ip, port and "
                   "base_url override parts of bind_url; prefer bind_url alone"));
        // TLS: as JupyterHub, a certificate makes the public URL https.
        if (!s.sslCert.empty()) {
            bind.scheme = "https";
        } else if (bind.scheme == "https") {
            diags_.push_back(
                at("JupyterHub.bind_url", Severity::Error,
                   "JupyterHub.bind_url uses https but JupyterHub.ssl_cert is not set: set "
                   "ssl_cert and ssl_key (e.g. Let's Encrypt's fullchain.pem and privkey.pem), or "
                   "use http:// behind a TLS-terminating proxy"));
        }
        if (!s.sslKey.empty() && s.sslCert.empty())
            diags_.push_back(
                at("JupyterHub.ssl_key", Severity::Error,
                   "JupyterHub.ssl_key is set but JupyterHub.ssl_cert is not: set ssl_cert to the "
                   "certificate chain of this key (Let's Encrypt: fullchain.pem)"));
        if (s.redirectHttpPort != 0 && s.sslCert.empty())
            diags_.push_back(
                at("JupyterHub.redirect_http_port", Severity::Error,
                   "JupyterHub.redirect_http_port redirects to https, but hubd serves no TLS: set "
                   "JupyterHub.ssl_cert and ssl_key, or set redirect_http_port = 0"));
        else if (s.redirectHttpPort != 0 && s.redirectHttpPort == bind.port)
            diags_.push_back(at("JupyterHub.redirect_http_port", Severity::Error,
                                fmt::format("JupyterHub.redirect_http_port is the https port {} itself: use "
                                            "another port (usually 80 with 443)",
                                            bind.port)));
        s.bindUrl = bind.origin();
        s.baseUrl = base;

        Url hub;
        hub.scheme = "http", hub.host = "127.0.0.1", hub.port = 8081;
        if (st_.hubBindUrl) hub = *st_.hubBindUrl;
        if (st_.hubIp) hub.host = *st_.hubIp;
        if (st_.hubPort) hub.port = *st_.hubPort;
        if (st_.hubBindUrl && (st_.hubIp || st_.hubPort) &&
            (hub.host != st_.hubBindUrl->host || hub.port != st_.hubBindUrl->port))
            diags_.push_back(
                at("JupyterHub.hub_bind_url", Severity::Warning,
                   "JupyterHub.hub_bind_url and JupyterHub.hub_ip/hub_port are all set: hub_ip and "
                   "hub_port override parts of hub_bind_url; prefer hub_bind_url alone"));
        // Internal TLS: as JupyterHub, the hub API speaks https (hubd/internal_tls.h).
        if (s.internalSsl) {
            hub.scheme = "https";
            if (s.hubConnectUrl.rfind("http://", 0) == 0)
                diags_.push_back(at("JupyterHub.hub_connect_url", Severity::Error,
                                    "JupyterHub.internal_ssl makes the hub API https, but "
                                    "JupyterHub.hub_connect_url is http://: write it with https://"));
            if (hub.host == bind.host && hub.port == bind.port)
                diags_.push_back(at("JupyterHub.hub_bind_url", Severity::Error,
                                    "JupyterHub.internal_ssl needs the hub API on its own listener, but "
                                    "hub_bind_url is bind_url: give it another port (the default is "
                                    "http://127.0.0.1:8081)"));
        } else if (hub.scheme == "https") {
            diags_.push_back(
                at("JupyterHub.hub_bind_url", Severity::Error,
                   "JupyterHub.hub_bind_url uses https, which needs JupyterHub.internal_ssl = True "
                   "(hubd makes the certificates): set it, or use http://"));
        }
        s.hubBindUrl = hub.origin();

        if (s.subdomainHost.rfind("http://", 0) == 0)
            diags_.push_back(
                at("JupyterHub.subdomain_host", Severity::Warning,
                   "JupyterHub.subdomain_host uses http: users' servers cannot read the hub's cookies, but "
                   "without TLS they can plant cookies on the hub's host (the __Host- cookie prefix needs "
                   "https); use https with a wildcard certificate (docs/security-model.md)"));
        translateIdleCullerService();
        if (s.apiPageDefaultLimit > s.apiPageMaxLimit)
            diags_.push_back(at("JupyterHub.api_page_default_limit", Severity::Error,
                                fmt::format("JupyterHub.api_page_default_limit ({}) must not exceed "
                                            "JupyterHub.api_page_max_limit ({})",
                                            s.apiPageDefaultLimit, s.apiPageMaxLimit)));
        if (s.authenticatorClass == "generic-oauth") checkOAuth();
        if (s.authenticatorClass == "ldap") checkLdap();
    }

    // LDAPAuthenticator needs a server and a way to find the user's DN.
    void checkLdap() {
        const LdapSettings& l = st_.s.ldap;
        auto problem = [&](const char* trait, Severity sev, std::string message) {
            diags_.push_back(at(st_.where.count(trait) ? trait : "JupyterHub.authenticator_class", sev,
                                std::move(message)));
        };
        if (l.serverAddress.empty())
            problem("LDAPAuthenticator.server_address", Severity::Error,
                    "LDAPAuthenticator needs the directory's host: set LDAPAuthenticator.server_address");
        if (!l.lookupDn && l.bindDnTemplate.empty())
            problem("LDAPAuthenticator.bind_dn_template", Severity::Error,
                    "LDAPAuthenticator needs bind_dn_template (e.g. "
                    "'uid={username},ou=people,dc=example,dc=org') "
                    "or lookup_dn = True with user_search_base and user_attribute");
        if (l.lookupDn && (l.userSearchBase.empty() || l.userAttribute.empty()))
            problem("LDAPAuthenticator.lookup_dn", Severity::Error,
                    "LDAPAuthenticator.lookup_dn needs user_search_base (e.g. 'ou=people,dc=example,dc=org') "
                    "and user_attribute (e.g. 'uid', or 'sAMAccountName' for Active Directory)");
        if (!l.lookupDnSearchUser.empty() && l.lookupDnSearchPassword.empty())
            problem(
                "LDAPAuthenticator.lookup_dn_search_user", Severity::Error,
                "LDAPAuthenticator.lookup_dn_search_user is set without lookup_dn_search_password: a bind "
                "with an empty password is anonymous; set the password, or unset the user for anonymous "
                "searches");
        // ldapauthenticator 2.0 refuses these too: an allow-list that cannot
        // be checked must not start the hub.
        if (!l.allowedGroups.empty() && (l.groupSearchFilter.empty() || l.groupAttributes.empty()))
            problem("LDAPAuthenticator.allowed_groups", Severity::Error,
                    "LDAPAuthenticator.allowed_groups needs group_search_filter and group_attributes: leave "
                    "them at their defaults, or set both");
        if (!l.searchFilter.empty()) {
            std::string why;
            if (l.userSearchBase.empty())
                problem(
                    "LDAPAuthenticator.search_filter", Severity::Error,
                    "LDAPAuthenticator.search_filter searches under user_search_base, which is unset: set "
                    "it (e.g. 'ou=people,dc=example,dc=org')");
            else if (!ldap::userFilter(l.searchFilter, l.userAttribute, "user", why))
                problem(
                    "LDAPAuthenticator.search_filter", Severity::Error,
                    fmt::format("LDAPAuthenticator.search_filter uses {{userattr}}, but user_attribute is "
                                "unset: set it (e.g. 'uid'), or write the attribute into the filter ({})",
                                why));
        }
        if (l.tlsStrategy == "insecure")
            problem("LDAPAuthenticator.tls_strategy", Severity::Warning,
                    "LDAPAuthenticator.tls_strategy = 'insecure': passwords go to the LDAP server in clear "
                    "text; use 'before_bind' (StartTLS) or 'on_connect' (ldaps) unless the server is on "
                    "this machine");
    }

    // GenericOAuthenticator needs a client, a callback and either an issuer to
    // discover or the endpoints themselves. OAuthenticator's environment
    // variables fill what the file leaves out.
    void checkOAuth() {
        OAuthSettings& o = st_.s.oauth;
        auto fromEnv = [](std::string& field, const char* name) {
            if (const char* v = std::getenv(name); field.empty() && v) field = v;
        };
        fromEnv(o.clientId, "OAUTH_CLIENT_ID");
        fromEnv(o.clientSecret, "OAUTH_CLIENT_SECRET");
        fromEnv(o.callbackUrl, "OAUTH_CALLBACK_URL");
        applyPreset(o);
        auto need = [&](const std::string& value, const char* trait, const char* what) {
            if (value.empty())
                diags_.push_back(at(std::string("JupyterHub.authenticator_class"), Severity::Error,
                                    fmt::format("GenericOAuthenticator needs {}: set {}", what, trait)));
        };
        need(o.clientId, "OAuthenticator.client_id (or $OAUTH_CLIENT_ID)",
             "the client id the provider issued");
        need(o.callbackUrl, "OAuthenticator.oauth_callback_url (or $OAUTH_CALLBACK_URL)",
             "this hub's callback URL, e.g. 'https://hub.example.org/hub/oauth_callback'");
        if (o.issuer.empty()) {
            need(o.authorizeUrl, "OAuthenticator.authorize_url, or OAuthenticator.oidc_issuer",
                 "the provider's authorization endpoint");
            need(o.tokenUrl, "OAuthenticator.token_url, or OAuthenticator.oidc_issuer",
                 "the provider's token endpoint");
            need(o.userdataUrl, "OAuthenticator.userdata_url, or OAuthenticator.oidc_issuer",
                 "where the user's name comes from");
        } else if (std::find(o.scope.begin(), o.scope.end(), "openid") == o.scope.end()) {
            o.scope.insert(o.scope.begin(), "openid");  // no ID token without it
        }
        if (o.callbackUrl.find("/oauth_callback") == std::string::npos && !o.callbackUrl.empty())
            diags_.push_back(
                at("OAuthenticator.oauth_callback_url", Severity::Error,
                   fmt::format("OAuthenticator.oauth_callback_url must end in "
                               "'{}hub/oauth_callback' (where hubd receives the provider's answer)",
                               st_.s.baseUrl)));
    }

    // GoogleOAuthenticator and AzureAdOAuthenticator are the generic client
    // with OAuthenticator 16's endpoints and defaults, plus the claim checks
    // that keep other organisations' accounts out (docs/config.md).
    void applyPreset(OAuthSettings& o) {
        if (o.preset.empty()) return;
        const std::string cls = activeAuthenticator(st_.s);
        auto problem = [&](const char* trait, std::string message) {
            diags_.push_back(at(st_.where.count(trait) ? trait : "JupyterHub.authenticator_class",
                                Severity::Error, std::move(message)));
        };
        const bool claimSet = st_.where.count("OAuthenticator.username_claim") ||
                              st_.where.count("GenericOAuthenticator.username_key");
        const bool serviceSet = st_.where.count("OAuthenticator.login_service") > 0;
        if (!o.authorizeUrl.empty() || !o.tokenUrl.empty() || !o.userdataUrl.empty())
            problem(!o.authorizeUrl.empty() ? "OAuthenticator.authorize_url"
                    : !o.tokenUrl.empty()   ? "OAuthenticator.token_url"
                                            : "OAuthenticator.userdata_url",
                    fmt::format("{} knows its provider's endpoints: remove OAuthenticator.authorize_url, "
                                "token_url and userdata_url, or use GenericOAuthenticator",
                                cls));
        if (o.preset == "github" || o.preset == "gitlab") return applyGitPreset(o, claimSet, serviceSet);
        // oidc_issuer may replace the preset's issuer (Azure's national clouds, a
        // test provider); the claim checks below apply to whichever issuer signs.
        const bool issuerSet = !o.issuer.empty();
        if (o.preset == "google") {
            if (!issuerSet) o.issuer = "https://accounts.google.com";
            if (!claimSet) o.usernameClaim = "email";
            if (!serviceSet) o.loginService = "Google";
            if (o.scope.empty()) o.scope = {"openid", "email"};
            if (!o.hostedDomain.empty()) o.requiredIdClaims.emplace_back("hd", o.hostedDomain);
            if (o.hostedDomain.size() == 1) o.stripDomain = o.hostedDomain.front();
            return;
        }
        if (const char* env = std::getenv("AAD_TENANT_ID"); o.tenantId.empty() && env) o.tenantId = env;
        if (!claimSet) o.usernameClaim = "name";
        if (!serviceSet) o.loginService = "Azure AD";
        if (o.scope.empty()) o.scope = {"openid", "profile"};
        if (o.tenantId == "common" || o.tenantId == "organizations" || o.tenantId == "consumers")
            return problem("AzureAdOAuthenticator.tenant_id",
                           fmt::format("AzureAdOAuthenticator.tenant_id '{}' admits other organisations' "
                                       "accounts, which hubd does not support yet: set your directory's "
                                       "tenant id (a GUID, Azure portal > Microsoft Entra ID > Overview)",
                                       o.tenantId));
        if (!isGuid(o.tenantId))
            return problem("AzureAdOAuthenticator.tenant_id",
                           fmt::format("AzureAdOAuthenticator.tenant_id must be your directory's tenant id, "
                                       "a GUID like '72f988bf-86f1-41af-91ab-2d7cd011db47' (Azure portal > "
                                       "Microsoft Entra ID > Overview; or $AAD_TENANT_ID), got '{}'",
                                       o.tenantId));
        if (!issuerSet) o.issuer = "https://login.microsoftonline.com/" + o.tenantId + "/v2.0";
        o.requiredIdClaims.emplace_back("tid", std::vector<std::string>{o.tenantId});
    }

    // GitHubOAuthenticator and GitLabOAuthenticator: plain OAuth 2.0 (no ID
    // token) with OAuthenticator 16's endpoints, environment variables and
    // defaults; allowed_organizations / allowed_gitlab_groups /
    // allowed_project_ids are asked of the REST API at sign-in
    // (hubd/app/git_membership.h).
    void applyGitPreset(OAuthSettings& o, bool claimSet, bool serviceSet) {
        const bool github = o.preset == "github";
        const char* cls = github ? "GitHubOAuthenticator" : "GitLabOAuthenticator";
        const char* urlTrait = github ? "GitHubOAuthenticator.github_url" : "GitLabOAuthenticator.gitlab_url";
        auto problem = [&](const char* trait, std::string message) {
            diags_.push_back(at(st_.where.count(trait) ? trait : "JupyterHub.authenticator_class",
                                Severity::Error, std::move(message)));
        };
        auto env = [](const char* name) -> std::string {
            const char* v = std::getenv(name);
            return v ? v : "";
        };
        if (!o.issuer.empty())
            problem("OAuthenticator.oidc_issuer",
                    fmt::format("{} is plain OAuth 2.0 without ID tokens: remove "
                                "OAuthenticator.oidc_issuer",
                                cls));
        // OAuthenticator's client_id_env / client_secret_env come before $OAUTH_CLIENT_ID.
        const std::string prefix = github ? "GITHUB" : "GITLAB";
        if (!st_.where.count("OAuthenticator.client_id") && !env((prefix + "_CLIENT_ID").c_str()).empty())
            o.clientId = env((prefix + "_CLIENT_ID").c_str());
        if (!st_.where.count("OAuthenticator.client_secret") &&
            !env((prefix + "_CLIENT_SECRET").c_str()).empty())
            o.clientSecret = env((prefix + "_CLIENT_SECRET").c_str());
        std::string& url = github ? o.githubUrl : o.gitlabUrl;
        if (url.empty()) {
            url = env((prefix + "_URL").c_str());
            if (url.empty() && !env((prefix + "_HOST").c_str()).empty()) {
                const std::string host = env((prefix + "_HOST").c_str());
                url = host.find("://") != std::string::npos     ? host
                      : (github && !env("GITHUB_HTTP").empty()) ? "http://" + host
                                                                : "https://" + host;
            }
            if (!url.empty() && url.find("://") == std::string::npos) url = "https://" + url;
            while (!url.empty() && url.back() == '/') url.pop_back();
            if (url.empty()) url = github ? "https://github.com" : "https://gitlab.com";
            if (!providerUrlOk(url) || url.find_first_of("?#") != std::string::npos)
                return problem(urlTrait,
                               fmt::format("${}_URL / ${}_HOST give '{}': {} must be an https:// URL "
                                           "(http:// only to 127.0.0.1 or localhost)",
                                           prefix, prefix, url.substr(0, 200), urlTrait));
        }
        if (github) {
            // Only github.com keeps its API on another host; GitHub Enterprise Server under /api/v3.
            o.apiUrl = url == "https://github.com" ? "https://api.github.com" : url + "/api/v3";
            o.authorizeUrl = url + "/login/oauth/authorize";
            o.tokenUrl = url + "/login/oauth/access_token";
            if (!claimSet) o.usernameClaim = "login";
            if (!serviceSet) o.loginService = "GitHub";
            // Without read:org GitHub confirms public memberships only.
            if (!o.allowedOrganizations.empty() &&
                std::find(o.scope.begin(), o.scope.end(), "read:org") == o.scope.end())
                o.scope.push_back("read:org");
        } else {
            o.apiUrl = url + "/api/v4";
            o.authorizeUrl = url + "/oauth/authorize";
            o.tokenUrl = url + "/oauth/token";
            if (!serviceSet) o.loginService = "GitLab";
            if (o.scope.empty()) o.scope = {"read_user"};
            // The members API needs read_api (or api); read_user reads /user only.
            const bool apiScope = std::find(o.scope.begin(), o.scope.end(), "read_api") != o.scope.end() ||
                                  std::find(o.scope.begin(), o.scope.end(), "api") != o.scope.end();
            if ((!o.allowedGitlabGroups.empty() || !o.allowedProjectIds.empty()) && !apiScope)
                o.scope.push_back("read_api");
        }
        o.userdataUrl = o.apiUrl + "/user";
        // Both document the client in the form body; Basic only when asked for.
        if (!st_.where.count("OAuthenticator.basic_auth")) o.basicAuth = false;
    }

    static bool isGuid(const std::string& s) {
        if (s.size() != 36) return false;
        for (std::size_t i = 0; i < s.size(); ++i) {
            const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
            if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
        }
        return true;
    }

    // hubd launches no services: a service that would run jupyterhub_idle_culler
    // turns on the built-in culler with the same flags, unless IdleCuller.* is set.
    void translateIdleCullerService() {
        const auto& services = st_.s.services;
        for (std::size_t i = 0; i < services.size(); ++i) {
            auto cmd = readIdleCullerCommand(services[i].command);
            if (!cmd) continue;
            const std::string what = fmt::format("JupyterHub.services[{}] ('{}')", i, services[i].name);
            for (const auto& problem : cmd->problems)
                diags_.push_back(at("JupyterHub.services", Severity::Error,
                                    fmt::format("{} runs jupyterhub_idle_culler: {}", what, problem)));
            const bool explicitCuller = std::any_of(st_.where.begin(), st_.where.end(), [](const auto& w) {
                return w.first.rfind("IdleCuller.", 0) == 0;
            });
            if (explicitCuller || !st_.s.idleCuller.translatedFrom.empty()) {
                diags_.push_back(
                    at("JupyterHub.services", Severity::Warning,
                       fmt::format("{} runs jupyterhub_idle_culler, which hubd does not launch; "
                                   "its flags are ignored because {} already configures the "
                                   "built-in culler",
                                   what, explicitCuller ? "IdleCuller.*" : st_.s.idleCuller.translatedFrom)));
                continue;
            }
            IdleCullerSettings& c = st_.s.idleCuller;
            c = cmd->settings;
            c.translatedFrom = what;
            std::string ignored;
            for (const auto& flag : cmd->ignored) ignored += (ignored.empty() ? "" : " ") + flag;
            diags_.push_back(
                at("JupyterHub.services", Severity::Warning,
                   fmt::format(
                       "{} runs jupyterhub_idle_culler, which hubd does not launch: the built-in culler "
                       "does its work instead, with IdleCuller.timeout = {}, max_age = {}, cull_every = "
                       "{}, cull_users = {}, cull_admin_users = {}{} (docs/config.md, \"Idle culling\"); "
                       "set IdleCuller.* and remove the service to silence this",
                       what, c.timeout, c.maxAge, c.cullEvery, c.cullUsers ? "True" : "False",
                       c.cullAdminUsers ? "True" : "False",
                       ignored.empty() ? "" : "; ignored, as the hub needs none of them: " + ignored)));
        }
    }

    State st_;
    std::vector<ConfigDiagnostic> diags_;
};

}  // namespace

std::string ConfigDiagnostic::format() const {
    if (file.empty()) return message;
    if (line <= 0) return fmt::format("{}: {}", file, message);
    return fmt::format("{}:{}: {}", file, line, message);
}

bool LoadResult::ok() const {
    return std::none_of(diagnostics.begin(), diagnostics.end(),
                        [](const ConfigDiagnostic& d) { return d.severity == Severity::Error; });
}

LoadResult loadSettings(const std::optional<std::string>& configFile,
                        const std::vector<std::string>& overrides) {
    return Loader().run(configFile, overrides);
}

std::string checkAltName(std::string_view name) {
    if (name.starts_with("IP:")) {
        std::string ip(name.substr(3));
        unsigned char buf[16];
        if (::inet_pton(AF_INET, ip.c_str(), buf) == 1 || ::inet_pton(AF_INET6, ip.c_str(), buf) == 1)
            return {};
        return fmt::format("'{}' is not an IP address (write IP:10.0.0.5 or IP:::1)", ip);
    }
    if (name.starts_with("DNS:")) {
        std::string_view host = name.substr(4);
        bool ok = !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                   c == '.' || c == '*';
        });
        return ok ? std::string() : fmt::format("'{}' is not a DNS name", host);
    }
    return fmt::format("'{}' must start with DNS: or IP: (e.g. DNS:hub.example.org, IP:10.0.0.5)", name);
}

std::string helpAllText() {
    std::string out =
        "hubd configuration options\n"
        "==========================\n"
        "Set them in jupyterhub_config.py as c.Class.trait = <literal>, or on the command line as\n"
        "--Class.trait=<value>. Values are Python literals; nothing in the file is executed.\n";
    std::string_view section;
    for (const auto& t : traitCatalogue()) {
        const std::string_view cls = std::string_view(t.name).substr(0, t.name.find('.'));
        if (cls != section) {
            section = cls;
            const std::string title = fmt::format("{} options", cls);
            out += fmt::format("\n{}\n{}\n", title, std::string(title.size(), '-'));
        }
        out += fmt::format("--{}=<{}>\n", t.name, t.type);
        std::string marker;
        if (t.status == TraitInfo::Status::Later)
            marker =
                t.note.empty() ? "[not yet supported] " : fmt::format("[not yet supported: {}] ", t.note);
        if (t.status == TraitInfo::Status::NotNeeded)
            marker = fmt::format("[not needed by hubd: {}] ", t.note);
        out += fmt::format("    {}{}\n", marker, t.help);
        out += fmt::format("    Default: {}\n", t.defaultRepr);
    }
    return out;
}

}  // namespace hub
