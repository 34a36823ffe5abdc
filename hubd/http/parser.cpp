// SPDX-License-Identifier: BSD-3-Clause
// Strict HTTP/1.1 request-head, chunked-body and percent-decoding parsers.
#include "http/parser.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace hubd::http {

namespace {

constexpr std::array<bool, 256> makeTcharTable() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr auto kTchar = makeTcharTable();

bool isTchar(char c) {
    return kTchar[static_cast<unsigned char>(c)];
}
bool isDigit(char c) {
    return c >= '0' && c <= '9';
}
bool isOws(char c) {
    return c == ' ' || c == '\t';
}

// CTLs other than HTAB: never legitimate inside a field value.
bool isBadValueByte(char ch) {
    auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

std::string_view trimOws(std::string_view s) {
    while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
    while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
    return s;
}

// Calls fn(element) for each non-empty element of a comma-separated list.
template <typename Fn>
void forEachListElement(std::string_view value, Fn&& fn) {
    while (true) {
        size_t comma = value.find(',');
        auto element = trimOws(value.substr(0, comma));
        if (!element.empty()) fn(element);
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
}

// reg-name / IP-literal / IPv4 plus ":port": no '/', '@', '?', '#' or
// whitespace, which would let a Host header smuggle a path or userinfo.
bool isValidHost(std::string_view host) {
    for (char c : host) {
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  std::string_view("-._~!$&'()*+,;=:[]%").find(c) != std::string_view::npos;
        if (!ok) return false;
    }
    return true;
}

constexpr ParseError bad(std::string_view reason) {
    return ParseError{400, reason};
}

}  // namespace

// ---------------------------------------------------------------------------

HeadScanner::Status HeadScanner::fail(int status, std::string_view reason) {
    error_ = ParseError{status, reason};
    return Status::Error;
}

HeadScanner::Status HeadScanner::scan(std::string_view buf, const Limits& limits) {
    if (error_) return Status::Error;
    if (headEnd_ != 0) return Status::Complete;
    while (pos_ < buf.size()) {
        const void* hit = std::memchr(buf.data() + pos_, '\n', buf.size() - pos_);
        if (!hit) {
            pos_ = buf.size();
            break;
        }
        size_t lf = static_cast<size_t>(static_cast<const char*>(hit) - buf.data());
        // Same limit checks as for a buffer ending just before this LF, so
        // the verdict does not depend on how the bytes were split into reads.
        if (auto status = checkPartial(lf, limits)) return *status;
        pos_ = lf + 1;
        // A bare LF is where parsers disagree about line boundaries: the
        // classic smuggling lever, so it is an error rather than tolerated.
        if (lf == lineStart_ || buf[lf - 1] != '\r')
            return fail(400, "line ends in a bare LF (CRLF required)");
        size_t lineBytes = lf - 1 - lineStart_;
        if (lineBytes == 0) {
            if (lines_ == 0) {
                // RFC 9112 2.2: ignore empty lines before the request line
                // (some clients send CRLF after a POST body).
                lineStart_ = headStart_ = pos_;
                if (headStart_ > limits.maxHeaderBytes) return fail(400, "too many empty lines");
                continue;
            }
            headEnd_ = pos_;
            if (headEnd_ - headStart_ > limits.maxHeaderBytes) return fail(431, "request header too large");
            return Status::Complete;
        }
        if (lines_ == 0 && lineBytes > limits.maxRequestLineBytes) return fail(414, "request line too long");
        ++lines_;
        if (lines_ - 1 > limits.maxHeaderCount) return fail(431, "too many header fields");
        lineStart_ = pos_;
    }
    if (auto status = checkPartial(buf.size(), limits)) return *status;
    return Status::NeedMore;
}

std::optional<HeadScanner::Status> HeadScanner::checkPartial(size_t size, const Limits& limits) {
    // +1: the partial line may end in the CR of its CRLF.
    if (lines_ == 0 && size - lineStart_ > limits.maxRequestLineBytes + 1)
        return fail(414, "request line too long");
    if (size - headStart_ > limits.maxHeaderBytes) return fail(431, "request header too large");
    return std::nullopt;
}

// ---------------------------------------------------------------------------

ParseError parseHead(std::string_view head, const Limits& limits, Request& request, HeadInfo& info) {
    info = HeadInfo{};
    request.headers.clear();
    request.query.clear();

    size_t eol = head.find("\r\n");
    if (eol == std::string_view::npos) return bad("malformed request head");
    std::string_view line = head.substr(0, eol);

    // request-line = method SP request-target SP HTTP-version, exactly.
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) return bad("malformed request line");
    std::string_view method = line.substr(0, sp1);
    if (!std::all_of(method.begin(), method.end(), isTchar)) return bad("invalid character in method");
    size_t sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return bad("malformed request line");
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (target.empty()) return bad("empty request target");
    for (char c : target) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x21 || u > 0x7e) return bad("invalid character in request target");
    }
    if (target.find('#') != std::string_view::npos) return bad("fragment in request target");
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !isDigit(version[5]) || version[6] != '.' ||
        !isDigit(version[7]))
        return bad("malformed HTTP version");
    if (version[5] != '1') return ParseError{505, "HTTP version not supported"};
    // RFC 9110 2.5: a higher 1.x minor is handled as the highest we know.
    int versionMinor = version[7] == '0' ? 0 : 1;

    request.method.assign(method);
    request.target.assign(target);
    request.versionMinor = versionMinor;

    std::string_view pathAndQuery;
    if (target == "*") {
        if (method != "OPTIONS") return bad("'*' target is only allowed for OPTIONS");
        pathAndQuery = target;
    } else if (target.front() == '/') {
        pathAndQuery = target;
    } else if (target.size() >= 7 && iequals(target.substr(0, 7), "http://")) {
        std::string_view rest = target.substr(7);
        size_t end = rest.find_first_of("/?");
        if (end == 0) return bad("absolute-form target without a host");
        pathAndQuery = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    } else {
        return bad("unsupported request-target form");
    }
    size_t question = pathAndQuery.find('?');
    std::string_view rawPath = pathAndQuery.substr(0, question);
    if (question != std::string_view::npos) request.query.assign(pathAndQuery.substr(question + 1));
    if (rawPath.empty()) rawPath = "/";  // "http://host" and "http://host?q"
    request.rawPath.assign(rawPath);
    auto decoded = decodePath(rawPath);
    if (!decoded) return bad("invalid percent-encoding in path");
    request.path = std::move(*decoded);

    bool sawContentLength = false;
    bool contentLengthTooBig = false;
    uint64_t contentLength = 0;
    bool sawTransferEncoding = false;
    bool chunkedSeen = false;
    bool chunkedNotLast = false;
    bool otherCoding = false;
    bool connectionClose = false;
    bool connectionKeepAlive = false;
    bool expectOther = false;
    bool expectContinue = false;
    int hostCount = 0;
    size_t headerCount = 0;

    size_t pos = eol + 2;
    for (;;) {
        size_t end = head.find("\r\n", pos);
        if (end == std::string_view::npos) return bad("malformed request head");
        std::string_view field = head.substr(pos, end - pos);
        pos = end + 2;
        if (field.empty()) break;
        if (++headerCount > limits.maxHeaderCount) return ParseError{431, "too many header fields"};
        // obs-fold (and a first field line starting with whitespace, which
        // some parsers glue to the request line) is rejected, RFC 9112 5.2.
        if (isOws(field.front())) return bad("header line starts with whitespace (obs-fold)");
        size_t colon = 0;
        while (colon < field.size() && isTchar(field[colon])) ++colon;
        if (colon == field.size() || field[colon] != ':') return bad("invalid character in header name");
        if (colon == 0) return bad("empty header name");
        std::string_view name = field.substr(0, colon);
        std::string_view value = trimOws(field.substr(colon + 1));
        if (std::any_of(value.begin(), value.end(), isBadValueByte))
            return bad("control character in header value");

        if (iequals(name, "Content-Length")) {
            if (value.empty()) return bad("invalid Content-Length");
            uint64_t n = 0;
            bool tooBig = false;
            for (char c : value) {
                // Digits only: "+5", "5, 6", "0x5", " 5" all fail here.
                if (!isDigit(c)) return bad("invalid Content-Length");
                if (n > (std::numeric_limits<uint64_t>::max() - 9) / 10) tooBig = true;
                if (!tooBig) n = n * 10 + static_cast<uint64_t>(c - '0');
            }
            if (sawContentLength && (tooBig != contentLengthTooBig || n != contentLength))
                return bad("conflicting Content-Length headers");
            sawContentLength = true;
            contentLengthTooBig = tooBig;
            contentLength = n;
        } else if (iequals(name, "Transfer-Encoding")) {
            sawTransferEncoding = true;
            forEachListElement(value, [&](std::string_view coding) {
                if (chunkedSeen) chunkedNotLast = true;
                if (iequals(coding, "chunked"))
                    chunkedSeen = true;
                else
                    otherCoding = true;
            });
        } else if (iequals(name, "Host")) {
            ++hostCount;
            if (!isValidHost(value)) return bad("invalid Host header");
        } else if (iequals(name, "Connection")) {
            forEachListElement(value, [&](std::string_view option) {
                if (iequals(option, "close")) connectionClose = true;
                if (iequals(option, "keep-alive")) connectionKeepAlive = true;
            });
        } else if (iequals(name, "Expect")) {
            if (iequals(value, "100-continue"))
                expectContinue = true;
            else
                expectOther = true;
        }
        request.headers.emplace_back(std::string(name), std::string(value));
    }
    if (pos != head.size()) return bad("malformed request head");

    if (sawTransferEncoding) {
        // RFC 9112 6.1: a TE in HTTP/1.0, or TE together with CL, means
        // the framing is ambiguous; so is a last coding other than chunked.
        if (versionMinor == 0) return bad("Transfer-Encoding in an HTTP/1.0 request");
        if (sawContentLength) return bad("both Content-Length and Transfer-Encoding");
        if (!chunkedSeen || chunkedNotLast) return bad("Transfer-Encoding must end in chunked");
        if (otherCoding) return ParseError{501, "transfer coding not implemented"};
    }
    if (hostCount > 1) return bad("more than one Host header");
    if (hostCount == 0 && versionMinor == 1) return bad("missing Host header");

    if (sawTransferEncoding) {
        info.framing = BodyFraming::Chunked;
    } else if (sawContentLength) {
        if (contentLengthTooBig || contentLength > limits.maxBodyBytes)
            return ParseError{413, "request body too large"};
        info.contentLength = contentLength;
        info.framing = contentLength > 0 ? BodyFraming::ContentLength : BodyFraming::None;
    }
    info.keepAlive = versionMinor == 1 ? !connectionClose : (connectionKeepAlive && !connectionClose);
    if (versionMinor == 1) {
        if (expectOther) return ParseError{417, "only 'Expect: 100-continue' is supported"};
        info.expectContinue = expectContinue && info.framing != BodyFraming::None;
    }
    return {};
}

