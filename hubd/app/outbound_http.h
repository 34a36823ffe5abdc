// SPDX-License-Identifier: BSD-3-Clause
// A small blocking HTTP/1.1 client for the calls hubd makes to an identity
// provider (discovery, JWKS, token, userinfo). It runs on a worker thread,
// never on the event loop.
//
// https: TLS 1.2 or newer, the system CA store (or caFile), and the
// certificate must name the URL's host (X509_VERIFY_PARAM_set1_host).
// http: only to a loopback address (a provider on the same machine, tests);
// anything else is refused, so a client secret never crosses a network in
// clear text. Every call has a deadline and a cap on the reply's size.
// The reply ends where its Content-Length or chunked framing says (a TLS
// close without close_notify after that is fine); only a reply framed by the
// close alone must end with a clean close, so truncation is never taken for
// a whole answer.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace hubd {

struct OutboundRequest {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string caFile;  // PEM bundle to trust instead of the system store; "" = system store
    std::chrono::milliseconds timeout{10000};
    size_t maxBytes = 1024 * 1024;
};

struct OutboundReply {
    int status = 0;     // 0: no HTTP answer; see error
    std::string error;  // why there is no answer: a sentence naming host and cause
    std::string body;   // decoded (chunked transfer undone)
    std::string contentType;
};

OutboundReply fetchUrl(const OutboundRequest& request);

// True for 127.0.0.0/8, ::1 and "localhost".
bool isLoopbackHost(std::string_view host);

}  // namespace hubd
