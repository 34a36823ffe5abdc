// SPDX-License-Identifier: BSD-3-Clause
// spawn_proto: the framed, typed wire protocol between hubd and sudospawner.
//
// Invariants (both peers link exactly this code; see docs/protocol.md):
// - A frame MUST be `u32 length (big-endian) | u8 type | payload`, where length
//   counts the type byte plus the payload and MUST NOT exceed kMaxFrame. Both
//   peers check this on send and on receive.
// - A payload MUST be a sequence of fields `u8 tag | u32 length (BE) | value`.
//   A decoder MUST reject unknown tags, tags not allowed for the message type,
//   repeated non-repeatable fields, missing required fields, wrong integer
//   widths, oversized values, NUL/newline bytes in text, and trailing bytes.
// - Decoding MUST NOT throw and MUST NOT hand out half-filled messages: it returns
//   either a complete Message or an error sentence.
// - This library MUST depend on nothing but the C++ standard library: it is linked
//   into the audited helper.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace hubproto {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kHeaderSize = 4;             // the u32 length
inline constexpr size_t kMaxFrame = 64 * 1024;       // largest length value (type + payload)
inline constexpr size_t kMaxText = 4096;             // one text value (env value, message)
inline constexpr size_t kMaxName = 64;               // profile / server / variable names
inline constexpr size_t kMaxEnvVars = 64;            // env fields in one SPAWN
inline constexpr size_t kMaxEnvTotal = 32 * 1024;    // sum of env field lengths in one SPAWN
inline constexpr size_t kMaxLogData = 48 * 1024;     // LOG data / EXITED tail, bytes
inline constexpr uint32_t kMaxLogLines = 1000;       // READ_LOG lines
inline constexpr uint32_t kMaxGraceMs = 300 * 1000;  // STOP grace_ms
inline constexpr size_t kMaxPem = 8 * 1024;          // one PEM value (internal TLS key, cert, CA)

// Message types. Requests (hub -> helper) have the high bit clear, replies and
// events (helper -> hub) have it set. Values are wire constants: never renumber.
enum class MsgType : uint8_t {
    Hello = 0x01,    // version negotiation (optional, first)
    Spawn = 0x02,    // start a server (first, or after HELLO)
    Attach = 0x03,   // reach the resident supervisor of a running server
    Stop = 0x04,     // SIGTERM the process group, grace, SIGKILL
    ReadLog = 0x05,  // last N lines of the server log
    Status = 0x06,   // is the server still running?

    HelloAns = 0x81,
    Started = 0x82,
    Attached = 0x83,
    Exited = 0x84,  // unsolicited: the server ended by itself
    Stopped = 0x85,
    Log = 0x86,
    StatusAns = 0x87,
    Error = 0xff,  // always followed by the helper closing the channel
};
static_assert(static_cast<uint8_t>(MsgType::Hello) == 0x01 && static_cast<uint8_t>(MsgType::Spawn) == 0x02);
static_assert(static_cast<uint8_t>(MsgType::Attach) == 0x03 && static_cast<uint8_t>(MsgType::Stop) == 0x04);
static_assert(static_cast<uint8_t>(MsgType::ReadLog) == 0x05 &&
              static_cast<uint8_t>(MsgType::Status) == 0x06);
static_assert(static_cast<uint8_t>(MsgType::HelloAns) == 0x81 &&
              static_cast<uint8_t>(MsgType::Started) == 0x82);
static_assert(static_cast<uint8_t>(MsgType::Attached) == 0x83 &&
              static_cast<uint8_t>(MsgType::Exited) == 0x84);
static_assert(static_cast<uint8_t>(MsgType::Stopped) == 0x85 && static_cast<uint8_t>(MsgType::Log) == 0x86);
static_assert(static_cast<uint8_t>(MsgType::StatusAns) == 0x87 &&
              static_cast<uint8_t>(MsgType::Error) == 0xff);