// ---------------------------------------------------------------------------

ChunkedDecoder::Status ChunkedDecoder::fail(int status, std::string_view reason) {
    error_ = ParseError{status, reason};
    state_ = State::Done;
    return Status::Error;
}

ChunkedDecoder::Status ChunkedDecoder::feed(std::string_view in, std::string& body, const Limits& limits,
                                            size_t& consumed) {
    consumed = 0;
    if (error_) return Status::Error;
    if (state_ == State::Done) return Status::Done;
    const size_t maxBody = limits.maxBodyBytes;
    const size_t maxOverhead = maxBody + 64 * 1024;
    size_t i = 0;
    auto failAt = [&](int status, std::string_view reason) {
        consumed = i;
        return fail(status, reason);
    };
    while (i < in.size()) {
        if (state_ == State::Data) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(chunkSize_, in.size() - i));
            body.append(in.data() + i, n);
            i += n;
            chunkSize_ -= n;
            if (chunkSize_ == 0) state_ = State::DataCr;
            continue;
        }
        char c = in[i++];
        if (++overheadBytes_ > maxOverhead) return failAt(413, "chunked framing too large");
        switch (state_) {
            case State::Size: {
                int d = hexValue(c);
                if (d >= 0) {
                    ++sizeDigits_;
                    if (++lineBytes_ > kMaxChunkLineBytes) return failAt(400, "chunk size line too long");
                    chunkSize_ = chunkSize_ * 16 + static_cast<uint64_t>(d);
                    // Checked per digit, so a 100-digit size never overflows.
                    if (chunkSize_ > maxBody - body.size()) return failAt(413, "request body too large");
                } else if (sizeDigits_ == 0) {
                    return failAt(400, "invalid chunk size");
                } else if (c == ';') {
                    state_ = State::Ext;
                } else if (isOws(c)) {
                    state_ = State::ExtSpace;
                } else if (c == '\r') {
                    state_ = State::SizeLf;
                } else {
                    return failAt(400, "invalid chunk size");
                }
                break;
            }
            case State::ExtSpace:
                if (++lineBytes_ > kMaxChunkLineBytes) return failAt(400, "chunk size line too long");
                if (c == ';')
                    state_ = State::Ext;
                else if (!isOws(c))
                    return failAt(400, "invalid chunk extension");
                break;
            case State::Ext:
                if (++lineBytes_ > kMaxChunkLineBytes) return failAt(400, "chunk size line too long");
                if (c == '\r')
                    state_ = State::SizeLf;
                else if (isBadValueByte(c))
                    return failAt(400, "invalid chunk extension");
                break;
            case State::SizeLf:
                if (c != '\n') return failAt(400, "chunk size line not ended by CRLF");
                state_ = chunkSize_ == 0 ? State::TrailerStart : State::Data;
                sizeDigits_ = 0;
                lineBytes_ = 0;
                break;
            case State::DataCr:
                if (c != '\r') return failAt(400, "chunk data not followed by CRLF");
                state_ = State::DataLf;
                break;
            case State::DataLf:
                if (c != '\n') return failAt(400, "chunk data not followed by CRLF");
                state_ = State::Size;
                break;
            case State::TrailerStart:
            case State::Trailer:
                if (c == '\r') {
                    state_ = state_ == State::TrailerStart ? State::FinalLf : State::TrailerLf;
                    break;
                }
                if (c == '\n' || isBadValueByte(c)) return failAt(400, "invalid trailer");
                if (state_ == State::TrailerStart && isOws(c)) return failAt(400, "invalid trailer");
                if (++trailerBytes_ > limits.maxHeaderBytes) return failAt(431, "trailer too large");
                state_ = State::Trailer;
                break;
            case State::TrailerLf:
                if (c != '\n') return failAt(400, "invalid trailer");
                state_ = State::TrailerStart;
                break;
            case State::FinalLf:
                if (c != '\n') return failAt(400, "chunked body not ended by CRLF");
                state_ = State::Done;
                consumed = i;
                return Status::Done;
            case State::Data:
            case State::Done:
                break;
        }
    }
    consumed = i;
    return Status::NeedMore;
}

