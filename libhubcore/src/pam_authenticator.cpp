// SPDX-License-Identifier: BSD-3-Clause
// PAMAuthenticator: password check (and optionally account and session checks) through Linux-PAM.
//
// hubd runs unprivileged, so pam_unix can only read password hashes because
// the hub user is in the `shadow` group (seeds/001). PAM sessions are off by
// default (PAMAuthenticator.open_sessions = False since JupyterHub 2.2):
// most session modules (pam_loginuid, pam_limits) need root and fail here.
//
// The conversation: non-interactive calls answer every password prompt with
// the password, as JupyterHub does (#1469). Interactive ones (the login page)
// answer only the first password prompt from the form and relay every
// further prompt, and the info and error messages, to a LoginDialog, so a
// second factor (pam_oath) or pam_faillock's "account is locked" reach the
// user. Every message is bounded and made printable here.
#include <fmt/format.h>
#include <security/pam_appl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "hubcore/auth.h"
#include "hubcore/log.h"
#include "hubcore/username.h"

namespace hub {

namespace {

// pam_unix refuses passwords over PAM_MAX_RESP_SIZE (512) anyway; this only
// keeps absurd input away from the modules.
constexpr size_t kMaxPassword = 4096;
constexpr size_t kMaxNotes = 8;
constexpr size_t kMaxNoteLength = 200;

// Module messages may contain anything; keep them to one printable log line.
std::string logSafe(const char* text) {
    std::string out;
    for (const char* p = text; p && *p && out.size() < kMaxNoteLength; ++p) {
        auto c = static_cast<unsigned char>(*p);
        out += (c < 0x20 || c == 0x7F) ? '?' : static_cast<char>(c);
    }
    return out;
}

struct ConversationData {
    const std::string* username;
    const std::string* password;
    std::vector<std::string>* notes;
    // Interactive sign-in: the form's password answers the first password
    // prompt and every further prompt goes to the dialog. Without a dialog
    // every password prompt gets the password, as in JupyterHub.
    LoginDialog* dialog = nullptr;
    bool passwordGiven = false;
    std::vector<LoginMessage>* unshown = nullptr;  // messages the user has not seen yet
};

// Owns the responses array until PAM takes it (PAM frees it with free():
// hence calloc/strdup).
class Responses {
public:
    explicit Responses(int count)
        : count_(count),
          items_(static_cast<pam_response*>(std::calloc(static_cast<size_t>(count), sizeof(pam_response)))) {}
    Responses(const Responses&) = delete;
    Responses& operator=(const Responses&) = delete;
    ~Responses() {
        if (!items_) return;
        for (int i = 0; i < count_; ++i) {
            if (items_[i].resp) {
                // Wipe the password copy before handing the memory back.
                explicit_bzero(items_[i].resp, std::strlen(items_[i].resp));
                std::free(items_[i].resp);
            }
        }
        std::free(items_);
    }
    explicit operator bool() const { return items_ != nullptr; }
    bool set(int i, const std::string& text) {
        items_[i].resp = strdup(text.c_str());
        return items_[i].resp != nullptr;
    }
    pam_response* release() { return std::exchange(items_, nullptr); }

private:
    int count_;
    pam_response* items_;
};

void wipe(std::string& s) {
    explicit_bzero(s.data(), s.size());
    s.clear();
}

LoginMessage shownMessage(LoginMessage::Kind kind, const char* text) {
    std::string shown = safe(text ? text : "", kMaxLoginMessage);
    while (!shown.empty() && shown.back() == ' ') shown.pop_back();
    return LoginMessage{kind, std::move(shown)};
}

// Sends the prompts among `data.unshown` to the dialog and writes the
// answers into `responses` at `promptIndex`. PAM_CONV_ERR if the user went
// away or the answers do not fit.
int askDialog(ConversationData& data, const std::vector<int>& promptIndex, Responses& responses) {
    auto answers = data.dialog->ask(*data.unshown);
    data.unshown->clear();
    if (!answers || answers->size() != promptIndex.size()) return PAM_CONV_ERR;
    int rc = PAM_SUCCESS;
    for (size_t k = 0; k < promptIndex.size(); ++k) {
        std::string& answer = (*answers)[k];
        if (rc == PAM_SUCCESS && (answer.size() > kMaxLoginAnswer || answer.find('\0') != std::string::npos))
            rc = PAM_CONV_ERR;
        if (rc == PAM_SUCCESS && !responses.set(promptIndex[k], answer)) rc = PAM_BUF_ERR;
        wipe(answer);
    }
    return rc;
}

int converse(int count, const struct pam_message** messages, struct pam_response** out, void* appdata) {
    if (count <= 0 || count > PAM_MAX_NUM_MSG || !messages || !out || !appdata) return PAM_CONV_ERR;
    auto* data = static_cast<ConversationData*>(appdata);
    Responses responses(count);
    if (!responses) return PAM_BUF_ERR;
    std::vector<int> promptIndex;  // the prompts this call sends to the dialog
    for (int i = 0; i < count; ++i) {
        const pam_message* m = messages[i];
        switch (m->msg_style) {
            case PAM_PROMPT_ECHO_OFF:
                if (!data->dialog || !data->passwordGiven) {
                    data->passwordGiven = true;
                    if (!responses.set(i, *data->password)) return PAM_BUF_ERR;
                } else {
                    if (promptIndex.size() == kMaxLoginPromptsPerStep) return PAM_CONV_ERR;
                    promptIndex.push_back(i);
                    data->unshown->push_back(shownMessage(LoginMessage::Kind::SecretPrompt, m->msg));
                }
                break;
            case PAM_PROMPT_ECHO_ON:
                // Only asked for the user name when PAM_USER is unset, which
                // hubd never leaves it; anything else is a real question.
                if (!data->dialog) {
                    if (!responses.set(i, *data->username)) return PAM_BUF_ERR;
                } else {
                    if (promptIndex.size() == kMaxLoginPromptsPerStep) return PAM_CONV_ERR;
                    promptIndex.push_back(i);
                    data->unshown->push_back(shownMessage(LoginMessage::Kind::Prompt, m->msg));
                }
                break;
            case PAM_ERROR_MSG:
            case PAM_TEXT_INFO: {
                const bool error = m->msg_style == PAM_ERROR_MSG;
                if (data->notes->size() < kMaxNotes)
                    data->notes->push_back(
                        fmt::format("PAM {}: {}", error ? "error" : "info", logSafe(m->msg)));
                if (data->unshown) {
                    auto shownSoFar = std::count_if(data->unshown->begin(), data->unshown->end(),
                                                    [](const LoginMessage& x) { return !x.isPrompt(); });
                    if (static_cast<size_t>(shownSoFar) < kMaxLoginMessagesPerStep)
                        data->unshown->push_back(shownMessage(
                            error ? LoginMessage::Kind::Error : LoginMessage::Kind::Info, m->msg));
                }
                break;
            }
            default:
                // Binary prompts and the like: we cannot answer, so fail rather than guess.
                return PAM_CONV_ERR;
        }
    }
    if (!promptIndex.empty()) {
        if (int rc = askDialog(*data, promptIndex, responses); rc != PAM_SUCCESS) return rc;
    }
    *out = responses.release();
    return PAM_SUCCESS;
}

void noFailDelay(int /*status*/, unsigned /*usec*/, void* /*appdata*/) {}

// pam_end() must run exactly once, with the last status, whatever happens.
class PamHandle {
public:
    PamHandle(const std::string& service, const std::string& user, const pam_conv* conv) {
        status_ = pam_start(service.c_str(), user.c_str(), conv, &handle_);
        if (status_ != PAM_SUCCESS) handle_ = nullptr;
    }
    PamHandle(const PamHandle&) = delete;
    PamHandle& operator=(const PamHandle&) = delete;
    ~PamHandle() {
        if (handle_) pam_end(handle_, status_);
    }
    bool ok() const { return handle_ != nullptr; }
    pam_handle_t* get() const { return handle_; }
    int status() const { return status_; }
    // Records the status for pam_end and returns it.
    int track(int status) {
        status_ = status;
        return status;
    }
    std::string error(int status) const { return pam_strerror(handle_, status); }

private:
    pam_handle_t* handle_ = nullptr;
    int status_ = PAM_SUCCESS;
};

class PamAuthenticator final : public Authenticator {
public:
    explicit PamAuthenticator(const Settings& settings) : settings_(settings) {}