// Field tags. Wire constants: never renumber.
enum class Tag : uint8_t {
    Version = 1,         // u32
    Software = 2,        // text
    Profile = 3,         // name [a-z0-9_-]
    Port = 4,            // u32, 1..65535
    ServerName = 5,      // name [A-Za-z0-9._-], may be empty
    Env = 6,             // "NAME=value", repeatable
    Pid = 7,             // u32
    StartTime = 8,       // u64, /proc/PID/stat field 22 (clock ticks since boot)
    Uid = 9,             // u32
    Gid = 10,            // u32
    SupervisorPid = 11,  // u32
    LogPath = 12,        // text
    GraceMs = 13,        // u32 <= kMaxGraceMs
    Lines = 14,          // u32 1..kMaxLogLines
    ExitCode = 15,       // u32 (0..255)
    Signal = 16,         // u32 (1..64)
    Data = 17,           // bytes (untrusted log content)
    Outcome = 18,        // u8 StopOutcome
    Running = 19,        // u8 0/1
    Code = 20,           // u32 ErrorCode
    Message = 21,        // text
    TlsKey = 22,         // PEM: the server's private key (internal TLS)
    TlsCert = 23,        // PEM: the server's certificate
    TlsCa = 24,          // PEM: the CA whose client certificates the server accepts (the hub's)
};
static_assert(static_cast<uint8_t>(Tag::Version) == 1 && static_cast<uint8_t>(Tag::Message) == 21);
static_assert(static_cast<uint8_t>(Tag::TlsKey) == 22 && static_cast<uint8_t>(Tag::TlsCa) == 24);
inline constexpr uint8_t kMaxTag = 24;

// ERROR codes double as the helper's exit statuses (docs/protocol.md).
enum class ErrorCode : uint8_t {
    Internal = 1,        // unexpected system failure inside the helper
    Usage = 2,           // bad command line
    Policy = 3,          // policy file missing, unsafe or invalid
    Identity = 4,        // wrong uid/gid, root, below min_uid, capabilities
    Protocol = 5,        // malformed frame or message, message not allowed now
    Refused = 6,         // well-formed request the policy does not allow
    Exec = 7,            // the configured command could not be started
    NotFound = 8,        // ATTACH: no such server / stale pid / no supervisor
    AlreadyRunning = 9,  // SPAWN: this server is already supervised
    ServerExited = 10,   // the server ended by itself (after EXITED)
    Setup = 11,          // home, log file, fork, socket could not be prepared
};
static_assert(static_cast<uint8_t>(ErrorCode::Internal) == 1 && static_cast<uint8_t>(ErrorCode::Setup) == 11);

enum class StopOutcome : uint8_t {
    Terminated = 1,     // exited within the grace period after SIGTERM
    Killed = 2,         // still alive after the grace period: SIGKILLed
    AlreadyExited = 3,  // it had exited before the request was handled
};

struct EnvVar {
    std::string name;
    std::string value;
    bool operator==(const EnvVar&) const = default;
};

// Requests.
struct Hello {
    uint32_t version = kProtocolVersion;
    bool operator==(const Hello&) const = default;
};
struct Spawn {
    std::string profile;
    uint32_t port = 0;
    std::string serverName;  // optional on the wire, "" = default server
    std::vector<EnvVar> env;
    // Internal TLS (JupyterHub.internal_ssl): all three or none. The helper
    // writes them to files only the user can read; they never enter argv,
    // the environment or a log.
    std::string tlsKey{}, tlsCert{}, tlsCa{};  // {}: older aggregate initialisers stay complete
    bool operator==(const Spawn&) const = default;
};
struct Attach {
    uint32_t pid = 0;
    uint64_t startTime = 0;
    std::string serverName;
    bool operator==(const Attach&) const = default;
};
struct Stop {
    std::optional<uint32_t> graceMs;
    bool operator==(const Stop&) const = default;
};
struct ReadLog {
    uint32_t lines = 0;
    bool operator==(const ReadLog&) const = default;
};
struct Status {
    bool operator==(const Status&) const = default;
};