// ---------------------------------------------------------------------------

ParseResult parseRequest(std::string_view buf, const Limits& limits, Request& request) {
    ParseResult result;
    HeadScanner scanner;
    switch (scanner.scan(buf, limits)) {
        case HeadScanner::Status::NeedMore:
            return result;
        case HeadScanner::Status::Error:
            result.status = ParseStatus::Error;
            result.error = scanner.error();
            return result;
        case HeadScanner::Status::Complete:
            break;
    }
    std::string_view head = buf.substr(scanner.headStart(), scanner.headEnd() - scanner.headStart());
    if (auto error = parseHead(head, limits, request, result.info)) {
        result.status = ParseStatus::Error;
        result.error = error;
        return result;
    }
    size_t bodyStart = scanner.headEnd();
    std::string_view rest = buf.substr(bodyStart);
    request.body.clear();
    switch (result.info.framing) {
        case BodyFraming::None:
            result.consumed = bodyStart;
            break;
        case BodyFraming::ContentLength:
            if (rest.size() < result.info.contentLength) return result;
            request.body.assign(rest.substr(0, result.info.contentLength));
            result.consumed = bodyStart + result.info.contentLength;
            break;
        case BodyFraming::Chunked: {
            ChunkedDecoder decoder;
            size_t used = 0;
            auto status = decoder.feed(rest, request.body, limits, used);
            if (status == ChunkedDecoder::Status::NeedMore) return result;
            if (status == ChunkedDecoder::Status::Error) {
                result.status = ParseStatus::Error;
                result.error = decoder.error();
                return result;
            }
            result.consumed = bodyStart + used;
            break;
        }
    }
    result.status = ParseStatus::Complete;
    return result;
}

