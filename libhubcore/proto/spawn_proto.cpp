// SPDX-License-Identifier: BSD-3-Clause
// spawn_proto: encoder and strict decoder for the hubd <-> sudospawner frames.
//
// Invariants:
// - Every byte from the peer MUST go through WireReader; no other code indexes
//   into untrusted buffers.
// - The set of fields each message may carry MUST come from kSpecs below, the
//   single table both encoder and decoder consult.
// - encode() MUST only produce frames decodeFrame() accepts (it checks itself).
#include "spawn_proto.h"

#include <algorithm>
#include <set>

namespace hubproto {
namespace {

enum class Kind : uint8_t { U8, U32, U64, Profile, ServerName, Text, Bytes, Env, Pem };

struct FieldSpec {
    Tag tag;
    Kind kind;
    bool required;
};

// One row per message type: the fields it may carry. Env is the only
// repeatable field (it has its own duplicate check on the variable name).
struct MsgSpec {
    MsgType type;
    std::string_view name;
    std::array<FieldSpec, 7> fields;
    size_t count;
};

constexpr FieldSpec F(Tag t, Kind k, bool req) {
    return {t, k, req};
}
constexpr FieldSpec kNone{Tag::Version, Kind::U8, false};

// clang-format off
constexpr std::array<MsgSpec, 14> kSpecs{{
    {MsgType::Hello, "HELLO", {F(Tag::Version, Kind::U32, true)}, 1},
    {MsgType::Spawn, "SPAWN", {F(Tag::Profile, Kind::Profile, true), F(Tag::Port, Kind::U32, true),
                               F(Tag::ServerName, Kind::ServerName, false), F(Tag::Env, Kind::Env, false),
                               F(Tag::TlsKey, Kind::Pem, false), F(Tag::TlsCert, Kind::Pem, false),
                               F(Tag::TlsCa, Kind::Pem, false)}, 7},
    {MsgType::Attach, "ATTACH", {F(Tag::Pid, Kind::U32, true), F(Tag::StartTime, Kind::U64, true),
                                 F(Tag::ServerName, Kind::ServerName, false)}, 3},
    {MsgType::Stop, "STOP", {F(Tag::GraceMs, Kind::U32, false)}, 1},
    {MsgType::ReadLog, "READ_LOG", {F(Tag::Lines, Kind::U32, true)}, 1},
    {MsgType::Status, "STATUS", {kNone}, 0},
    {MsgType::HelloAns, "HELLO_ANS", {F(Tag::Version, Kind::U32, true), F(Tag::Software, Kind::Text, true)}, 2},
    {MsgType::Started, "STARTED", {F(Tag::Pid, Kind::U32, true), F(Tag::StartTime, Kind::U64, true),
                                   F(Tag::Uid, Kind::U32, true), F(Tag::Gid, Kind::U32, true),
                                   F(Tag::ServerName, Kind::ServerName, false), F(Tag::LogPath, Kind::Text, true)}, 6},
    {MsgType::Attached, "ATTACHED", {F(Tag::Pid, Kind::U32, true), F(Tag::StartTime, Kind::U64, true),
                                     F(Tag::Uid, Kind::U32, true), F(Tag::SupervisorPid, Kind::U32, true),
                                     F(Tag::ServerName, Kind::ServerName, false)}, 5},
    {MsgType::Exited, "EXITED", {F(Tag::Pid, Kind::U32, true), F(Tag::ExitCode, Kind::U32, false),
                                 F(Tag::Signal, Kind::U32, false), F(Tag::Data, Kind::Bytes, false)}, 4},
    {MsgType::Stopped, "STOPPED", {F(Tag::Pid, Kind::U32, true), F(Tag::Outcome, Kind::U8, true),
                                   F(Tag::ExitCode, Kind::U32, false), F(Tag::Signal, Kind::U32, false)}, 4},
    {MsgType::Log, "LOG", {F(Tag::Data, Kind::Bytes, true)}, 1},
    {MsgType::StatusAns, "STATUS_ANS", {F(Tag::Pid, Kind::U32, true), F(Tag::StartTime, Kind::U64, true),
                                        F(Tag::Running, Kind::U8, true),
                                        F(Tag::SupervisorPid, Kind::U32, true)}, 4},
    {MsgType::Error, "ERROR", {F(Tag::Code, Kind::U32, true), F(Tag::Message, Kind::Text, true)}, 2},
}};
// clang-format on

const MsgSpec* specFor(uint8_t type) {
    for (const auto& s : kSpecs)
        if (static_cast<uint8_t>(s.type) == type) return &s;
    return nullptr;
}

// Decoded fields of one message, by tag. Integers are widened to u64.
struct Fields {
    std::array<bool, kMaxTag + 1> present{};
    std::array<uint64_t, kMaxTag + 1> num{};
    std::array<std::string, kMaxTag + 1> str{};
    std::vector<EnvVar> env;
    bool has(Tag t) const { return present[static_cast<uint8_t>(t)]; }
    uint64_t n(Tag t) const { return num[static_cast<uint8_t>(t)]; }
    const std::string& s(Tag t) const { return str[static_cast<uint8_t>(t)]; }
    std::optional<uint32_t> opt(Tag t) const {
        return has(t) ? std::optional<uint32_t>(static_cast<uint32_t>(n(t))) : std::nullopt;
    }
};

// Reads one field value of `kind` and length `len` into `f`.
bool readValue(WireReader& r, const FieldSpec& spec, uint32_t len, Fields& f) {
    const auto i = static_cast<uint8_t>(spec.tag);
    uint8_t u8 = 0;
    uint32_t u32 = 0;
    uint64_t u64 = 0;
    switch (spec.kind) {
        case Kind::U8:
            if (len != 1) return r.fail("field " + std::to_string(i) + " must be 1 byte");
            if (!r.getU8(u8)) return false;
            f.num[i] = u8;
            return true;
        case Kind::U32:
            if (len != 4) return r.fail("field " + std::to_string(i) + " must be 4 bytes");
            if (!r.getU32(u32)) return false;
            f.num[i] = u32;
            return true;
        case Kind::U64:
            if (len != 8) return r.fail("field " + std::to_string(i) + " must be 8 bytes");
            if (!r.getU64(u64)) return false;
            f.num[i] = u64;
            return true;
        case Kind::Profile:
            if (!r.getString(len, kMaxName, f.str[i])) return false;
            return validProfileName(f.str[i]) || r.fail("profile name must be 1-64 characters of [a-z0-9_-]");
        case Kind::ServerName:
            if (!r.getString(len, kMaxName, f.str[i])) return false;
            return validServerName(f.str[i]) ||
                   r.fail("server name must be 0-64 characters of [A-Za-z0-9._-]");
        case Kind::Text:
            return r.getString(len, kMaxText, f.str[i]);
        case Kind::Bytes: {
            std::span<const uint8_t> b;
            if (len > kMaxLogData)
                return r.fail("log data longer than " + std::to_string(kMaxLogData) + " bytes");
            if (!r.getBytes(len, b)) return false;
            f.str[i].assign(b.begin(), b.end());
            return true;
        }
        case Kind::Pem: {
            // Not getString: PEM needs its newlines. Same bounds discipline.
            std::span<const uint8_t> b;
            if (len > kMaxPem) return r.fail("PEM value longer than " + std::to_string(kMaxPem) + " bytes");
            if (!r.getBytes(len, b)) return false;
            f.str[i].assign(b.begin(), b.end());
            return validPem(f.str[i]) ||
                   r.fail("PEM value must be -----BEGIN ... -----END ... in printable ASCII and newlines");
        }
        case Kind::Env: {
            std::string kv;
            if (!r.getString(len, kMaxName + 1 + kMaxText, kv)) return false;
            const auto eq = kv.find('=');
            if (eq == std::string::npos) return r.fail("environment field must be NAME=value");
            EnvVar v{kv.substr(0, eq), kv.substr(eq + 1)};
            if (!validEnvName(v.name))
                return r.fail("environment variable name must match [A-Z_][A-Z0-9_]{0,63}");
            if (!validText(v.value, kMaxText))
                return r.fail("value of " + v.name + " is too long or has NUL/newline");
            for (const auto& e : f.env)
                if (e.name == v.name) return r.fail("environment variable " + v.name + " given twice");
            if (f.env.size() >= kMaxEnvVars)
                return r.fail("more than " + std::to_string(kMaxEnvVars) + " variables");
            f.env.push_back(std::move(v));
            return true;
        }
    }
    return r.fail("unreachable field kind");
}

// Range checks that belong to the protocol (not to policy).
std::string checkRanges(MsgType type, const Fields& f) {
    auto bad = [&](Tag t, uint64_t lo, uint64_t hi) { return f.has(t) && (f.n(t) < lo || f.n(t) > hi); };
    if (bad(Tag::Port, 1, 65535)) return "port must be 1-65535";
    if (bad(Tag::Version, 1, UINT32_MAX)) return "version must be at least 1";
    if (bad(Tag::Lines, 1, kMaxLogLines)) return "lines must be 1-" + std::to_string(kMaxLogLines);
    if (bad(Tag::GraceMs, 0, kMaxGraceMs)) return "grace_ms must be at most " + std::to_string(kMaxGraceMs);
    if (bad(Tag::Pid, 1, INT32_MAX) || bad(Tag::SupervisorPid, 1, INT32_MAX)) return "pid out of range";
    if (bad(Tag::Outcome, 1, 3)) return "unknown stop outcome";
    if (bad(Tag::Running, 0, 1)) return "running must be 0 or 1";
    if (bad(Tag::Code, 1, 11)) return "unknown error code";
    if (bad(Tag::ExitCode, 0, 255)) return "exit code must be 0-255";
    if (bad(Tag::Signal, 1, 64)) return "signal must be 1-64";
    size_t envTotal = 0;
    for (const auto& e : f.env) envTotal += e.name.size() + 1 + e.value.size();
    if (envTotal > kMaxEnvTotal) return "environment larger than " + std::to_string(kMaxEnvTotal) + " bytes";
    if ((type == MsgType::Exited || type == MsgType::Stopped) && f.has(Tag::ExitCode) == f.has(Tag::Signal))
        return "exactly one of exit_code and signal is required";
    if (f.has(Tag::TlsKey) != f.has(Tag::TlsCert) || f.has(Tag::TlsCert) != f.has(Tag::TlsCa))
        return "tls_key, tls_cert and tls_ca must be sent together";
    return {};
}

Message build(MsgType type, Fields& f) {
    auto u32 = [&](Tag t) { return static_cast<uint32_t>(f.n(t)); };
    auto take = [&](Tag t) { return std::move(f.str[static_cast<uint8_t>(t)]); };
    switch (type) {
        case MsgType::Hello:
            return Hello{u32(Tag::Version)};
        case MsgType::Spawn:
            return Spawn{take(Tag::Profile), u32(Tag::Port),     take(Tag::ServerName), std::move(f.env),
                         take(Tag::TlsKey),  take(Tag::TlsCert), take(Tag::TlsCa)};
        case MsgType::Attach:
            return Attach{u32(Tag::Pid), f.n(Tag::StartTime), take(Tag::ServerName)};
        case MsgType::Stop:
            return Stop{f.opt(Tag::GraceMs)};
        case MsgType::ReadLog:
            return ReadLog{u32(Tag::Lines)};
        case MsgType::Status:
            return Status{};
        case MsgType::HelloAns:
            return HelloAns{u32(Tag::Version), take(Tag::Software)};
        case MsgType::Started:
            return Started{u32(Tag::Pid), f.n(Tag::StartTime),   u32(Tag::Uid),
                           u32(Tag::Gid), take(Tag::ServerName), take(Tag::LogPath)};
        case MsgType::Attached:
            return Attached{u32(Tag::Pid), f.n(Tag::StartTime), u32(Tag::Uid), u32(Tag::SupervisorPid),
                            take(Tag::ServerName)};
        case MsgType::Exited:
            return Exited{u32(Tag::Pid), f.opt(Tag::ExitCode), f.opt(Tag::Signal), take(Tag::Data)};
        case MsgType::Stopped:
            return Stopped{u32(Tag::Pid), static_cast<StopOutcome>(f.n(Tag::Outcome)), f.opt(Tag::ExitCode),
                           f.opt(Tag::Signal)};
        case MsgType::Log:
            return Log{take(Tag::Data)};
        case MsgType::StatusAns:
            return StatusAns{u32(Tag::Pid), f.n(Tag::StartTime), f.n(Tag::Running) != 0,
                             u32(Tag::SupervisorPid)};
        case MsgType::Error:
            return Error{static_cast<ErrorCode>(f.n(Tag::Code)), take(Tag::Message)};
    }
    return Status{};  // unreachable: type came from kSpecs
}

// ---- encoding

class Writer {
public:
    void field(Tag t, std::span<const uint8_t> v) {
        out_.push_back(static_cast<uint8_t>(t));
        put32(static_cast<uint32_t>(v.size()));
        out_.insert(out_.end(), v.begin(), v.end());
    }
    void u8(Tag t, uint8_t v) { field(t, std::span<const uint8_t>(&v, 1)); }
    void u32(Tag t, uint32_t v) {
        std::array<uint8_t, 4> b{uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
        field(t, b);
    }
    void u64(Tag t, uint64_t v) {
        std::array<uint8_t, 8> b{};
        for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (56 - 8 * i));
        field(t, b);
    }
    void str(Tag t, std::string_view s) {
        field(t, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
    }
    void opt32(Tag t, const std::optional<uint32_t>& v) {
        if (v) u32(t, *v);
    }
    void optServer(const std::string& s) {
        if (!s.empty()) str(Tag::ServerName, s);
    }
    std::vector<uint8_t> frame(MsgType type) const {
        std::vector<uint8_t> f;
        const auto len = static_cast<uint32_t>(out_.size() + 1);
        f = {uint8_t(len >> 24), uint8_t(len >> 16), uint8_t(len >> 8), uint8_t(len),
             static_cast<uint8_t>(type)};
        f.insert(f.end(), out_.begin(), out_.end());
        return f;
    }

private:
    void put32(uint32_t v) {
        for (int i = 0; i < 4; ++i) out_.push_back(uint8_t(v >> (24 - 8 * i)));
    }
    std::vector<uint8_t> out_;
};

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

void encodeFields(const Message& m, Writer& w) {
    std::visit(Overloaded{
                   [&](const Hello& x) { w.u32(Tag::Version, x.version); },
                   [&](const Spawn& x) {
                       w.str(Tag::Profile, x.profile);
                       w.u32(Tag::Port, x.port);
                       w.optServer(x.serverName);
                       for (const auto& e : x.env) w.str(Tag::Env, e.name + "=" + e.value);
                       // All or none: a partial set fails the self-check in encode().
                       if (!x.tlsKey.empty()) w.str(Tag::TlsKey, x.tlsKey);
                       if (!x.tlsCert.empty()) w.str(Tag::TlsCert, x.tlsCert);
                       if (!x.tlsCa.empty()) w.str(Tag::TlsCa, x.tlsCa);
                   },
                   [&](const Attach& x) {
                       w.u32(Tag::Pid, x.pid);
                       w.u64(Tag::StartTime, x.startTime);
                       w.optServer(x.serverName);
                   },
                   [&](const Stop& x) { w.opt32(Tag::GraceMs, x.graceMs); },
                   [&](const ReadLog& x) { w.u32(Tag::Lines, x.lines); },
                   [&](const Status&) {},
                   [&](const HelloAns& x) {
                       w.u32(Tag::Version, x.version);
                       w.str(Tag::Software, x.software);
                   },
                   [&](const Started& x) {
                       w.u32(Tag::Pid, x.pid);
                       w.u64(Tag::StartTime, x.startTime);
                       w.u32(Tag::Uid, x.uid);
                       w.u32(Tag::Gid, x.gid);
                       w.optServer(x.serverName);
                       w.str(Tag::LogPath, x.logPath);
                   },
                   [&](const Attached& x) {
                       w.u32(Tag::Pid, x.pid);
                       w.u64(Tag::StartTime, x.startTime);
                       w.u32(Tag::Uid, x.uid);
                       w.u32(Tag::SupervisorPid, x.supervisorPid);
                       w.optServer(x.serverName);
                   },
                   [&](const Exited& x) {
                       w.u32(Tag::Pid, x.pid);
                       w.opt32(Tag::ExitCode, x.exitCode);
                       w.opt32(Tag::Signal, x.signal);
                       if (!x.logTail.empty()) w.str(Tag::Data, x.logTail);
                   },
                   [&](const Stopped& x) {
                       w.u32(Tag::Pid, x.pid);
                       w.u8(Tag::Outcome, static_cast<uint8_t>(x.outcome));
                       w.opt32(Tag::ExitCode, x.exitCode);
                       w.opt32(Tag::Signal, x.signal);
                   },
                   [&](const Log& x) { w.str(Tag::Data, x.data); },
                   [&](const StatusAns& x) {
                       w.u32(Tag::Pid, x.pid);
                       w.u64(Tag::StartTime, x.startTime);
                       w.u8(Tag::Running, x.running ? 1 : 0);
                       w.u32(Tag::SupervisorPid, x.supervisorPid);
                   },
                   [&](const Error& x) {
                       w.u32(Tag::Code, static_cast<uint32_t>(x.code));
                       w.str(Tag::Message, x.message);
                   },
               },
               m);
}

bool isText(char c) {
    return c != '\0' && c != '\n' && c != '\r';
}

}  // namespace

// ---- WireReader

bool WireReader::fail(std::string why) {
    if (error_.empty()) error_ = why.empty() ? "malformed message" : std::move(why);
    return false;
}

bool WireReader::getBytes(size_t n, std::span<const uint8_t>& out) {
    if (!ok()) return false;
    if (n > remaining())
        return fail("message truncated: need " + std::to_string(n) + " bytes, have " +
                    std::to_string(remaining()));
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
}

bool WireReader::getU8(uint8_t& out) {
    std::span<const uint8_t> b;
    if (!getBytes(1, b)) return false;
    out = b[0];
    return true;
}

bool WireReader::getU32(uint32_t& out) {
    std::span<const uint8_t> b;
    if (!getBytes(4, b)) return false;
    out = uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | uint32_t(b[3]);
    return true;
}

bool WireReader::getU64(uint64_t& out) {
    std::span<const uint8_t> b;
    if (!getBytes(8, b)) return false;
    uint64_t v = 0;
    for (auto c : b) v = v << 8 | c;
    out = v;
    return true;
}

bool WireReader::getString(size_t n, size_t maxLen, std::string& out) {
    if (!ok()) return false;
    if (n > maxLen) return fail("value longer than " + std::to_string(maxLen) + " bytes");
    std::span<const uint8_t> b;
    if (!getBytes(n, b)) return false;
    std::string s(b.begin(), b.end());
    if (!std::all_of(s.begin(), s.end(), isText)) return fail("text value contains NUL or newline");
    out = std::move(s);
    return true;
}

bool WireReader::expectEnd() {
    if (!ok()) return false;
    return remaining() == 0 || fail(std::to_string(remaining()) + " trailing bytes after the message");
}

// ---- validators

bool validText(std::string_view s, size_t maxLen) {
    return s.size() <= maxLen && std::all_of(s.begin(), s.end(), isText);
}

bool validPem(std::string_view s) {
    return s.size() <= kMaxPem && s.starts_with("-----BEGIN ") &&
           s.find("-----END ") != std::string_view::npos &&
           std::all_of(s.begin(), s.end(), [](char c) { return c == '\n' || (c >= 0x20 && c <= 0x7e); });
}

bool validProfileName(std::string_view s) {
    return !s.empty() && s.size() <= kMaxName && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

bool validServerName(std::string_view s) {
    return s.size() <= kMaxName && s != "." && s != ".." && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-' || c == '.';
           });
}

bool validEnvName(std::string_view s) {
    if (s.empty() || s.size() > kMaxName || (s[0] >= '0' && s[0] <= '9')) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; });
}