// Replies and events.
struct HelloAns {
    uint32_t version = kProtocolVersion;
    std::string software;
    bool operator==(const HelloAns&) const = default;
};
struct Started {
    uint32_t pid = 0;
    uint64_t startTime = 0;
    uint32_t uid = 0;
    uint32_t gid = 0;
    std::string serverName;
    std::string logPath;
    bool operator==(const Started&) const = default;
};
struct Attached {
    uint32_t pid = 0;
    uint64_t startTime = 0;
    uint32_t uid = 0;
    uint32_t supervisorPid = 0;
    std::string serverName;
    bool operator==(const Attached&) const = default;
};
struct Exited {
    uint32_t pid = 0;
    std::optional<uint32_t> exitCode;  // exactly one of exitCode / signal
    std::optional<uint32_t> signal;
    std::string logTail;  // bytes
    bool operator==(const Exited&) const = default;
};
struct Stopped {
    uint32_t pid = 0;
    StopOutcome outcome = StopOutcome::Terminated;
    std::optional<uint32_t> exitCode;  // exactly one of exitCode / signal
    std::optional<uint32_t> signal;
    bool operator==(const Stopped&) const = default;
};
struct Log {
    std::string data;
    bool operator==(const Log&) const = default;
};
struct StatusAns {
    uint32_t pid = 0;
    uint64_t startTime = 0;
    bool running = false;
    uint32_t supervisorPid = 0;
    bool operator==(const StatusAns&) const = default;
};
struct Error {
    ErrorCode code = ErrorCode::Internal;
    std::string message;
    bool operator==(const Error&) const = default;
};

using Message = std::variant<Hello, Spawn, Attach, Stop, ReadLog, Status, HelloAns, Started, Attached, Exited,
                             Stopped, Log, StatusAns, Error>;

MsgType typeOf(const Message& m);
std::string_view typeName(MsgType t);

// Bounds-checked reader over untrusted bytes. The first failure is recorded,
// later calls fail too, and outputs are left untouched on failure.
class WireReader {
public:
    explicit WireReader(std::span<const uint8_t> data) : data_(data) {}
    bool getU8(uint8_t& out);
    bool getU32(uint32_t& out);
    bool getU64(uint64_t& out);
    bool getBytes(size_t n, std::span<const uint8_t>& out);
    // A text value of exactly n bytes: at most maxLen, no NUL, no CR/LF.
    bool getString(size_t n, size_t maxLen, std::string& out);
    bool expectEnd();
    size_t remaining() const { return data_.size() - pos_; }
    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    bool fail(std::string why);

private:
    std::span<const uint8_t> data_;
    size_t pos_ = 0;
    std::string error_;
};

// Encodes a complete frame (header included). nullopt if the message breaks a
// bound the decoder would reject (oversized, bad names, NUL in text...), so a
// peer never sends what the other side must refuse.
std::optional<std::vector<uint8_t>> encode(const Message& m);

// The length field of a frame header: nullopt (with why) unless 1..kMaxFrame.
std::optional<uint32_t> decodeLength(std::span<const uint8_t, kHeaderSize> header,
                                     std::string* why = nullptr);

struct Decoded {
    std::optional<Message> message;  // set on success
    std::string error;               // set on failure: a sentence
};
// Decodes the frame body (type byte + payload) that followed a valid header.
Decoded decodeBody(std::span<const uint8_t> body);
// Decodes one whole frame; rejects anything after it.
Decoded decodeFrame(std::span<const uint8_t> frame);

// Validators shared by both peers.
bool validProfileName(std::string_view s);
bool validServerName(std::string_view s);
bool validEnvName(std::string_view s);
bool validText(std::string_view s, size_t maxLen);
// PEM text: "-----BEGIN " ... "-----END ", printable ASCII and LF only, at most kMaxPem.
bool validPem(std::string_view s);

}  // namespace hubproto