// ---------------------------------------------------------------------------

bool isValidUtf8(std::string_view s) {
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t len;
        uint32_t cp;
        uint32_t min;
        if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (s.size() - i < len) return false;
        for (size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        // Overlong forms ("%C0%AE" for '.') and surrogates are how
        // normalising decoders get fooled: reject them.
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

std::optional<std::string> decodePath(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c != '%') {
            out.push_back(c);
            continue;
        }
        if (raw.size() - i < 3) return std::nullopt;
        int hi = hexValue(raw[i + 1]);
        int lo = hexValue(raw[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        int byte = hi * 16 + lo;
        if (byte == 0) return std::nullopt;
        out.push_back(static_cast<char>(byte));
        i += 2;
    }
    if (!isValidUtf8(out)) return std::nullopt;
    return out;
}

std::string decodeQueryComponent(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%' && raw.size() - i >= 3 && hexValue(raw[i + 1]) >= 0 &&
                   hexValue(raw[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hexValue(raw[i + 1]) * 16 + hexValue(raw[i + 2])));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

// ---------------------------------------------------------------------------

std::string_view Request::header(std::string_view name) const {
    for (const auto& [key, value] : headers)
        if (iequals(key, name)) return value;
    return {};
}

bool Request::hasHeader(std::string_view name) const {
    return std::any_of(headers.begin(), headers.end(),
                       [&](const Header& h) { return iequals(h.first, name); });
}

std::optional<std::string> Request::queryParam(std::string_view name) const {
    std::string_view rest = query;
    while (!rest.empty()) {
        size_t amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (pair.empty()) continue;
        size_t eq = pair.find('=');
        if (decodeQueryComponent(pair.substr(0, eq)) != name) continue;
        return eq == std::string_view::npos ? std::string{} : decodeQueryComponent(pair.substr(eq + 1));
    }
    return std::nullopt;
}

}  // namespace hubd::http
