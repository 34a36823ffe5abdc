// SPDX-License-Identifier: BSD-3-Clause
// hubd's configuration: JupyterHub-style `c.Class.trait = <literal>` files,
// command-line overrides, and the typed Settings they produce.
//
// MUST: nothing in a configuration file is ever executed. The loader accepts
// Python literals only; anything else is an error naming FILE:LINE.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hubcore/build_paths.h"

namespace hub {

// A parsed Python literal.
struct PyValue {
    enum class Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Set, Dict };
    Kind kind = Kind::None;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0;
    std::string str;                                // Str (UTF-8) and Bytes (raw bytes)
    std::vector<PyValue> items;                     // List, Tuple, Set (sets keep source order, deduplicated)
    std::vector<std::pair<PyValue, PyValue>> dict;  // Dict, in source order

    // Python-ish rendering for messages and --help-all: 'abc', {'a', 'b'}, True, None.
    std::string repr() const;
};

// One problem found while loading. Errors stop start-up; warnings are logged.
struct ConfigDiagnostic {
    enum class Severity { Warning, Error };
    Severity severity = Severity::Error;
    std::string file;  // "" or "<command line>" for overrides
    int line = 0;
    std::string message;  // complete sentence without the FILE:LINE prefix

    std::string format() const;  // "FILE:LINE: message"
};

struct ServiceSpec {
    std::string name;
    std::string apiToken;  // may be empty; user-provided, hashed before storage
    bool admin = false;
    std::string url;
    std::vector<std::string> command;                // accepted, hubd does not launch managed services
    std::map<std::string, std::string> oauthFields;  // unused for now
};

struct RoleSpec {
    std::string name;
    std::string description;
    std::vector<std::string> scopes;
    std::vector<std::string> users;
    std::vector<std::string> services;
    std::vector<std::string> groups;
};

// hubd: the built-in idle culler (IdleCuller.*, hubd/app/idle_culler.h), in
// jupyterhub-idle-culler's terms. All durations in seconds; 0 = off.
struct IdleCullerSettings {
    int64_t timeout = 0;    // stop servers idle this long
    int64_t maxAge = 0;     // stop servers running this long, busy or not
    int64_t cullEvery = 0;  // seconds between passes; 0 = derived (idle_culler.h)
    bool cullUsers = false;
    bool cullAdminUsers = true;
    std::map<std::string, int64_t> groupTimeouts;  // hub group -> idle timeout (longest wins; 0 = never)
    // Where the settings came from when they were translated from a
    // jupyterhub_idle_culler service command: "JupyterHub.services[0] ('idle-culler')".
    std::string translatedFrom;
};

// OAuthenticator's GenericOAuthenticator (hubd/app/oidc.h), with
// OAuthenticator 16's trait names. allowed_groups / admin_groups of the
// OAuth classes go to Settings::allowedGroups / adminGroups.
struct OAuthSettings {
    std::string clientId;      // OAuthenticator.client_id (or $OAUTH_CLIENT_ID)
    std::string clientSecret;  // OAuthenticator.client_secret (or $OAUTH_CLIENT_SECRET); never logged
    std::string callbackUrl;   // OAuthenticator.oauth_callback_url (or $OAUTH_CALLBACK_URL)
    std::string authorizeUrl, tokenUrl, userdataUrl;  // "" = from discovery
    std::string issuer;  // hubd: OAuthenticator.oidc_issuer (discovery, ID-token check)
    std::vector<std::string> scope;
    std::string usernameClaim = "username";  // username_claim (OAuthenticator 16's username_key)
    std::string claimGroupsKey = "groups";
    std::string loginService = "OAuth 2.0";
    bool basicAuth = true;  // client_secret_basic; False: client_secret_post
    std::string caFile;     // hubd: OAuthenticator.ca_file, PEM CAs trusted for the provider
    int64_t minUid = 1000;  // hubd: OAuthenticator.min_uid, lower uids are system accounts
    // Presets over the generic client: "" (GenericOAuthenticator), "google"
    // (GoogleOAuthenticator) or "azuread" (AzureAdOAuthenticator).
    std::string preset;
    std::vector<std::string> hostedDomain;  // GoogleOAuthenticator.hosted_domain
    std::string tenantId;                   // AzureAdOAuthenticator.tenant_id (or $AAD_TENANT_ID)
    // Claims the verified ID token itself must carry, each with one of its
    // values (Google's hd, Azure AD's tid); filled from the presets' traits.
    // Never read from userinfo or the email address: those are not the
    // provider's signed word on the account's organisation.
    std::vector<std::pair<std::string, std::vector<std::string>>> requiredIdClaims;
    std::string stripDomain;  // "user@<this>" names the user "user" (Google, one hosted_domain)
    // "github" (GitHubOAuthenticator) and "gitlab" (GitLabOAuthenticator):
    // plain OAuth 2.0; membership asked of the provider's REST API at apiUrl
    // (hubd/app/git_membership.h). Each allow-list admits, like allowed_users.
    std::string githubUrl;                          // GitHubOAuthenticator.github_url (or $GITHUB_URL)
    std::string gitlabUrl;                          // GitLabOAuthenticator.gitlab_url (or $GITLAB_URL)
    std::string apiUrl;                             // filled by the preset: GitHub's or GitLab's REST API
    std::vector<std::string> allowedOrganizations;  // "org" or "org:team"
    std::vector<std::string> allowedGitlabGroups;   // full group paths, "group/subgroup"
    std::vector<int64_t> allowedProjectIds;         // Developer (30) or higher admits
};