    std::string className() const override { return "jupyterhub.auth.PAMAuthenticator"; }

    AuthResult authenticate(const std::string& username, const std::string& password) override {
        return run(username, password, nullptr);
    }

    AuthResult authenticateInteractive(const std::string& username, const std::string& password,
                                       LoginDialog& dialog) override {
        return run(username, password, &dialog);
    }

private:
    AuthResult run(const std::string& username, const std::string& password, LoginDialog* dialog) const {
        AuthResult result;
        auto name = normalizeLoginName(settings_, username, result.failureReason);
        if (!name) return result;
        result.username = *name;
        // A NUL would silently cut the password short in PAM's C strings.
        if (password.empty() || password.size() > kMaxPassword || password.find('\0') != std::string::npos) {
            result.failureReason = "password rejected before PAM (empty, too long or contains NUL)";
            return result;
        }
        if (!runPam(*name, password, dialog, result)) return result;

        result.groups = unixGroupsOf(*name);
        if (!settings_.adminGroups.empty())
            result.admin = std::any_of(result.groups.begin(), result.groups.end(), [&](const std::string& g) {
                return std::find(settings_.adminGroups.begin(), settings_.adminGroups.end(), g) !=
                       settings_.adminGroups.end();
            });
        if (!applyUsernameMap(settings_, *name, result)) return result;
        result.ok = true;
        return result;
    }

