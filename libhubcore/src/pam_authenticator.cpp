// SPDX-License-Identifier: BSD-3-Clause
// PAMAuthenticator: password check (and optionally account and session checks) through Linux-PAM.
//
// hubd runs unprivileged, so pam_unix can only read password hashes because
// the hub user is in the `shadow` group (seeds/001). PAM sessions are off by
// default (PAMAuthenticator.open_sessions = False since JupyterHub 2.2):
// most session modules (pam_loginuid, pam_limits) need root and fail here.
#include <fmt/format.h>
#include <security/pam_appl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "hubcore/auth.h"
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
};

void freeResponses(pam_response* responses, int count) {
    if (!responses) return;
    for (int i = 0; i < count; ++i) {
        if (responses[i].resp) {
            // Wipe the password copy before handing the memory back.
            explicit_bzero(responses[i].resp, std::strlen(responses[i].resp));
            std::free(responses[i].resp);
        }
    }
    std::free(responses);
}

// PAM owns and frees the responses on success, with free(): hence calloc/strdup.
int converse(int count, const struct pam_message** messages, struct pam_response** out, void* appdata) {
    if (count <= 0 || count > PAM_MAX_NUM_MSG || !messages || !out || !appdata) return PAM_CONV_ERR;
    auto* data = static_cast<ConversationData*>(appdata);
    auto* responses =
        static_cast<pam_response*>(std::calloc(static_cast<size_t>(count), sizeof(pam_response)));
    if (!responses) return PAM_BUF_ERR;
    for (int i = 0; i < count; ++i) {
        const pam_message* m = messages[i];
        switch (m->msg_style) {
            case PAM_PROMPT_ECHO_OFF:
                responses[i].resp = strdup(data->password->c_str());
                break;
            case PAM_PROMPT_ECHO_ON:
                responses[i].resp = strdup(data->username->c_str());
                break;
            case PAM_ERROR_MSG:
            case PAM_TEXT_INFO:
                if (data->notes->size() < kMaxNotes)
                    data->notes->push_back(fmt::format(
                        "PAM {}: {}", m->msg_style == PAM_ERROR_MSG ? "error" : "info", logSafe(m->msg)));
                continue;
            default:
                // Binary prompts and the like: we cannot answer, so fail rather than guess.
                freeResponses(responses, count);
                return PAM_CONV_ERR;
        }
        if (!responses[i].resp) {
            freeResponses(responses, count);
            return PAM_BUF_ERR;
        }
    }
    *out = responses;
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
        AuthResult result;
        auto name = normalizeLoginName(settings_, username, result.failureReason);
        if (!name) return result;
        result.username = *name;
        // A NUL would silently cut the password short in PAM's C strings.
        if (password.empty() || password.size() > kMaxPassword || password.find('\0') != std::string::npos) {
            result.failureReason = "password rejected before PAM (empty, too long or contains NUL)";
            return result;
        }
        if (!runPam(*name, password, result)) return result;

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

private:
    // The name given to PAM is the normalised one, so the account PAM checked
    // is the account the hub (and sudospawner) will act for.
    bool runPam(const std::string& name, const std::string& password, AuthResult& result) const {
        ConversationData data{&name, &password, &result.logNotes};
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