// ldapauthenticator's LDAPAuthenticator (src/ldap_authenticator.cpp), with
// its trait names. tls_strategy and the escaping follow ldapauthenticator 2.0
// (StartTLS by default, the username always escaped); use_lookup_dn_username
// and allowed_groups (checked while authenticating) follow 1.3, the release
// JupyterHub 3.0 configurations were written for.
struct LdapSettings {
    std::string serverAddress;                // server_address: host name or IP address
    int serverPort = 0;                       // server_port; 0 = 636 with on_connect, else 389
    std::string tlsStrategy = "before_bind";  // "before_bind" (StartTLS), "on_connect" (ldaps), "insecure"
    std::string caCertsFile;                  // tls_kwargs['ca_certs_file']; "" = the system CA store
    std::vector<std::string> bindDnTemplate;  // {username} is replaced by the DN-escaped name
    bool lookupDn = false;
    std::string lookupDnSearchFilter = "({login_attr}={login})";
    std::string lookupDnSearchUser, lookupDnSearchPassword;  // "" = anonymous search
    std::string userSearchBase, userAttribute, lookupDnUserDnAttribute;
    std::vector<std::string> allowedGroups;  // group DNs; empty (None or []) = no group restriction
    // group_search_filter ({userdn}, {uid}) and group_attributes, for allowed_groups
    std::string groupSearchFilter = "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))";
    std::vector<std::string> groupAttributes = {"member", "uniqueMember", "memberUid"};
    // search_filter ({userattr}, {username}): after the bind, exactly one entry
    // under user_search_base must match; "" = no such search. attributes: fetched with it.
    std::string searchFilter;
    std::vector<std::string> attributes;
    std::string validUsernameRegex = "^[a-z][.a-z0-9_-]*$";
    bool useLookupDnUsername = true;
    int timeout = 5;  // hubd: seconds for the connection and for each LDAP operation
};

