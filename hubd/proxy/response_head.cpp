// SPDX-License-Identifier: BSD-3-Clause
// Response-head parsing (strict) and chunk encoding for the proxy.
#include "proxy/response_head.h"

#include <algorithm>
#include <limits>

namespace hubd::proxy {

namespace {

bool isTchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isBadValueByte(char c) {
    auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trimOws(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

template <typename Fn>
void forEachToken(std::string_view list, Fn&& fn) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view item = trimOws(list.substr(0, comma));
        if (!item.empty()) fn(item);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

}  // namespace

std::string_view parseResponseHead(std::string_view head, bool requestWasHead, ResponseHead& out) {
    out = ResponseHead{};
    size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) return "no status line";
    std::string_view line = head.substr(0, eol);
    // status-line = HTTP-version SP 3DIGIT SP [reason]; the SP after the
    // code is optional in practice ("HTTP/1.1 200" is common enough).
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ')
        return "malformed status line";
    out.versionMinor = line[7] - '0';
    for (size_t i = 9; i < 12; ++i)
        if (line[i] < '0' || line[i] > '9') return "malformed status code";
    out.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (out.status < 100) return "malformed status code";
    if (line.size() > 12) {
        if (line[12] != ' ') return "malformed status line";
        std::string_view reason = line.substr(13);
        if (std::any_of(reason.begin(), reason.end(), isBadValueByte)) return "control character in reason";
        out.reason.assign(reason);
    }

    bool sawContentLength = false;
    bool sawTransferEncoding = false;
    bool chunkedOnly = true;
    size_t codings = 0;
    bool connectionClose = false;
    bool connectionKeepAlive = false;
    size_t pos = eol + 2;
    for (;;) {
        size_t end = head.find("\r\n", pos);
        if (end == std::string_view::npos) return "unterminated header";
        std::string_view field = head.substr(pos, end - pos);
        pos = end + 2;
        if (field.empty()) break;
        if (field.front() == ' ' || field.front() == '\t') return "obs-fold";
        size_t colon = 0;
        while (colon < field.size() && isTchar(field[colon])) ++colon;
        if (colon == 0 || colon == field.size() || field[colon] != ':') return "invalid header name";
        std::string_view name = field.substr(0, colon);
        std::string_view value = trimOws(field.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), isBadValueByte)) return "control character in header";
        if (value.find('\n') != std::string_view::npos || value.find('\r') != std::string_view::npos)
            return "bare CR or LF in header";
        if (iequals(name, "Content-Length")) {
            // Even an equal duplicate is refused: the upstream is confused.
            if (sawContentLength) return "duplicate Content-Length";
            sawContentLength = true;
            if (value.empty()) return "empty Content-Length";
            uint64_t n = 0;
            for (char c : value) {
                if (c < '0' || c > '9') return "malformed Content-Length";
                if (n > (std::numeric_limits<uint64_t>::max() - 9) / 10) return "Content-Length too large";
                n = n * 10 + static_cast<uint64_t>(c - '0');
            }
            out.contentLength = n;
            out.hasContentLength = true;
        } else if (iequals(name, "Transfer-Encoding")) {
            sawTransferEncoding = true;
            forEachToken(value, [&](std::string_view coding) {
                ++codings;
                if (!iequals(coding, "chunked")) chunkedOnly = false;
            });
        } else if (iequals(name, "Connection")) {
            forEachToken(value, [&](std::string_view option) {
                if (iequals(option, "close")) connectionClose = true;
                if (iequals(option, "keep-alive")) connectionKeepAlive = true;
            });
        }
        out.headers.emplace_back(std::string(name), std::string(value));
    }
    if (pos != head.size()) return "bytes after the head";

    if (sawTransferEncoding) {
        if (sawContentLength) return "both Content-Length and Transfer-Encoding";
        if (out.versionMinor == 0) return "Transfer-Encoding in an HTTP/1.0 response";
        if (codings != 1 || !chunkedOnly) return "Transfer-Encoding other than chunked";
    }
    out.keepAlive = out.versionMinor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose);

    bool bodyless = requestWasHead || out.status < 200 || out.status == 204 || out.status == 304;
    if (bodyless)
        out.framing = ResponseFraming::None;
    else if (sawTransferEncoding)
        out.framing = ResponseFraming::Chunked;
    else if (sawContentLength)
        out.framing = out.contentLength == 0 ? ResponseFraming::None : ResponseFraming::ContentLength;
    else {
        out.framing = ResponseFraming::UntilClose;
        out.keepAlive = false;
    }
    return {};
}

void appendChunk(std::string& out, std::string_view data) {
    if (data.empty()) return;
    static constexpr char kHex[] = "0123456789abcdef";
    char size[20];
    int n = 0;
    for (size_t v = data.size(); v; v >>= 4) size[n++] = kHex[v & 15];
    while (n) out += size[--n];
    out += "\r\n";
    out.append(data);
    out += "\r\n";
}

}  // namespace hubd::proxy
