// SPDX-License-Identifier: BSD-3-Clause
// Server-rendered hub pages: login, logout, home, the not-running page.
// They work without JavaScript and load no external assets; the pending
// page's one script only makes its progress live.
#pragma once

#include <memory>

#include "app/hub.h"
#include "app/login_conversation.h"

namespace hubd {

class AdminFlashes;  // admin_pages.cpp
class OAuthLogin;    // oauth_login_pages.cpp (GenericOAuthenticator)

class Hub::Pages {
public:
    explicit Pages(Hub& hub);  // login_pages.cpp
    // `path` is relative to <base_url>hub, e.g. "/login".
    void handle(std::string_view path, hubd::http::Request& request, hubd::http::Responder responder);
    void notFound(hubd::http::Request& request, hubd::http::Responder responder);

private:
    void loginPage(hubd::http::Request& request, hubd::http::Responder responder);
    // The sign-in, login_pages.cpp: the form (username, password), then as
    // many further PAM prompts as the PAM stack asks (login_conversation.h).
    void loginSubmit(hubd::http::Request& request, hubd::http::Responder responder);
    void loginContinue(hubd::http::Request& request, hubd::http::Responder responder,
                       std::map<std::string, std::string>& form, const std::string& next);
    // What a step's reply needs once its request is gone.
    struct LoginReply {
        std::string next;  // validated local path, or ""
        Origin origin;
        hubd::http::Request request;  // target and query only, for nextUrl
        std::string sessionId;
    };
    void loginStep(const std::shared_ptr<hubd::http::Responder>& responder, const LoginReply& reply,
                   LoginStep step);
    void loginSucceeded(const std::shared_ptr<hubd::http::Responder>& responder, const LoginReply& reply,
                        const hub::UserRecord& user);
    hubd::http::Response renderLoginPrompts(const std::string& next,
                                            const std::vector<hub::LoginMessage>& messages,
                                            const std::string& stepId, const std::string& xsrf) const;
    // OAuth2 / OpenID Connect sign-in (GenericOAuthenticator), oauth_login_pages.cpp:
    // /hub/oauth_login sends the browser to the provider, /hub/oauth_callback
    // checks what comes back and signs the mapped local user in.
    void oauthLogin(hubd::http::Request& request, hubd::http::Responder responder);
    void oauthCallback(hubd::http::Request& request, hubd::http::Responder responder);
    hubd::http::Response renderOAuthLogin(int status, const std::string& next, std::string_view error) const;
    void logout(hubd::http::Request& request, hubd::http::Responder responder);
    void home(hubd::http::Request& request, hubd::http::Responder responder);
    void spawn(hubd::http::Request& request, hubd::http::Responder responder);
    void spawnPending(std::string_view name, hubd::http::Request& request, hubd::http::Responder responder);
    void stopServer(hubd::http::Request& request, hubd::http::Responder responder);
    void serverLog(hubd::http::Request& request, hubd::http::Responder responder);
    // The admin panel, admin_pages.cpp: GET lists users, POST runs one action.
    void admin(hubd::http::Request& request, hubd::http::Responder responder);
    // The token page, token_pages.cpp: GET lists and offers a form, POST creates or revokes.
    void tokenPage(hubd::http::Request& request, hubd::http::Responder responder);
    std::string serverProblem(const ServerState* s) const;
    void userNotRunning(std::string_view user, hubd::http::Request& request, hubd::http::Responder responder);
    std::string nextUrl(const hubd::http::Request& request, const hub::UserRecord* user) const;
    hubd::http::Response page(int status, std::string_view title, std::string_view body,
                              const hub::UserRecord* user) const;
    // `messages`: what PAM said (pam_faillock's lock notice), shown above `error`.
    hubd::http::Response renderLogin(int status, const std::string& next, const std::string& username,
                                     std::string_view error, const std::string& xsrf,
                                     const std::vector<hub::LoginMessage>& messages = {}) const;
    hubd::http::Response anonymousLoginPage(const hubd::http::Request& request, int status,
                                            const std::string& next, const std::string& username,
                                            std::string_view error) const;
    // XSRF (app/xsrf.h): the hidden field for a form shown to `user`, and
    // the check of a posted form.
    std::string xsrfField(const hubd::http::Request& request, const hub::UserRecord* user) const;
    bool xsrfPosted(const hubd::http::Request& request, const hub::UserRecord* user) const;
    Hub& hub_;
    std::unique_ptr<LoginConversations> logins_;  // sign-ins in progress
    std::shared_ptr<AdminFlashes> adminFlashes_;  // the admin page's status messages
    std::shared_ptr<OAuthLogin> oauth_;           // null unless GenericOAuthenticator
};

// A complete hub page (layout, stylesheet, security headers) around `body`;
// `head` is trusted markup added to <head> (a script tag, say).
hubd::http::Response renderHubPage(const Hub& hub, int status, std::string_view title, std::string_view body,
                                   const hub::UserRecord* user, std::string_view head = {});

// The OAuth sign-in's state for `settings`; null unless GenericOAuthenticator.
std::shared_ptr<OAuthLogin> makeOAuthLogin(const hub::Settings& settings, unsigned workers);

// True if `next` is a path on this hub: starts with one '/', not '//' or
// '/\', no scheme, no control characters.
bool isLocalPath(std::string_view next);

// Shared by the page files. Cookie attributes for `path` (Secure over https);
// the _xsrf cookie; the hidden _xsrf form field.
std::string cookieAttributes(const Origin& origin, std::string_view path);
std::string xsrfCookie(const Origin& origin, const std::string& path, const std::string& token);
std::string hiddenXsrf(const std::string& token);
// PAM's messages as page markup (escaped); empty for none.
std::string loginMessagesHtml(const std::vector<hub::LoginMessage>& messages);

}  // namespace hubd