// Typed settings. Defaults follow JupyterHub 3.0 unless noted.
struct Settings {
    // JupyterHub
    std::string bindUrl = "http://:8000";  // JupyterHub.bind_url (ip/port/base_url override parts);
                                           // scheme://host:port only, the path is in baseUrl
    std::string baseUrl = "/";             // JupyterHub.base_url, always begins and ends with '/'
    std::string hubBindUrl = "http://127.0.0.1:8081";  // JupyterHub.hub_bind_url (hub_ip/hub_port override
                                                       // parts); scheme://host:port only
    std::string hubConnectUrl;                         // JupyterHub.hub_connect_url
    std::string dbUrl = "sqlite:///jupyterhub.sqlite";
    std::string cookieSecretFile = "jupyterhub_cookie_secret";
    std::optional<std::string> cookieSecret;  // raw bytes, from JupyterHub.cookie_secret
    double cookieMaxAgeDays = 14;
    std::string authenticatorClass =
        "pam";  // canonical: "pam", "dummy", "generic-oauth" (+ oauth.preset), "ldap"
    std::string spawnerClass = "simple";  // canonical: "simple" or "sudo"
    bool adminAccess = false;
    std::string auditLog = "syslog";  // hubd: JupyterHub.audit_log (hubcore/audit.h)
    bool throttleLogins = true;       // hubd: JupyterHub.throttle_logins (app/login_throttle.h)
    // JupyterHub.authenticate_prometheus: /hub/metrics needs read:metrics (app/metrics_page.h)
    bool authenticatePrometheus = true;
    std::vector<ServiceSpec> services;
    std::vector<RoleSpec> loadRoles;
    std::map<std::string, std::string> apiTokens;  // JupyterHub.api_tokens: token -> user
    int apiPageDefaultLimit = 50;
    int apiPageMaxLimit = 200;
    // Public TLS (http/tls_context.h): with sslCert set, bindUrl is https.
    std::string sslKey, sslCert;            // JupyterHub.ssl_key / ssl_cert; "" key = in the cert file
    std::string sslOcspResponse;            // hubd: DER OCSP response to staple; "" = <ssl_cert>.ocsp
    bool sslAllowWorldReadableKey = false;  // hubd: start with a key every local user can read
    int redirectHttpPort = 0;               // hubd: plain-HTTP listener that redirects to https (0: none)
    // Internal TLS (hubd/internal_tls.h): with internalSsl, hubBindUrl is https.
    bool internalSsl = false;                            // JupyterHub.internal_ssl
    std::string internalCertsLocation = "internal-ssl";  // relative to the working (state) directory
    std::vector<std::string> trustedAltNames;            // "DNS:x" / "IP:y", in hubd's own certificate
    std::string logLevel = "INFO";
    bool shutdownOnLogout = false;
    // JupyterHub.trusted_downstream_ips: addresses and CIDR networks (cidr.h)
    // whose X-Forwarded-* headers are believed; validated while loading.
    std::vector<std::string> trustedDownstreamIps;
    // JupyterHub.subdomain_host, normalised to "scheme://host[:port]" (hubcore/subdomain.h);
    // "" = every server under the hub's own host.
    std::string subdomainHost;

    // Authenticator (and LocalAuthenticator / PAMAuthenticator / DummyAuthenticator)
    std::vector<std::string> allowedUsers;
    std::vector<std::string> blockedUsers;
    std::vector<std::string> adminUsers;
    std::vector<std::string> allowedGroups;          // LocalAuthenticator.allowed_groups
    std::vector<std::string> adminGroups;            // LocalAuthenticator/PAMAuthenticator.admin_groups
    std::string usernamePattern;                     // Authenticator.username_pattern (ECMAScript regex)
    std::map<std::string, std::string> usernameMap;  // Authenticator.username_map
    bool createSystemUsers = false;                  // refused when True (see docs/config.md)
    std::string pamService = "login";
    bool pamOpenSessions = false;
    bool pamCheckAccount = true;
    std::string pamEncoding = "utf8";
    int pamConversationTimeout = 120;  // hubd: PAMAuthenticator.conversation_timeout (seconds)
    std::string dummyPassword;         // DummyAuthenticator.password

    // Spawner / SudoSpawner
    std::vector<std::string> spawnerCmd = {"jupyterhub-singleuser"};
    std::vector<std::string> spawnerArgs;
    std::map<std::string, std::string> spawnerEnvironment;
    double startTimeout = 60;
    double httpTimeout = 30;
    std::string notebookDir;
    std::string defaultUrl;
    bool disableUserConfig = false;
    bool spawnerDebug = false;
    // Where meson installs the helper (build_paths.h).
    std::string sudospawnerPath = kSudospawnerPath;
    std::string sudospawnerProfile = "default";  // SudoSpawner.profile
    std::vector<std::string> sslAltNames;        // Spawner.ssl_alt_names: "DNS:x" / "IP:y"

    IdleCullerSettings idleCuller;  // hubd: IdleCuller.*
    OAuthSettings oauth;            // OAuthenticator / GenericOAuthenticator (hubd/app/oidc.h)
    LdapSettings ldap;              // LDAPAuthenticator (src/ldap_authenticator.cpp)
};