    // The name given to PAM is the normalised one, so the account PAM checked
    // is the account the hub (and sudospawner) will act for.
    bool runPam(const std::string& name, const std::string& password, LoginDialog* dialog,
                AuthResult& result) const {
        ConversationData data{&name,  &password, &result.logNotes,
                              dialog, false,     dialog ? &result.messages : nullptr};
        const pam_conv conv{converse, &data};
        PamHandle pam(settings_.pamService, name, &conv);
        if (!pam.ok()) {
            result.failureReason =
                fmt::format("pam_start(service '{}') failed: {}", logSafe(settings_.pamService.c_str()),
                            pam_strerror(nullptr, pam.status()));
            return false;
        }
        // pam_faildelay would sleep ~2 s in this worker thread after every wrong
        // password; hubd delays the failed reply on a timer instead, so guessing
        // cannot occupy the worker pool (hubd/app/hub.cpp replyAfterFailureDelay).
        pam_set_item(pam.get(), PAM_FAIL_DELAY, reinterpret_cast<const void*>(&noFailDelay));
        int rc = pam.track(pam_authenticate(pam.get(), PAM_DISALLOW_NULL_AUTHTOK));
        if (rc != PAM_SUCCESS) {
            result.failureReason = "PAM authentication failed: " + pam.error(rc);
            return false;
        }
        // A module may rewrite PAM_USER (e.g. case-folding directories); then the
        // account checked is not the one we would spawn for.
        const void* item = nullptr;
        if (pam_get_item(pam.get(), PAM_USER, &item) != PAM_SUCCESS || !item ||
            name != static_cast<const char*>(item)) {
            result.failureReason = "PAM changed the user name during authentication";
            return false;
        }
        if (settings_.pamCheckAccount) {
            rc = pam.track(pam_acct_mgmt(pam.get(), PAM_DISALLOW_NULL_AUTHTOK));
            if (rc != PAM_SUCCESS) {
                // PAM_ACCT_EXPIRED, PAM_NEW_AUTHTOK_REQD (expired password), PAM_PERM_DENIED...
                result.failureReason = "PAM account check failed: " + pam.error(rc);
                return false;
            }
        }
        if (settings_.pamOpenSessions) openAndCloseSession(pam, result);
        return true;
    }

    // hubd has no spawn/stop hooks for PAM yet, so this only proves the session
    // stack accepts the user. Failures are warnings, as in JupyterHub.
    static void openAndCloseSession(PamHandle& pam, AuthResult& result) {
        int rc = pam.track(pam_setcred(pam.get(), PAM_ESTABLISH_CRED));
        if (rc != PAM_SUCCESS) {
            result.logNotes.push_back("PAM setcred failed: " + pam.error(rc));
            return;
        }
        rc = pam.track(pam_open_session(pam.get(), 0));
        if (rc != PAM_SUCCESS) {
            result.logNotes.push_back("PAM open_session failed: " + pam.error(rc));
        } else {
            rc = pam.track(pam_close_session(pam.get(), 0));
            if (rc != PAM_SUCCESS) result.logNotes.push_back("PAM close_session failed: " + pam.error(rc));
        }
        rc = pam.track(pam_setcred(pam.get(), PAM_DELETE_CRED));
        if (rc != PAM_SUCCESS) result.logNotes.push_back("PAM setcred(delete) failed: " + pam.error(rc));
    }

    Settings settings_;
};

}  // namespace

std::unique_ptr<Authenticator> makePamAuthenticator(const Settings& settings) {
    return std::make_unique<PamAuthenticator>(settings);
}

}  // namespace hub
