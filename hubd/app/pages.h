// SPDX-License-Identifier: BSD-3-Clause
// Server-rendered hub pages: login, logout, home, the not-running page.
// They work without JavaScript and load no external assets; the pending
// page's one script only makes its progress live.
#pragma once

#include "app/hub.h"

namespace hubd {

class Hub::Pages {
public:
    explicit Pages(Hub& hub) : hub_(hub) {}
    // `path` is relative to <base_url>hub, e.g. "/login".
    void handle(std::string_view path, hubd::http::Request& request, hubd::http::Responder responder);
    void notFound(hubd::http::Request& request, hubd::http::Responder responder);

private:
    void loginPage(hubd::http::Request& request, hubd::http::Responder responder);
    void loginSubmit(hubd::http::Request& request, hubd::http::Responder responder);
    void logout(hubd::http::Request& request, hubd::http::Responder responder);
    void home(hubd::http::Request& request, hubd::http::Responder responder);
    void spawn(hubd::http::Request& request, hubd::http::Responder responder);
    void spawnPending(std::string_view name, hubd::http::Request& request, hubd::http::Responder responder);
    void stopServer(hubd::http::Request& request, hubd::http::Responder responder);
    void serverLog(hubd::http::Request& request, hubd::http::Responder responder);
    std::string serverProblem(const ServerState* s) const;
    void userNotRunning(std::string_view user, hubd::http::Request& request, hubd::http::Responder responder);
    std::string nextUrl(const hubd::http::Request& request, const hub::UserRecord* user) const;
    hubd::http::Response page(int status, std::string_view title, std::string_view body,
                              const hub::UserRecord* user) const;
    hubd::http::Response renderLogin(int status, const std::string& next, const std::string& username,
                                     std::string_view error) const;
    Hub& hub_;
};

// A complete hub page (layout, stylesheet, security headers) around `body`;
// `head` is trusted markup added to <head> (a script tag, say).
hubd::http::Response renderHubPage(const Hub& hub, int status, std::string_view title, std::string_view body,
                                   const hub::UserRecord* user, std::string_view head = {});

// True if `next` is a path on this hub: starts with one '/', not '//' or
// '/\', no scheme, no control characters.
bool isLocalPath(std::string_view next);

}  // namespace hubd