// The catalogue of traits, for --help-all, warnings and docs/config.md.
struct TraitInfo {
    std::string name;         // "JupyterHub.bind_url"
    std::string type;         // "Unicode", "Bool", "Int", "Float", "List", "Set", "Dict", "Bytes"
    std::string defaultRepr;  // as JupyterHub prints it
    std::string help;         // one line
    enum class Status { Supported, Later, NotNeeded } status = Status::Supported;
    std::string note;  // for Later / NotNeeded: why, or which issue implements it
};
const std::vector<TraitInfo>& traitCatalogue();

// The JupyterHub classes hubd knows, most derived first: "PAMAuthenticator" ->
// {PAMAuthenticator, LocalAuthenticator, Authenticator}. An unknown class yields itself.
std::vector<std::string> classLineage(std::string_view cls);

// Finds cls.trait in the catalogue, also when the trait is declared on a base class of cls or,
// as traitlets applies config by section, on a subclass (c.Authenticator.admin_groups).
// nullptr when unknown.
const TraitInfo* findTrait(std::string_view cls, std::string_view trait);

// Python lexing and literal parsing (pyliteral.cpp), shared by the configuration parser and
// exposed for tests and the fuzzer.
struct PyToken {
    enum class Kind { Name, Number, Str, Bytes, FString, Op, Newline, End };
    Kind kind = Kind::End;
    std::string text;  // spelling (Name, Number, Op) or decoded contents (Str as UTF-8, Bytes)
    int line = 0;      // 1-based
    int column = 0;    // byte offset within its line
};

struct PySyntaxError {
    int line = 0;
    std::string message;  // complete sentence
};

// Splits source into tokens, always ending with End. Comments, blank lines, backslash
// continuations and newlines inside brackets produce no tokens; Newline ends a logical line.
// On a lexical error returns false; tokens then holds the complete logical lines before it.
bool tokenizePython(std::string_view text, std::vector<PyToken>& tokens, PySyntaxError& error);

// Parses one literal, or a bare tuple `a, b`, starting at tokens[pos]. On success pos is just
// past it and tokens[pos] is Newline, End or ';'.
std::optional<PyValue> parsePyLiteral(const std::vector<PyToken>& tokens, std::size_t& pos,
                                      PySyntaxError& error);

// Parses text that holds exactly one Python literal.
std::optional<PyValue> parsePyLiteral(std::string_view text, PySyntaxError& error);

struct LoadResult {
    Settings settings;
    std::vector<ConfigDiagnostic> diagnostics;
    bool ok() const;  // no Error diagnostics
};

// Parses one configuration file's text into assignments (no evaluation).
// Exposed for tests and the fuzzer.
struct Assignment {
    std::string cls;    // "JupyterHub"
    std::string trait;  // "bind_url"
    PyValue value;
    std::string file;
    int line = 0;
};
std::vector<Assignment> parseConfigText(std::string_view text, std::string_view fileName,
                                        std::vector<ConfigDiagnostic>& diagnostics);

// Parses "--Class.trait=value" (value is a Python literal, or a bare string as
// traitlets accepts for Unicode traits). Returns nullopt and adds a diagnostic on error.
// Only the '=' form is accepted: "--Class.trait value" is an error, because a value that
// looks like an option would otherwise be ambiguous.
std::optional<Assignment> parseOverride(std::string_view arg, std::vector<ConfigDiagnostic>& diagnostics);

// Applies, in order: defaults, the file (if any), then the overrides.
// Unknown traits and Later traits produce warnings; type errors produce errors.
LoadResult loadSettings(const std::optional<std::string>& configFile,
                        const std::vector<std::string>& overrides);

// Text for `hubd --help-all`.
std::string helpAllText();

// "" if `name` is a subject alternative name internal TLS can put in a
// certificate ("DNS:hub.example.org", "IP:10.0.0.5", "IP:::1"), else why not.
// (JupyterHub.trusted_alt_names, Spawner.ssl_alt_names.)
std::string checkAltName(std::string_view name);

}  // namespace hub
