// SPDX-License-Identifier: BSD-3-Clause
// The catalogue of every trait hubd knows: type, default, help and whether hubd honours it.
#include "hubcore/config.h"

namespace hub {
namespace {

using Status = TraitInfo::Status;

constexpr std::string_view kNoProxy =
    "hubd serves and routes requests itself, so there is no configurable-http-proxy to configure";

std::vector<TraitInfo> buildCatalogue() {
    std::vector<TraitInfo> c;
    auto add = [&](std::string name, std::string type, std::string def, std::string help,
                   Status status = Status::Supported, std::string note = {}) {
        c.push_back(TraitInfo{std::move(name), std::move(type), std::move(def), std::move(help), status,
                              std::move(note)});
    };
    auto later = [&](std::string name, std::string type, std::string def, std::string help,
                     std::string note = {}) {
        add(std::move(name), std::move(type), std::move(def), std::move(help), Status::Later,
            std::move(note));
    };
    auto notNeeded = [&](std::string name, std::string type, std::string def, std::string help,
                         std::string note) {
        add(std::move(name), std::move(type), std::move(def), std::move(help), Status::NotNeeded,
            std::move(note));
    };

    // JupyterHub
    add("JupyterHub.bind_url", "Unicode", "'http://:8000'",
        "The public facing URL of the whole hub; JupyterHub.ip, .port and .base_url override its parts.");
    add("JupyterHub.ip", "Unicode", "''",
        "The public facing IP address; '' means all interfaces (overrides bind_url).");
    add("JupyterHub.port", "Int", "8000", "The public facing port (overrides the port of bind_url).");
    add("JupyterHub.base_url", "Unicode", "'/'",
        "The URL prefix of the whole hub (overrides the path of bind_url).");
    add("JupyterHub.hub_bind_url", "Unicode", "''",
        "The URL the hub's internal API listens on; '' means http://hub_ip:hub_port.");
    add("JupyterHub.hub_ip", "Unicode", "'127.0.0.1'",
        "The IP address of the hub's internal API (overrides hub_bind_url).");
    add("JupyterHub.hub_port", "Int", "8081", "The port of the hub's internal API (overrides hub_bind_url).");
    add("JupyterHub.hub_connect_url", "Unicode", "''",
        "The URL single-user servers use to reach the hub API, if not hub_bind_url.");
    add("JupyterHub.db_url", "Unicode", "'sqlite:///jupyterhub.sqlite'",
        "The database: sqlite:///relative/path or sqlite:////absolute/path (only SQLite is supported).");
    add("JupyterHub.cookie_secret_file", "Unicode", "'jupyterhub_cookie_secret'",
        "File holding the cookie secret as 64 hex digits; it must not be readable by group or others.");
    add("JupyterHub.cookie_secret", "Union", "b''",
        "The 32-byte cookie secret, e.g. bytes.fromhex('<output of openssl rand -hex 32>').");
    add("JupyterHub.cookie_max_age_days", "Float", "14", "Number of days a signed login cookie stays valid.");
    add("JupyterHub.authenticator_class", "Unicode", "'jupyterhub.auth.PAMAuthenticator'",
        "The authenticator: 'pam' (jupyterhub.auth.PAMAuthenticator), 'dummy' "
        "(jupyterhub.auth.DummyAuthenticator), 'generic-oauth' "
        "(oauthenticator.generic.GenericOAuthenticator), 'google' "
        "(oauthenticator.google.GoogleOAuthenticator), "
        "'azuread' (oauthenticator.azuread.AzureAdOAuthenticator), 'github' "
        "(oauthenticator.github.GitHubOAuthenticator), 'gitlab' "
        "(oauthenticator.gitlab.GitLabOAuthenticator) or 'ldap' "
        "(ldapauthenticator.LDAPAuthenticator).");
    add("JupyterHub.spawner_class", "Unicode", "'jupyterhub.spawner.SimpleLocalProcessSpawner'",
        "The spawner: 'sudo' (sudospawner.SudoSpawner) or 'simple'; LocalProcessSpawner needs root and is "
        "refused.");
    add("JupyterHub.admin_access", "Bool", "False",
        "Whether admins may access other users' single-user servers.");
    add("JupyterHub.services", "List", "[]",
        "Externally managed services: a list of dicts with name, api_token, admin, url, oauth_* keys.");
    add("JupyterHub.load_roles", "List", "[]",
        "Roles to create: a list of dicts with name, description, scopes, users, services, groups.");
    add("JupyterHub.api_tokens", "Dict", "{}",
        "API tokens to load: {token: username} (deprecated; prefer services).");
    add("JupyterHub.api_page_default_limit", "Int", "50",
        "Default number of items per page in paginated API replies.");
    add("JupyterHub.api_page_max_limit", "Int", "200",
        "Maximum number of items per page in paginated API replies.");
    add("JupyterHub.log_level", "Enum", "'INFO'",
        "Log level: DEBUG, INFO, WARNING, ERROR or CRITICAL (or 10..50).");
    add("JupyterHub.shutdown_on_logout", "Bool", "False",
        "Whether logging out also stops the user's server.");
    add("JupyterHub.ssl_key", "Unicode", "''",
        "Path to the TLS private key for the public URL (e.g. Let's Encrypt's privkey.pem); '' means it is "
        "in ssl_cert. Re-read on SIGHUP.");
    add("JupyterHub.ssl_cert", "Unicode", "''",
        "Path to the TLS certificate and its chain for the public URL (e.g. Let's Encrypt's fullchain.pem); "
        "setting it serves https. Re-read on SIGHUP.");
    add("JupyterHub.ssl_ocsp_response", "Unicode", "''",
        "hubd: DER OCSP response file to staple (refreshed by a cron job or certbot hook, re-read on "
        "SIGHUP); '' means <ssl_cert>.ocsp when that exists.");
    add("JupyterHub.ssl_allow_world_readable_key", "Bool", "False",
        "hubd: start even if every local user can read the TLS private key (otherwise refused).");
    add("JupyterHub.redirect_http_port", "Int", "0",
        "hubd: also listen for plain HTTP on this port (same address as bind_url) and redirect every "
        "request to https; 0 means no such listener.");
    add("JupyterHub.internal_ssl", "Bool", "False",
        "Mutually authenticated TLS between hubd and single-user servers: the hub API (hub_bind_url) "
        "becomes https, each server gets its own certificate and accepts only hubd as a client.");
    add("JupyterHub.internal_certs_location", "Unicode", "'internal-ssl'",
        "Directory (mode 700, relative to the working directory unless absolute) of the two internal CAs "
        "internal_ssl creates on first start and reuses.");
    add("JupyterHub.trusted_alt_names", "List", "[]",
        "Extra subject alternative names ('DNS:name' or 'IP:address') in hubd's internal certificate, e.g. "
        "the host of hub_connect_url.");
    add("JupyterHub.subdomain_host", "Unicode", "''",
        "Serve each user's server on <user>.<host> ('https://hub.example.org[:port]'); needs wildcard DNS "
        "and, with TLS, a wildcard certificate (docs/config.md).");
    add("JupyterHub.audit_log", "Unicode", "'syslog'",
        "hubd: where the audit log goes (logins, admin actions, spawns, stops, token creation and use): "
        "'syslog' (facility authpriv), an absolute file path (appended, mode 0600, reopened on SIGHUP), "
        "or 'off'.");
    add("JupyterHub.throttle_logins", "Bool", "True",
        "hubd: slow down repeated failed logins per source address and per username (429 with "
        "Retry-After); see docs/security-model.md.");
    add("JupyterHub.trusted_downstream_ips", "List", "[]",
        "Reverse proxies in front of hubd whose X-Forwarded-For/-Proto/-Host headers are believed: IP "
        "addresses or CIDR networks, e.g. ['127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'].");
    later("JupyterHub.trust_user_provided_tokens", "Bool", "False",
          "Hash user-provided tokens as cheaply as generated ones.");
    later("JupyterHub.allow_named_servers", "Bool", "False", "Allow each user to run several named servers.");
    later("JupyterHub.named_server_limit_per_user", "Int", "0",
          "Maximum named servers per user (0: no limit).");
    later("JupyterHub.redirect_to_server", "Bool", "True", "Redirect users to their server after login.");
    later("JupyterHub.default_url", "Unicode", "''",
          "Where to send users after login instead of their server.");
    later("JupyterHub.active_server_limit", "Int", "0", "Maximum running single-user servers (0: no limit).");
    later("JupyterHub.concurrent_spawn_limit", "Int", "100",
          "Maximum servers starting at once (0: no limit).");
    later("JupyterHub.template_paths", "List", "[]", "Directories searched first for page templates.");
    later("JupyterHub.template_vars", "Dict", "{}", "Extra variables for page templates.");
    later("JupyterHub.logo_file", "Unicode", "''", "Path to the logo shown on hub pages.");
    later("JupyterHub.load_groups", "Dict", "{}", "Groups to create: {group: [usernames]}.");
    later("JupyterHub.custom_scopes", "Dict", "{}", "Custom scopes for services to check.");
    add("JupyterHub.authenticate_prometheus", "Bool", "True",
        "Serve /hub/metrics only to a token or login with the read:metrics scope; False lets anyone read "
        "it (docs/api-compatibility.md, Metrics).");
    later("JupyterHub.last_activity_interval", "Int", "300", "Seconds between last-activity updates.");
    later("JupyterHub.upgrade_db", "Bool", "False", "Upgrade the database schema automatically at start.");
    later("JupyterHub.reset_db", "Bool", "False", "Purge and reset the database at start.");
    later("JupyterHub.pid_file", "Unicode", "''", "File to write the hub's process id to.");
    later("JupyterHub.init_spawners_timeout", "Int", "10",
          "Seconds to wait for servers to be checked at start.");
    later("JupyterHub.implicit_spawn_seconds", "Float", "0",
          "Seconds before a visit to /user/ starts a server.");
    later("JupyterHub.service_check_interval", "Int", "60", "Seconds between service health checks.");
    notNeeded("JupyterHub.proxy_auth_token", "Unicode", "''", "Token shared by the hub and the proxy.",
              std::string(kNoProxy));
    notNeeded("JupyterHub.proxy_class", "Any", "'jupyterhub.proxy.ConfigurableHTTPProxy'",
              "The proxy implementation.", std::string(kNoProxy));
    notNeeded("JupyterHub.cleanup_proxy", "Bool", "True", "Stop the proxy when the hub stops.",
              "hubd starts no proxy process");
    notNeeded(
        "JupyterHub.cleanup_servers", "Bool", "True", "Stop single-user servers when the hub stops.",
        "single-user servers belong to sudospawner, not to the hub process, and hubd reconnects to them "
        "after a restart");
    notNeeded("JupyterHub.confirm_no_ssl", "Bool", "False",
              "Confirm running without TLS (removed in JupyterHub 0.7).",
              "hubd never asks for this confirmation");
    notNeeded("JupyterHub.tornado_settings", "Dict", "{}", "Settings passed to tornado.",
              "hubd is not built on tornado");
    notNeeded("JupyterHub.db_kwargs", "Dict", "{}", "Keyword arguments for SQLAlchemy's create_engine.",
              "hubd does not use SQLAlchemy");
    notNeeded("JupyterHub.debug_db", "Bool", "False", "Log all SQLAlchemy database calls.",
              "hubd does not use SQLAlchemy; use log_level = 'DEBUG'");
    notNeeded("JupyterHub.data_files_path", "Unicode", "''",
              "Location of JupyterHub's templates and static files.",
              "hubd ships its own templates and static files");

    // Authenticator and subclasses
    add("Authenticator.admin_users", "Set", "set()", "Users with admin rights.");
    add("Authenticator.allowed_users", "Set", "set()",
        "Users allowed to log in (empty: anyone who authenticates).");
    add("Authenticator.blocked_users", "Set", "set()", "Users never allowed to log in.");
    add("Authenticator.username_pattern", "Unicode", "''",
        "ECMAScript regular expression usernames must match.");
    add("Authenticator.username_map", "Dict", "{}", "Map of authenticated names to local usernames.");
    later("Authenticator.enable_auth_state", "Bool", "False", "Persist authentication state, encrypted.");
    later("Authenticator.auto_login", "Bool", "False",
          "Skip the login page and go straight to the login handler.");
    later("Authenticator.refresh_pre_spawn", "Bool", "False",
          "Refresh authentication before starting a server.");
    later("Authenticator.auth_refresh_age", "Int", "300", "Seconds after which authentication is refreshed.");
    later("Authenticator.delete_invalid_users", "Bool", "False",
          "Delete users that no longer pass validation.");
    later("Authenticator.manage_groups", "Bool", "False", "Let the authenticator manage group membership.");
    notNeeded("Authenticator.post_auth_hook", "Any", "None", "Python callable run after authentication.",
              "it is Python code, which hubd configuration cannot contain");
    add("LocalAuthenticator.allowed_groups", "Set", "set()", "Unix groups whose members may log in.");
    add("LocalAuthenticator.admin_groups", "Set", "set()", "Unix groups whose members are admins.");
    add("LocalAuthenticator.create_system_users", "Bool", "False",
        "Must stay False: an unprivileged hub cannot create Unix accounts.");
    notNeeded("LocalAuthenticator.add_user_cmd", "List", "[]", "Command used to create Unix accounts.",
              "hubd never creates Unix accounts");
    notNeeded("LocalAuthenticator.uids", "Dict", "{}", "UIDs for created Unix accounts.",
              "hubd never creates Unix accounts");
    add("PAMAuthenticator.service", "Unicode", "'login'", "The PAM service used to authenticate.");
    add("PAMAuthenticator.open_sessions", "Bool", "False", "Open a PAM session when a server starts.");
    add("PAMAuthenticator.check_account", "Bool", "True", "Check the PAM account (expiry, access) at login.");
    add("PAMAuthenticator.encoding", "Unicode", "'utf8'",
        "Encoding of usernames and passwords passed to PAM.");
    add("PAMAuthenticator.conversation_timeout", "Int", "120",
        "hubd: seconds a sign-in waits for the answer to a further PAM prompt (a one-time code) before "
        "PAM is told the user went away; see docs/security-model.md.");
    later("PAMAuthenticator.pam_normalize_username", "Bool", "False",
          "Normalise usernames through PAM and the user database.");
    notNeeded("PAMAuthenticator.executor_threads", "Int", "4", "Threads for blocking PAM calls.",
              "hubd sizes its own PAM worker pool");
    add("DummyAuthenticator.password", "Unicode", "''",
        "If set, the password every user must give (testing only).");
    // OAuthenticator (hubd/app/oidc.h): OAuthenticator 16's names
    add("OAuthenticator.client_id", "Unicode", "''",
        "The client id registered with the provider ($OAUTH_CLIENT_ID when unset).");
    add("OAuthenticator.client_secret", "Unicode", "''",
        "The client secret ($OAUTH_CLIENT_SECRET when unset); never logged, refused on the command line.");
    add("OAuthenticator.oauth_callback_url", "Unicode", "''",
        "This hub's callback URL as registered, e.g. https://hub.example.org/hub/oauth_callback "
        "($OAUTH_CALLBACK_URL when unset).");
    add("OAuthenticator.authorize_url", "Unicode", "''",
        "The provider's authorization endpoint (https); '' = from oidc_issuer's discovery.");
    add("OAuthenticator.token_url", "Unicode", "''",
        "The provider's token endpoint (https); '' = from oidc_issuer's discovery.");
    add("OAuthenticator.userdata_url", "Unicode", "''",
        "The provider's userinfo endpoint; '' = the ID token's claims (with oidc_issuer).");
    add("OAuthenticator.scope", "List", "[]",
        "Scopes to request; 'openid' is added when oidc_issuer is set.");
    add("OAuthenticator.username_claim", "Unicode", "'username'",
        "The claim that names the user (e.g. 'preferred_username', 'email'); mapped to a local Unix "
        "account.");
    add("OAuthenticator.login_service", "Unicode", "'OAuth 2.0'",
        "The provider's name on the sign-in button: \"Sign in with {login_service}\".");
    add("OAuthenticator.basic_auth", "Bool", "True",
        "Send client_id and client_secret to the token endpoint with HTTP Basic (False: in the form body).");
    add("OAuthenticator.ca_file", "Unicode", "''",
        "hubd: PEM file of CAs trusted for the provider's https endpoints instead of the system store.");
    add("OAuthenticator.min_uid", "Int", "1000",
        "hubd: the lowest uid a provider's user may map to; lower uids are system accounts and refused.");
    add("OAuthenticator.oidc_issuer", "Unicode", "''",
        "hubd: the OpenID Connect issuer URL; endpoints and keys come from its discovery document and "
        "ID tokens are checked (signature, iss, aud, exp, nonce). With the google and azuread presets it "
        "replaces their issuer (Azure national clouds); their hd/tid checks still apply.");
    add("GenericOAuthenticator.username_key", "Unicode", "'username'",
        "The name OAuthenticator before 16 used for username_claim.");
    add("GenericOAuthenticator.claim_groups_key", "Unicode", "'groups'",
        "The claim that lists the user's groups (for allowed_groups and admin_groups).");
    add("GenericOAuthenticator.allowed_groups", "Set", "set()",
        "Groups (from claim_groups_key) whose members may log in.");
    add("GenericOAuthenticator.admin_groups", "Set", "set()",
        "Groups (from claim_groups_key) whose members are admins.");
    // The presets (oauthenticator.google / .azuread): the generic client with their endpoints.
    add("GoogleOAuthenticator.hosted_domain", "List", "[]",
        "Google Workspace domains whose accounts may sign in, checked against the ID token's hd claim "
        "(never the email's domain); with one domain, 'user@domain' signs in as 'user'.");
    // Not implemented: a non-empty value refuses start-up (config.cpp, unimplementedAllowList).
    add("GoogleOAuthenticator.allowed_google_groups", "Dict", "{}",
        "Google groups whose members may sign in, per hosted domain (not implemented: refuses start-up).");
    add("GoogleOAuthenticator.admin_google_groups", "Dict", "{}",
        "Google groups whose members are admins, per hosted domain (not implemented: refuses start-up).");
    add("GoogleOAuthenticator.google_group_whitelist", "Dict", "{}",
        "The old name of allowed_google_groups (not implemented: refuses start-up).");
    add("AzureAdOAuthenticator.tenant_id", "Unicode", "''",
        "The directory's tenant id, a GUID ($AAD_TENANT_ID when unset); the issuer is "
        "login.microsoftonline.com/{tenant_id}/v2.0 and the ID token's tid must equal it.");
    // GitHub and GitLab (oauthenticator.github / .gitlab): plain OAuth 2.0, membership
    // asked of the REST API at sign-in (hubd/app/git_membership.h).
    add("GitHubOAuthenticator.github_url", "Unicode", "'https://github.com'",
        "The GitHub server ($GITHUB_URL or $GITHUB_HOST when unset); its REST API is api.github.com for "
        "github.com, else {github_url}/api/v3.");
    add("GitHubOAuthenticator.allowed_organizations", "Set", "set()",
        "Organizations ('org') and teams ('org:team') whose members may sign in; each is asked of GitHub's "
        "API at sign-in (read:org is added to scope).");
    add("GitHubOAuthenticator.populate_teams_in_auth_state", "Bool", "False",
        "Put the user's teams in auth_state (not supported: hubd keeps no auth_state; True refuses "
        "start-up).");
    add("GitHubOAuthenticator.github_organization_whitelist", "Set", "set()",
        "The old name of allowed_organizations (refused: rename it).");
    add("GitLabOAuthenticator.gitlab_url", "Unicode", "'https://gitlab.com'",
        "The GitLab server ($GITLAB_URL or $GITLAB_HOST when unset); its REST API is {gitlab_url}/api/v4.");
    add("GitLabOAuthenticator.allowed_gitlab_groups", "Set", "set()",
        "Groups (full paths, 'group/subgroup') whose members, inherited ones too, may sign in; each is asked "
        "of GitLab's API at sign-in (read_api is added to scope).");
    add("GitLabOAuthenticator.allowed_project_ids", "Set", "set()",
        "Projects (numeric ids) whose members with Developer access or higher may sign in.");
    add("GitLabOAuthenticator.gitlab_group_whitelist", "Set", "set()",
        "The old name of allowed_gitlab_groups (refused: rename it).");
    add("GitLabOAuthenticator.gitlab_project_id_whitelist", "Set", "set()",
        "The old name of allowed_project_ids (refused: rename it).");

    // LDAPAuthenticator (src/ldap_authenticator.cpp): ldapauthenticator's names
    add("LDAPAuthenticator.server_address", "Unicode", "''", "Host name or IP address of the LDAP server.");
    add("LDAPAuthenticator.server_port", "Int", "389",
        "Port of the LDAP server; the default is 636 with tls_strategy 'on_connect', else 389.");
    add("LDAPAuthenticator.use_ssl", "Bool", "False",
        "ldapauthenticator 1.3's switch: True means tls_strategy = 'on_connect' (ldaps://).");
    add("LDAPAuthenticator.tls_strategy", "Unicode", "'before_bind'",
        "'before_bind' (StartTLS before any password is sent), 'on_connect' (ldaps://) or 'insecure' "
        "(clear text); certificates are always verified against the system CAs or tls_kwargs.");
    add("LDAPAuthenticator.tls_kwargs", "Dict", "{}",
        "hubd understands {'ca_certs_file': '/path/ca.pem'}: the CAs trusted for the LDAP server instead of "
        "the system store; other ldap3 Tls keys are refused at start.");
    add("LDAPAuthenticator.bind_dn_template", "Union", "[]",
        "DN template(s) to bind as, e.g. 'uid={username},ou=people,dc=example,dc=org'; {username} is "
        "DN-escaped (RFC 4514); tried in order.");
    add("LDAPAuthenticator.lookup_dn", "Bool", "False",
        "Search the user's DN (user_search_base, user_attribute) before binding.");
    add("LDAPAuthenticator.lookup_dn_search_filter", "Unicode", "'({login_attr}={login})'",
        "Filter for lookup_dn; {login} is filter-escaped (RFC 4515), {login_attr} is user_attribute.");
    add("LDAPAuthenticator.lookup_dn_search_user", "Union", "None",
        "DN to bind as for lookup_dn searches; unset means an anonymous search.");
    add("LDAPAuthenticator.lookup_dn_search_password", "Union", "None",
        "Password of lookup_dn_search_user (not accepted on the command line).");
    add("LDAPAuthenticator.user_search_base", "Union", "None",
        "Search base for lookup_dn, e.g. 'ou=people,dc=example,dc=org'.");
    add("LDAPAuthenticator.user_attribute", "Union", "None",
        "Attribute holding the login name for lookup_dn: 'uid' (OpenLDAP) or 'sAMAccountName' (AD).");
    add("LDAPAuthenticator.lookup_dn_user_dn_attribute", "Union", "None",
        "Attribute of the found entry put into bind_dn_template's {username} (and the hub name with "
        "use_lookup_dn_username).");
    add("LDAPAuthenticator.allowed_groups", "Union", "None",
        "Group DNs; if set, only users group_search_filter finds in one of them can log in; None or [] "
        "means no group restriction.");
    add("LDAPAuthenticator.group_search_filter", "Unicode",
        "'(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))'",
        "Filter a group entry of allowed_groups must match; {userdn} (the bound DN) and {uid} (the name) "
        "are filter-escaped (RFC 4515).");
    add("LDAPAuthenticator.group_attributes", "List", "['member', 'uniqueMember', 'memberUid']",
        "Attributes fetched with each allowed_groups search; must not be empty when allowed_groups is set.");
    add("LDAPAuthenticator.search_filter", "Unicode", "''",
        "After the bind, exactly one entry under user_search_base must match this filter, e.g. "
        "'(&(objectClass=person)({userattr}={username}))'; {username} is filter-escaped (RFC 4515), "
        "{userattr} is user_attribute; no entry or several refuse the login.");
    add("LDAPAuthenticator.attributes", "List", "[]", "Attributes fetched with search_filter.");
    add("LDAPAuthenticator.valid_username_regex", "Unicode", "'^[a-z][.a-z0-9_-]*$'",
        "Login names that do not match are refused before anything is sent to the LDAP server.");
    add("LDAPAuthenticator.use_lookup_dn_username", "Bool", "True",
        "With lookup_dn, use the lookup_dn_user_dn_attribute value as the hub username (1.3's default).");
    add("LDAPAuthenticator.timeout", "Int", "5",
        "hubd: seconds to wait for the LDAP server to accept a connection and to answer each operation.");
    notNeeded(
        "LDAPAuthenticator.escape_userdn", "Bool", "False", "Escape the user DN.",
        "hubd always escapes the username in DNs and filters (RFC 4514/4515), as ldapauthenticator 2.0");
    notNeeded("LDAPAuthenticator.auth_state_attributes", "List", "[]",
              "User attributes to keep in auth_state.", "hubd keeps no auth_state");

    // Spawner and subclasses
    add("Spawner.cmd", "Command", "['jupyterhub-singleuser']",
        "The command that starts a single-user server.");
    add("Spawner.args", "List", "[]", "Extra arguments for the single-user server.");
    add("Spawner.environment", "Dict", "{}", "Extra environment variables for the single-user server.");
    add("Spawner.start_timeout", "Int", "60", "Seconds a server may take to start.");
    add("Spawner.http_timeout", "Int", "30", "Seconds a started server may take to answer HTTP.");
    add("Spawner.notebook_dir", "Unicode", "''",
        "The server's notebook directory (~ and {username} expand).");
    add("Spawner.default_url", "Unicode", "''", "The URL the single-user server opens first.");
    add("Spawner.disable_user_config", "Bool", "False", "Ignore the user's own Jupyter configuration files.");
    add("Spawner.debug", "Bool", "False", "Start single-user servers with debug logging.");
    later("Spawner.env_keep", "List",
          "['PATH', 'PYTHONPATH', 'CONDA_ROOT', 'CONDA_DEFAULT_ENV', 'VIRTUAL_ENV', 'LANG', 'LC_ALL', "
          "'JUPYTERHUB_SINGLEUSER_APP']",
          "Environment variables passed from the hub to servers.");
    notNeeded("Spawner.mem_limit", "Any", "None", "Memory limit for each server.",
              "the helper's root-owned policy sets it (memory_max, limit data in sudospawner.conf), so a "
              "compromised hub cannot raise it");
    notNeeded("Spawner.cpu_limit", "Any", "None", "CPU limit for each server.",
              "the helper's root-owned policy sets it (limit cpu in sudospawner.conf)");
    later("Spawner.mem_guarantee", "Any", "None", "Memory guarantee for each server.");
    later("Spawner.cpu_guarantee", "Any", "None", "CPU guarantee for each server.");
    later("Spawner.poll_interval", "Int", "30", "Seconds between checks that servers are alive.");
    later("Spawner.ip", "Unicode", "'127.0.0.1'", "The IP address single-user servers listen on.");
    later("Spawner.port", "Int", "0", "The port single-user servers listen on (0: random).");
    later("Spawner.consecutive_failure_limit", "Int", "0",
          "Stop the hub after this many failed starts (0: never).");
    add("Spawner.ssl_alt_names", "List", "[]",
        "Extra subject alternative names ('DNS:name' or 'IP:address') in each server's internal_ssl "
        "certificate.");
    notNeeded("Spawner.options_form", "Any", "''", "HTML form for spawn options.",
              "hubd offers no spawn options");
    notNeeded("Spawner.pre_spawn_hook", "Any", "None", "Python callable run before a server starts.",
              "it is Python code, which hubd configuration cannot contain");
    notNeeded("Spawner.auth_state_hook", "Any", "None", "Python callable given the auth state.",
              "it is Python code, which hubd configuration cannot contain");
    later("LocalProcessSpawner.interrupt_timeout", "Int", "10", "Seconds to wait after SIGINT.");
    later("LocalProcessSpawner.term_timeout", "Int", "5", "Seconds to wait after SIGTERM.");
    later("LocalProcessSpawner.kill_timeout", "Int", "5", "Seconds to wait after SIGKILL.");
    notNeeded("LocalProcessSpawner.popen_kwargs", "Dict", "{}", "Keyword arguments for subprocess.Popen.",
              "hubd starts servers through sudospawner, not subprocess.Popen");
    notNeeded("LocalProcessSpawner.shell_cmd", "Command", "[]", "Shell that wraps the server command.",
              "hubd never runs servers through a shell, which could read user-writable startup files");
    add("SudoSpawner.sudospawner_path", "Unicode", "'" + std::string(kSudospawnerPath) + "'",
        "Absolute path of the sudospawner helper, exactly as the sudoers rule names it.");
    add("SudoSpawner.profile", "Unicode", "'default'",
        "Which profile of the root-owned sudospawner policy starts servers (what runs is the policy's "
        "choice).");
    notNeeded("SudoSpawner.sudo_args", "List", "['-nH']", "Extra arguments for sudo.",
              "hubd always runs sudo -nH so that the sudoers rule stays minimal");
    notNeeded("SudoSpawner.mediator_log_level", "Unicode", "'INFO'", "Log level of the Python mediator.",
              "hubd's sudospawner helper is not the Python mediator and logs at a fixed level");
    notNeeded("SudoSpawner.debug_mediator", "Bool", "False",
              "Debug logging for the mediator (removed in sudospawner 1.0).",
              "hubd's sudospawner helper is not the Python mediator and logs at a fixed level");

    // hubd: the built-in idle culler (hubd/app/idle_culler.h, docs/config.md "Idle culling")
    add("IdleCuller.timeout", "Int", "0",
        "hubd: stop servers that saw no activity (proxied traffic or the server's own activity reports) "
        "for this many seconds; 0 turns idle culling off.");
    add("IdleCuller.max_age", "Int", "0",
        "hubd: stop servers this many seconds after they started, even if active; 0 means no limit.");
    add("IdleCuller.cull_every", "Int", "0",
        "hubd: seconds between culling passes; 0 means a tenth of the shortest timeout, between 1 and 60.");
    add("IdleCuller.cull_users", "Bool", "False",
        "hubd: also remove users without a running server who were inactive for the timeout, but only "
        "those a new login would bring back as they were (allowed, and admin again if admin).");
    add("IdleCuller.cull_admin_users", "Bool", "True",
        "hubd: whether cull_users may remove admin users (as jupyterhub-idle-culler's --cull-admin-users).");
    add("IdleCuller.group_timeouts", "Dict", "{}",
        "hubd: idle timeouts by hub group, {'group': seconds}; a member of several groups gets the longest, "
        "0 means never idle-culled; users in none of them get IdleCuller.timeout.");

    // Proxy
    for (const char* trait : {"api_token", "auth_token", "api_url", "pid_file"})
        notNeeded(std::string("ConfigurableHTTPProxy.") + trait, "Unicode", "''",
                  "Setting of the configurable-http-proxy process.", std::string(kNoProxy));
    notNeeded("ConfigurableHTTPProxy.command", "Command", "['configurable-http-proxy']",
              "Command that starts configurable-http-proxy.", std::string(kNoProxy));
    notNeeded("ConfigurableHTTPProxy.debug", "Bool", "False", "Debug logging for configurable-http-proxy.",
              std::string(kNoProxy));
    notNeeded("ConfigurableHTTPProxy.concurrency", "Int", "10", "Concurrent requests to the proxy API.",
              std::string(kNoProxy));
    notNeeded("Proxy.should_start", "Bool", "True", "Whether the hub starts the proxy.",
              std::string(kNoProxy));
    notNeeded("Proxy.extra_routes", "Dict", "{}", "Extra proxy routes.", std::string(kNoProxy));
    return c;
}

// Base classes of the JupyterHub classes hubd knows.
std::string_view parentOf(std::string_view cls) {
    static constexpr std::pair<std::string_view, std::string_view> parents[] = {
        {"JupyterHub", "Application"},
        {"PAMAuthenticator", "LocalAuthenticator"},
        {"LocalAuthenticator", "Authenticator"},
        {"DummyAuthenticator", "Authenticator"},
        {"SudoSpawner", "LocalProcessSpawner"},
        {"SimpleLocalProcessSpawner", "LocalProcessSpawner"},
        {"LocalProcessSpawner", "Spawner"},
        {"ConfigurableHTTPProxy", "Proxy"},
        {"GenericOAuthenticator", "OAuthenticator"},
        {"GoogleOAuthenticator", "OAuthenticator"},
        {"AzureAdOAuthenticator", "OAuthenticator"},
        {"GitHubOAuthenticator", "OAuthenticator"},
        {"GitLabOAuthenticator", "OAuthenticator"},
        {"OAuthenticator", "Authenticator"},
        {"LDAPAuthenticator", "Authenticator"},
    };
    for (const auto& [child, parent] : parents)
        if (child == cls) return parent;
    return {};
}

bool descendsFrom(std::string_view cls, std::string_view ancestor) {
    for (; !cls.empty(); cls = parentOf(cls))
        if (cls == ancestor) return true;
    return false;
}

}  // namespace

const std::vector<TraitInfo>& traitCatalogue() {
    static const std::vector<TraitInfo> catalogue = buildCatalogue();
    return catalogue;
}

std::vector<std::string> classLineage(std::string_view cls) {
    std::vector<std::string> out;
    for (; !cls.empty(); cls = parentOf(cls)) out.emplace_back(cls);
    return out;
}

const TraitInfo* findTrait(std::string_view cls, std::string_view trait) {
    const auto& all = traitCatalogue();
    auto split = [](const TraitInfo& t) {
        const std::string_view name = t.name;
        const std::size_t dot = name.find('.');
        return std::pair{name.substr(0, dot), name.substr(dot + 1)};
    };
    // Declared on cls or a base class: the nearest wins.
    for (std::string_view c = cls; !c.empty(); c = parentOf(c))
        for (const auto& t : all)
            if (split(t) == std::pair{c, trait}) return &t;
    // Declared on a subclass: traitlets applies c.Authenticator.admin_groups to PAMAuthenticator.
    for (const auto& t : all) {
        const auto [owner, name] = split(t);
        if (name == trait && descendsFrom(owner, cls)) return &t;
    }
    return nullptr;
}

}  // namespace hub
