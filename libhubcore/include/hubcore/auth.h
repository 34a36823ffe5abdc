// SPDX-License-Identifier: BSD-3-Clause
// Authenticators and the allow/block/admin policy (JupyterHub semantics).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hubcore/config.h"

namespace hub {

// One message of a login conversation (a PAM pam_message), already made
// safe: printable UTF-8 (controls escaped), at most kMaxLoginMessage bytes.
// Still untrusted text: HTML-escape it before showing it.
struct LoginMessage {
    enum class Kind {
        Prompt,        // PAM_PROMPT_ECHO_ON: the answer may be shown as typed
        SecretPrompt,  // PAM_PROMPT_ECHO_OFF: a password or one-time code
        Info,          // PAM_TEXT_INFO
        Error,         // PAM_ERROR_MSG
    };
    Kind kind = Kind::Info;
    std::string text;
    bool isPrompt() const { return kind == Kind::Prompt || kind == Kind::SecretPrompt; }
};
inline constexpr size_t kMaxLoginMessage = 200;
inline constexpr size_t kMaxLoginMessagesPerStep = 8;  // further messages are logged, not shown
inline constexpr size_t kMaxLoginPromptsPerStep = 8;   // more prompts in one call fail the login
inline constexpr size_t kMaxLoginAnswer = 511;         // PAM_MAX_RESP_SIZE - 1

struct AuthResult {
    bool ok = false;
    std::string username;               // normalised
    std::optional<bool> admin;          // set when admin_groups decided it
    std::string failureReason;          // for the log only; never shown to the user
    std::vector<std::string> groups;    // Unix groups of the user (for allowed/admin groups)
    std::vector<std::string> logNotes;  // PAM messages and warnings, already log-safe; never the password
    // Info and error messages PAM sent after the last prompt the user saw
    // (pam_faillock's "The account is locked ..."): shown with the outcome.
    std::vector<LoginMessage> messages;
};

// The rest of a sign-in after the form's username and password: the
// questions PAM asks beyond the first password prompt (a one-time code)
// and the messages it sends. hubd implements it (app/login_conversation.h).
// ask() runs on the authenticating thread and blocks until the user answers.
class LoginDialog {
public:
    virtual ~LoginDialog() = default;
    // `messages` holds at least one prompt, in PAM's order, after any
    // messages not yet shown. One answer per prompt, or nullopt to abort
    // (the user went away): PAM then fails with PAM_CONV_ERR.
    virtual std::optional<std::vector<std::string>> ask(const std::vector<LoginMessage>& messages) = 0;
};

// authenticate() may block (PAM): hubd calls it off the event loop.
// Implementations must be thread-safe.
class Authenticator {
public:
    virtual ~Authenticator() = default;
    virtual std::string className() const = 0;  // "jupyterhub.auth.PAMAuthenticator"
    // Non-interactive, as JupyterHub does it: every password prompt gets
    // `password` (the token API's {"auth": ...} uses this).
    virtual AuthResult authenticate(const std::string& username, const std::string& password) = 0;
    // Interactive (the login page): the first password prompt gets
    // `password`, every further prompt goes to `dialog`. Authenticators
    // without a conversation ignore the dialog.
    virtual AuthResult authenticateInteractive(const std::string& username, const std::string& password,
                                               LoginDialog& dialog) {
        (void)dialog;
        return authenticate(username, password);
    }
};

std::unique_ptr<Authenticator> makeDummyAuthenticator(const Settings& settings);
std::unique_ptr<Authenticator> makePamAuthenticator(const Settings& settings);
std::unique_ptr<Authenticator> makeLdapAuthenticator(const Settings& settings);  // ldap_authenticator.cpp
std::unique_ptr<Authenticator> makeAuthenticator(const Settings& settings);

// The allow policy, applied after a successful authentication:
// blocked wins; admins are allowed; if allowed_users and allowed_groups are
// both empty, every authenticated user is allowed; otherwise the name must be
// in allowed_users or one of the user's groups in allowed_groups.
// `knownUsers`: names already in the database are allowed too (JupyterHub 3.0
// adds allowed users to the DB and keeps DB users allowed).
struct AccessDecision {
    bool allowed = false;
    bool admin = false;
    std::string reason;  // for the log
};
AccessDecision decideAccess(const Settings& settings, const std::string& username,
                            const std::vector<std::string>& groups, bool inDatabase, bool adminInDatabase,
                            std::optional<bool> adminFromAuth);

// The login-name steps every authenticator shares (JupyterHub's
// normalize_username + validate_username): trim and lowercase, then
// validateUsername and Authenticator.username_pattern. nullopt with `reason`
// set when refused; the reason never repeats the name, which may be hostile.
std::optional<std::string> normalizeLoginName(const Settings& settings, std::string_view raw,
                                              std::string& reason);
// Authenticator.username_map, applied after authentication (normalised keys).
std::string mapUsername(const Settings& settings, const std::string& name);
// Sets result.username to the mapped name; false (with failureReason) if the
// mapping produced an invalid name. The last step of every authenticator.
bool applyUsernameMap(const Settings& settings, const std::string& name, AuthResult& result);

// Unix groups of a user (getgrouplist + getgrnam_r); empty if unknown.
std::vector<std::string> unixGroupsOf(const std::string& username);

}  // namespace hub
