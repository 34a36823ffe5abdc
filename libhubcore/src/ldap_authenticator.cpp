// SPDX-License-Identifier: BSD-3-Clause
// LDAPAuthenticator: ldapauthenticator's bind / search-then-bind login with
// OpenLDAP's client library. Runs on the login worker threads (blocking);
// every network step is bounded by LDAPAuthenticator.timeout.
#include <ldap.h>

#include <chrono>
#include <memory>
#include <regex>
#include <vector>

#include <fmt/format.h>

#include "hubcore/auth.h"
#include "hubcore/ldap_escape.h"
#include "hubcore/log.h"
#include "hubcore/username.h"

namespace hub {

namespace {

using Clock = std::chrono::steady_clock;

struct MessageFree {
    void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using Message = std::unique_ptr<LDAPMessage, MessageFree>;

std::string serverUri(const LdapSettings& s) {
    const bool ldaps = s.tlsStrategy == "on_connect";
    const int port = s.serverPort != 0 ? s.serverPort : (ldaps ? 636 : 389);
    const bool v6 = s.serverAddress.find(':') != std::string::npos;
    return fmt::format("{}://{}{}{}:{}", ldaps ? "ldaps" : "ldap", v6 ? "[" : "", s.serverAddress,
                       v6 ? "]" : "", port);
}

// One LDAP connection for one login, unbound on every path.
class Connection {
public:
    Connection(const LdapSettings& s, std::string uri) : s_(s), uri_(std::move(uri)) {}
    ~Connection() {
        if (ld_) ldap_unbind_ext_s(ld_, nullptr, nullptr);
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // Sets the options and, for before_bind, runs StartTLS (which connects).
    bool open(std::string& error) {
        if (int rc = ldap_initialize(&ld_, uri_.c_str()); rc != LDAP_SUCCESS) {
            error = fmt::format("LDAP server URI {} is not usable: {}", uri_, ldap_err2string(rc));
            return false;
        }
        const int version = LDAP_VERSION3;
        ldap_set_option(ld_, LDAP_OPT_PROTOCOL_VERSION, &version);
        ldap_set_option(ld_, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);  // never send the password elsewhere
        timeval tv{s_.timeout, 0};
        ldap_set_option(ld_, LDAP_OPT_NETWORK_TIMEOUT, &tv);  // connect (and the TLS handshake)
        ldap_set_option(ld_, LDAP_OPT_TIMEOUT, &tv);          // each synchronous operation
        if (s_.tlsStrategy != "insecure") {
            // Per connection, overriding ldap.conf's TLS_REQCERT: a
            // certificate that does not verify against the CAs, or does not
            // name server_address, ends the connection.
            const int demand = LDAP_OPT_X_TLS_DEMAND;
            ldap_set_option(ld_, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
            if (!s_.caCertsFile.empty())
                ldap_set_option(ld_, LDAP_OPT_X_TLS_CACERTFILE, s_.caCertsFile.c_str());
            const int client = 0;
            if (int rc = ldap_set_option(ld_, LDAP_OPT_X_TLS_NEWCTX, &client); rc != LDAP_OPT_SUCCESS) {
                error = fmt::format("LDAP TLS setup for {} failed{}: check tls_kwargs['ca_certs_file']", uri_,
                                    diagnostic());
                return false;
            }
        }
        if (s_.tlsStrategy == "before_bind") {
            const auto started = Clock::now();
            if (int rc = ldap_start_tls_s(ld_, nullptr, nullptr); rc != LDAP_SUCCESS) {
                error = failure("StartTLS", rc, started);
                return false;
            }
        }
        return true;
    }

    // A simple bind. The password goes as a length-counted value, so a NUL
    // in it cannot shorten it. Callers refuse blank passwords beforehand.
    int bind(const std::string& dn, const std::string& password, Clock::time_point& started) {
        berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
        started = Clock::now();
        return ldap_sasl_bind_s(ld_, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
    }

    int search(const std::string& base, int scope, const std::string& filter,
               std::vector<std::string> attributes, int sizeLimit, Message& out, Clock::time_point& started) {
        if (attributes.empty()) attributes = {"1.1"};  // 1.1: no attributes
        std::vector<char*> attrs;
        for (auto& a : attributes) attrs.push_back(a.data());
        attrs.push_back(nullptr);
        timeval tv{s_.timeout, 0};
        LDAPMessage* res = nullptr;
        started = Clock::now();
        int rc = ldap_search_ext_s(ld_, base.c_str(), scope, filter.c_str(), attrs.data(), 0, nullptr,
                                   nullptr, &tv, sizeLimit, &res);
        out.reset(res);
        return rc;
    }

    LDAP* handle() const { return ld_; }

    // Negative codes are the client's own (no answer, connection lost):
    // the server, not the user, is the problem.
    static bool serverProblem(int rc) { return rc < 0 || rc == LDAP_UNAVAILABLE || rc == LDAP_BUSY; }

    std::string failure(std::string_view what, int rc, Clock::time_point started) const {
        const auto waited = Clock::now() - started;
        const bool slow = waited >= std::chrono::seconds(s_.timeout) - std::chrono::milliseconds(250);
        if (rc == LDAP_TIMEOUT || (rc == LDAP_SERVER_DOWN && slow))
            return fmt::format("LDAP server {} did not answer within {} s ({})", uri_, s_.timeout, what);
        // The causes come first: the hub's log line keeps the first 200
        // bytes of a failure reason.
        const bool tls = s_.tlsStrategy != "insecure" && (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR);
        if (tls)
            return fmt::format(
                "LDAP server {} cannot be reached or its certificate was refused (a private CA goes in "
                "tls_kwargs['ca_certs_file']); {}: {}{}",
                uri_, what, ldap_err2string(rc), diagnostic());
        if (rc == LDAP_SERVER_DOWN)
            return fmt::format("LDAP server {} cannot be reached ({}): {}{}", uri_, what, ldap_err2string(rc),
                               diagnostic());
        return fmt::format("LDAP {} at {} failed: {}{}", what, uri_, ldap_err2string(rc), diagnostic());
    }

private:
    std::string diagnostic() const {
        char* msg = nullptr;
        if (!ld_ || ldap_get_option(ld_, LDAP_OPT_DIAGNOSTIC_MESSAGE, &msg) != LDAP_OPT_SUCCESS || !msg)
            return {};
        std::string text = msg;
        ldap_memfree(msg);
        // libldap's TLS layer often leaves only this placeholder.
        if (text.empty() || text == "(unknown error code)") return {};
        return " (" + safe(text, 120) + ")";
    }

    const LdapSettings& s_;
    std::string uri_;
    LDAP* ld_ = nullptr;
};

class LdapAuthenticator final : public Authenticator {
public:
    explicit LdapAuthenticator(const Settings& settings)
        : settings_(settings),
          ldap_(settings_.ldap),
          uri_(serverUri(ldap_)),
          validName_(ldap_.validUsernameRegex, std::regex::ECMAScript) {
        // libldap reads ldap.conf and sets up its globals on first use: do
        // that here, once, before login threads call it concurrently.
        int version = 0;
        ldap_get_option(nullptr, LDAP_OPT_PROTOCOL_VERSION, &version);
    }

    std::string className() const override { return "ldapauthenticator.LDAPAuthenticator"; }

    AuthResult authenticate(const std::string& username, const std::string& password) override {
        AuthResult result;
        std::string& why = result.failureReason;
        // Nothing reaches the server before these three checks. The length
        // cap also keeps std::regex's recursion shallow.
        if (username.size() > 4 * kMaxUsernameLength) {
            why = "username rejected: too long";
            return result;
        }
        if (!std::regex_search(username, validName_, std::regex_constants::match_continuous)) {
            why = "username does not match LDAPAuthenticator.valid_username_regex";
            return result;
        }
        if (ldap::blankPassword(password)) {
            why = "blank password refused (an LDAP bind without a password is anonymous and would succeed)";
            return result;
        }

        Connection conn(ldap_, uri_);
        if (!conn.open(why)) return result;
        Clock::time_point started;

        std::string resolvedName = username;  // what {username} and memberUid get
        std::string resolvedDn;
        if (ldap_.lookupDn && !lookUp(conn, username, resolvedName, resolvedDn, why)) return result;

        std::vector<std::string> dns;
        if (ldap_.bindDnTemplate.empty()) {
            dns.push_back(resolvedDn);
        } else {
            for (const auto& t : ldap_.bindDnTemplate) {
                auto dn = ldap::userDn(t, resolvedName, why);
                if (!dn) return result;
                dns.push_back(std::move(*dn));
            }
        }
        std::string userDn;
        int lastRc = LDAP_INVALID_CREDENTIALS;
        for (const auto& dn : dns) {
            if (dn.empty()) continue;  // an empty DN with a password binds nobody in particular
            lastRc = conn.bind(dn, password, started);
            if (lastRc == LDAP_SUCCESS) {
                userDn = dn;
                break;
            }
            if (Connection::serverProblem(lastRc)) {
                why = conn.failure("bind", lastRc, started);
                return result;
            }
        }
        if (userDn.empty()) {
            why = fmt::format("LDAP bind refused for every DN tried ({}): wrong password or no such user",
                              ldap_err2string(lastRc));
            return result;
        }
        if (!ldap_.searchFilter.empty() && !matchesSearchFilter(conn, resolvedName, why)) return result;
        if (!ldap_.allowedGroups.empty() && !inAllowedGroup(conn, userDn, resolvedName, why)) {
            if (why.empty()) why = "not a member of any LDAPAuthenticator.allowed_groups";
            return result;
        }

        const std::string& name = ldap_.lookupDn && ldap_.useLookupDnUsername ? resolvedName : username;
        auto normalised = normalizeLoginName(settings_, name, why);
        if (!normalised) return result;
        if (!applyUsernameMap(settings_, *normalised, result)) return result;
        result.ok = true;
        return result;
    }

private:
    // lookup_dn: as lookup_dn_search_user (or anonymously), find exactly one
    // entry whose user_attribute is the login name.
    bool lookUp(Connection& conn, const std::string& login, std::string& name, std::string& dn,
                std::string& why) {
        Clock::time_point started;
        if (!ldap_.lookupDnSearchUser.empty()) {
            int rc = conn.bind(ldap_.lookupDnSearchUser, ldap_.lookupDnSearchPassword, started);
            if (rc != LDAP_SUCCESS) {
                why = Connection::serverProblem(rc)
                          ? conn.failure("bind", rc, started)
                          : fmt::format(
                                "LDAP bind as lookup_dn_search_user {} failed: {}: check "
                                "LDAPAuthenticator.lookup_dn_search_password",
                                safe(ldap_.lookupDnSearchUser, 100), ldap_err2string(rc));
                return false;
            }
        }
        auto filter = ldap::lookupFilter(ldap_.lookupDnSearchFilter, ldap_.userAttribute, login, why);
        if (!filter) return false;
        Message res;
        // A size limit of 2 is enough to tell "one" from "several".
        std::vector<std::string> attrs;
        if (!ldap_.lookupDnUserDnAttribute.empty()) attrs.push_back(ldap_.lookupDnUserDnAttribute);
        int rc = conn.search(ldap_.userSearchBase, LDAP_SCOPE_SUBTREE, *filter, attrs, 2, res, started);
        LDAP* ld = conn.handle();
        const int entries = res ? ldap_count_entries(ld, res.get()) : 0;
        if (rc == LDAP_SIZELIMIT_EXCEEDED || entries > 1) {
            why = fmt::format("lookup_dn found several entries with {} = the login name: refused",
                              ldap_.userAttribute);
            return false;
        }
        if (rc != LDAP_SUCCESS) {
            why = conn.failure("search for the user", rc, started);
            return false;
        }
        if (entries == 0) {
            why = fmt::format("lookup_dn found no entry with {} = the login name under {}",
                              ldap_.userAttribute, safe(ldap_.userSearchBase, 100));
            return false;
        }
        LDAPMessage* entry = ldap_first_entry(ld, res.get());
        char* found = entry ? ldap_get_dn(ld, entry) : nullptr;
        if (!found) {
            why = "lookup_dn: the server sent an entry without a DN";
            return false;
        }
        dn = found;
        ldap_memfree(found);
        if (ldap_.lookupDnUserDnAttribute.empty()) return true;  // {username} stays the login name
        berval** values = ldap_get_values_len(ld, entry, ldap_.lookupDnUserDnAttribute.c_str());
        const int count = values ? ldap_count_values_len(values) : 0;
        if (count == 1) name.assign(values[0]->bv_val, values[0]->bv_len);
        if (values) ldap_value_free_len(values);
        if (count != 1) {
            why = fmt::format("lookup_dn: the entry of the login name has {} values of {} (one is needed)",
                              count, ldap_.lookupDnUserDnAttribute);
            return false;
        }
        return true;
    }

    // search_filter, as the user just bound: exactly one entry under
    // user_search_base must match. Several are refused like none, as
    // ldapauthenticator does: the filter does not identify one user.
    bool matchesSearchFilter(Connection& conn, const std::string& name, std::string& why) {
        auto filter = ldap::userFilter(ldap_.searchFilter, ldap_.userAttribute, name, why);
        if (!filter) return false;
        Message res;
        Clock::time_point started;
        int rc =
            conn.search(ldap_.userSearchBase, LDAP_SCOPE_SUBTREE, *filter, ldap_.attributes, 2, res, started);
        const int entries = res ? ldap_count_entries(conn.handle(), res.get()) : 0;
        if (rc == LDAP_SIZELIMIT_EXCEEDED || entries > 1) {
            why =
                "LDAPAuthenticator.search_filter found several entries for the user: a unique match is "
                "required";
            return false;
        }
        if (rc != LDAP_SUCCESS) {
            why = conn.failure("search_filter search", rc, started);
            return false;
        }
        if (entries == 0) {
            why = fmt::format("LDAPAuthenticator.search_filter found no entry for the user under {}",
                              safe(ldap_.userSearchBase, 100));
            return false;
        }
        return true;
    }

    // ldapauthenticator's test, as the user just bound: does the group entry
    // match group_search_filter (by default: name the user's DN in
    // member/uniqueMember, or the name in memberUid)?
    bool inAllowedGroup(Connection& conn, const std::string& userDn, const std::string& uid,
                        std::string& why) {
        auto filter = ldap::groupFilter(ldap_.groupSearchFilter, userDn, uid, why);
        if (!filter) return false;
        for (const auto& group : ldap_.allowedGroups) {
            Message res;
            Clock::time_point started;
            int rc = conn.search(group, LDAP_SCOPE_BASE, *filter, ldap_.groupAttributes, 1, res, started);
            if (rc == LDAP_SUCCESS && res && ldap_count_entries(conn.handle(), res.get()) > 0) return true;
            if (rc == LDAP_NO_SUCH_OBJECT) {
                logWarning("LDAPAuthenticator.allowed_groups names {}, which does not exist on {}",
                           safe(group, 100), uri_);
            } else if (Connection::serverProblem(rc)) {
                why = conn.failure("group search", rc, started);
                return false;
            }
        }
        return false;
    }

    Settings settings_;
    const LdapSettings& ldap_;
    std::string uri_;
    std::regex validName_;
};

}  // namespace

std::unique_ptr<Authenticator> makeLdapAuthenticator(const Settings& settings) {
    return std::make_unique<LdapAuthenticator>(settings);
}

}  // namespace hub