// ---- messages

MsgType typeOf(const Message& m) {
    constexpr std::array<MsgType, std::variant_size_v<Message>> kOrder{
        MsgType::Hello,   MsgType::Spawn,    MsgType::Attach,    MsgType::Stop,     MsgType::ReadLog,
        MsgType::Status,  MsgType::HelloAns, MsgType::Started,   MsgType::Attached, MsgType::Exited,
        MsgType::Stopped, MsgType::Log,      MsgType::StatusAns, MsgType::Error};
    return kOrder[m.index()];
}

std::string_view typeName(MsgType t) {
    const MsgSpec* s = specFor(static_cast<uint8_t>(t));
    return s ? s->name : std::string_view("UNKNOWN");
}

std::optional<uint32_t> decodeLength(std::span<const uint8_t, kHeaderSize> h, std::string* why) {
    const uint32_t len = uint32_t(h[0]) << 24 | uint32_t(h[1]) << 16 | uint32_t(h[2]) << 8 | uint32_t(h[3]);
    if (len == 0 || len > kMaxFrame) {
        if (why) *why = "frame length " + std::to_string(len) + " is outside 1-" + std::to_string(kMaxFrame);
        return std::nullopt;
    }
    return len;
}

Decoded decodeBody(std::span<const uint8_t> body) {
    if (body.empty() || body.size() > kMaxFrame) return {std::nullopt, "frame body size out of range"};
    const MsgSpec* spec = specFor(body[0]);
    if (!spec) return {std::nullopt, "unknown message type " + std::to_string(body[0])};
    WireReader r(body.subspan(1));
    Fields f;
    while (r.ok() && r.remaining() > 0) {
        uint8_t tag = 0;
        uint32_t len = 0;
        if (!r.getU8(tag) || !r.getU32(len)) break;
        const FieldSpec* fs = nullptr;
        for (size_t i = 0; i < spec->count; ++i)
            if (static_cast<uint8_t>(spec->fields[i].tag) == tag) fs = &spec->fields[i];
        if (!fs) {
            r.fail("field tag " + std::to_string(tag) + " is not allowed in " + std::string(spec->name));
            break;
        }
        if (f.present[tag] && fs->kind != Kind::Env) {
            r.fail("field tag " + std::to_string(tag) + " appears twice in " + std::string(spec->name));
            break;
        }
        f.present[tag] = true;
        if (!readValue(r, *fs, len, f)) break;
    }
    if (!r.expectEnd()) return {std::nullopt, std::string(spec->name) + ": " + r.error()};
    for (size_t i = 0; i < spec->count; ++i)
        if (spec->fields[i].required && !f.has(spec->fields[i].tag))
            return {std::nullopt, std::string(spec->name) + ": required field tag " +
                                      std::to_string(static_cast<int>(spec->fields[i].tag)) + " is missing"};
    if (auto why = checkRanges(spec->type, f); !why.empty())
        return {std::nullopt, std::string(spec->name) + ": " + why};
    return {build(spec->type, f), {}};
}

Decoded decodeFrame(std::span<const uint8_t> frame) {
    if (frame.size() < kHeaderSize + 1) return {std::nullopt, "frame truncated"};
    std::string why;
    auto len = decodeLength(frame.first<kHeaderSize>(), &why);
    if (!len) return {std::nullopt, why};
    if (frame.size() != kHeaderSize + *len)
        return {std::nullopt, "frame length " + std::to_string(*len) + " does not match " +
                                  std::to_string(frame.size() - kHeaderSize) + " bytes received"};
    return decodeBody(frame.subspan(kHeaderSize));
}

std::optional<std::vector<uint8_t>> encode(const Message& m) {
    Writer w;
    encodeFields(m, w);
    auto frame = w.frame(typeOf(m));
    if (frame.size() > kHeaderSize + kMaxFrame) return std::nullopt;
    // Self-check: refuse to send what the peer's decoder would refuse.
    if (!decodeFrame(frame).message) return std::nullopt;
    return frame;
}

}  // namespace hubproto
