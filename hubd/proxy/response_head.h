// SPDX-License-Identifier: BSD-3-Clause
// Strict parsing of a backend's response head, and chunk encoding.
//
// MUST: a response whose end is ambiguous (duplicate or non-digit
// Content-Length, Content-Length with Transfer-Encoding, a coding other than
// chunked, obs-fold, bare LF, control bytes) is rejected: the proxy answers
// 502 rather than guess where the body ends (response smuggling).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/server.h"

namespace hubd::proxy {

enum class ResponseFraming { None, ContentLength, Chunked, UntilClose };

struct ResponseHead {
    int status = 0;
    int versionMinor = 1;
    std::string reason;
    std::vector<http::Header> headers;  // as sent (validated)
    ResponseFraming framing = ResponseFraming::None;
    uint64_t contentLength = 0;  // ContentLength; also the value announced for a HEAD/304
    bool hasContentLength = false;
    bool keepAlive = true;  // the backend connection may carry another request
};

// head: status line to the final CRLFCRLF included. requestWasHead: a HEAD
// request's response has no body whatever its headers say. Returns "" or a
// reason for the log (the client sees a plain 502).
std::string_view parseResponseHead(std::string_view head, bool requestWasHead, ResponseHead& out);

// Appends data as one chunk ("1a\r\n...\r\n"); nothing for empty data.
void appendChunk(std::string& out, std::string_view data);

}  // namespace hubd::proxy
