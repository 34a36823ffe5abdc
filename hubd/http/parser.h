// SPDX-License-Identifier: BSD-3-Clause
// Strict HTTP/1.1 request parsing over byte buffers: no I/O, no clocks, so
// it can be unit-tested and fuzzed on its own. The server drives the
// incremental pieces (HeadScanner, parseHead, ChunkedDecoder);
// parseRequest() strings them together for one buffer.
//
// MUST: anything ambiguous about where a request ends (the request
// smuggling forms: bare LF, obs-fold, CL+TE, differing CLs, unknown codings)
// is an error, never a guess.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/server.h"

namespace hubd::http {

// status 0 = no error; otherwise the HTTP status to answer before closing.
struct ParseError {
    int status = 0;
    std::string_view reason;  // static text, safe to show the client
    explicit operator bool() const { return status != 0; }
};

// BodyFraming and HeadInfo live in server.h: head handlers see them.

// Finds the end of a request head in a buffer that grows between calls,
// resuming where it stopped (so a slowloris costs O(n), not O(n^2)). Checks
// line endings and the head limits (414/431) as bytes arrive.
class HeadScanner {
public:
    enum class Status { NeedMore, Complete, Error };

    // buf: every byte received for this request so far (same prefix each call).
    Status scan(std::string_view buf, const Limits& limits);
    void reset() { *this = HeadScanner{}; }

    // After Complete: the head is buf[headStart(), headEnd()); headEnd()
    // also counts as consumed the empty lines skipped before the request line.
    size_t headStart() const { return headStart_; }
    size_t headEnd() const { return headEnd_; }
    const ParseError& error() const { return error_; }

private:
    Status fail(int status, std::string_view reason);
    std::optional<Status> checkPartial(size_t size, const Limits& limits);

    size_t pos_ = 0;        // next byte to look at
    size_t lineStart_ = 0;  // start of the line being scanned
    size_t headStart_ = 0;  // start of the request line
    size_t headEnd_ = 0;
    size_t lines_ = 0;  // complete non-empty lines (request line included)
    ParseError error_;
};

// Parses a complete head (as delimited by HeadScanner, final CRLFCRLF
// included) into method, target, path, rawPath, query, versionMinor and
// headers of `request`, and the framing of its body into `info`.
ParseError parseHead(std::string_view head, const Limits& limits, Request& request, HeadInfo& info);

// Decodes a chunked body incrementally. Chunk extensions and trailers are
// checked for shape and dropped.
class ChunkedDecoder {
public:
    enum class Status { NeedMore, Done, Error };

    // Consumes from `in` (sets `consumed`), appends chunk data to `body`.
    // Bytes after the final CRLF are left unconsumed (the next request).
    Status feed(std::string_view in, std::string& body, const Limits& limits, size_t& consumed);
    void reset() { *this = ChunkedDecoder{}; }
    const ParseError& error() const { return error_; }

private:
    enum class State {
        Size,
        ExtSpace,
        Ext,
        SizeLf,
        Data,
        DataCr,
        DataLf,
        TrailerStart,
        Trailer,
        TrailerLf,
        FinalLf,
        Done
    };
    Status fail(int status, std::string_view reason);

    State state_ = State::Size;
    uint64_t chunkSize_ = 0;
    size_t sizeDigits_ = 0;
    size_t lineBytes_ = 0;
    size_t trailerBytes_ = 0;
    size_t overheadBytes_ = 0;  // framing bytes: bounded so tiny chunks can't stream forever
    ParseError error_;
};

// Longest chunk-size / chunk-extension line accepted (400 beyond).
inline constexpr size_t kMaxChunkLineBytes = 1024;

// One-shot: the first request in buf, head and body.
enum class ParseStatus { Complete, Incomplete, Error };
struct ParseResult {
    ParseStatus status = ParseStatus::Incomplete;
    size_t consumed = 0;  // Complete: bytes of buf this request used
    ParseError error;
    HeadInfo info;
};
ParseResult parseRequest(std::string_view buf, const Limits& limits, Request& request);

// Percent-decodes a request path; nullopt on a malformed escape, %00, or
// bytes that are not valid UTF-8 once decoded.
std::optional<std::string> decodePath(std::string_view raw);
// Lenient form decoding for query strings: '+' is a space, malformed
// escapes are kept as they are (like Python's urllib.parse.unquote_plus).
std::string decodeQueryComponent(std::string_view raw);
bool isValidUtf8(std::string_view s);

}  // namespace hubd::http
