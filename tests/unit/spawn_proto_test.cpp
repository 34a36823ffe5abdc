// SPDX-License-Identifier: BSD-3-Clause
// Tests for libhubcore/proto/spawn_proto: framing, strict field parsing, bounds.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "spawn_proto.h"

using namespace hubproto;

namespace {

using Bytes = std::vector<uint8_t>;

void put32(Bytes& b, uint32_t v) {
    for (int i = 3; i >= 0; --i) b.push_back(uint8_t(v >> (8 * i)));
}
void field(Bytes& b, uint8_t tag, const Bytes& v) {
    b.push_back(tag);
    put32(b, static_cast<uint32_t>(v.size()));
    b.insert(b.end(), v.begin(), v.end());
}
void fieldStr(Bytes& b, uint8_t tag, const std::string& s) {
    field(b, tag, Bytes(s.begin(), s.end()));
}
void field32(Bytes& b, uint8_t tag, uint32_t v) {
    Bytes x;
    put32(x, v);
    field(b, tag, x);
}
Bytes frame(uint8_t type, const Bytes& payload) {
    Bytes f;
    put32(f, static_cast<uint32_t>(payload.size() + 1));
    f.push_back(type);
    f.insert(f.end(), payload.begin(), payload.end());
    return f;
}
Bytes spawnPayload() {
    Bytes p;
    fieldStr(p, 3, "default");
    field32(p, 4, 8888);
    fieldStr(p, 6, "JUPYTERHUB_API_TOKEN=secret");
    return p;
}
std::string decodeError(const Bytes& f) {
    auto d = decodeFrame(f);
    CHECK_FALSE(d.message.has_value());
    return d.error;
}

}  // namespace

TEST_CASE("every message round-trips through encode and decodeFrame") {
    const std::vector<Message> all{
        Hello{1},
        Spawn{"default", 8888, "lab", {{"JUPYTERHUB_API_TOKEN", "t0k"}, {"JUPYTERHUB_USER", "alice"}}},
        Attach{1234, 987654321ULL, ""},
        Stop{2500},
        Stop{},
        ReadLog{50},
        Status{},
        HelloAns{1, "sudospawner 0.1.0"},
        Started{42, 77, 1001, 1001, "", "/home/alice/.local/state/hubd/server.log"},
        Attached{42, 77, 1001, 41, "x"},
        Exited{42, 3, std::nullopt, std::string("line\n\0binary\xff", 13)},
        Exited{42, std::nullopt, 9, ""},
        Stopped{42, StopOutcome::Killed, std::nullopt, 9},
        Log{"a\nb\n"},
        StatusAns{42, 77, true, 41},
        Error{ErrorCode::Refused, "variable LD_PRELOAD is not in allow_env"},
    };
    for (const auto& m : all) {
        auto f = encode(m);
        REQUIRE(f.has_value());
        auto d = decodeFrame(*f);
        INFO(d.error);
        REQUIRE(d.message.has_value());
        CHECK(*d.message == m);
        CHECK(typeOf(*d.message) == typeOf(m));
    }
}

TEST_CASE("wire layout is big-endian length, type, tag-length-value") {
    auto f = encode(ReadLog{5});
    REQUIRE(f);
    CHECK(*f == Bytes{0, 0, 0, 10, 0x05, 14, 0, 0, 0, 4, 0, 0, 0, 5});
    CHECK(decodeFrame(frame(0x02, spawnPayload())).message.has_value());
}

TEST_CASE("frame length bounds are enforced on receive and send") {
    CHECK(decodeLength(std::span<const uint8_t, 4>(Bytes{0, 0, 0, 0}.data(), 4)) == std::nullopt);
    Bytes big{0, 1, 0, 1};  // 65537
    CHECK(decodeLength(std::span<const uint8_t, 4>(big.data(), 4)) == std::nullopt);
    Bytes max{0, 1, 0, 0};
    CHECK(decodeLength(std::span<const uint8_t, 4>(max.data(), 4)) == 65536u);
    CHECK_FALSE(encode(Log{std::string(kMaxLogData + 1, 'x')}).has_value());
    CHECK(encode(Log{std::string(kMaxLogData, 'x')}).has_value());
}

TEST_CASE("truncated, trailing and mismatched frames are rejected") {
    auto f = frame(0x02, spawnPayload());
    Bytes shortF(f.begin(), f.end() - 1);
    CHECK(decodeError(shortF).find("does not match") != std::string::npos);
    Bytes body(f.begin() + 4, f.end() - 3);  // cut inside the last field
    CHECK(decodeBody(body).error.find("truncated") != std::string::npos);
    Bytes trailing = spawnPayload();
    trailing.push_back(0x03);  // a lone tag byte
    CHECK_FALSE(decodeFrame(frame(0x02, trailing)).message);
    CHECK_FALSE(decodeFrame(Bytes{0, 0, 0}).message);
}

TEST_CASE("unknown types, unknown or misplaced tags and duplicates are rejected") {
    CHECK(decodeError(frame(0x07, {})).find("unknown message type") != std::string::npos);
    auto p = spawnPayload();
    fieldStr(p, 99, "x");
    CHECK(decodeError(frame(0x02, p)).find("not allowed") != std::string::npos);
    p = spawnPayload();
    field32(p, 7, 1);  // a pid in SPAWN: no such field
    CHECK(decodeError(frame(0x02, p)).find("not allowed") != std::string::npos);
    p = spawnPayload();
    fieldStr(p, 3, "other");
    CHECK(decodeError(frame(0x02, p)).find("twice") != std::string::npos);
    p = spawnPayload();
    fieldStr(p, 6, "JUPYTERHUB_API_TOKEN=again");
    CHECK(decodeError(frame(0x02, p)).find("twice") != std::string::npos);
}

TEST_CASE("missing required fields and wrong widths are rejected") {
    Bytes p;
    fieldStr(p, 3, "default");
    CHECK(decodeError(frame(0x02, p)).find("missing") != std::string::npos);
    Bytes q;
    fieldStr(q, 3, "default");
    field(q, 4, Bytes{0x22, 0xb8});  // a 2-byte port
    CHECK(decodeError(frame(0x02, q)).find("4 bytes") != std::string::npos);
    CHECK_FALSE(decodeFrame(frame(0x84, {})).message);  // EXITED without pid
    Bytes e;
    field32(e, 7, 5);  // EXITED with neither exit code nor signal
    CHECK(decodeError(frame(0x84, e)).find("exactly one") != std::string::npos);
}

TEST_CASE("text values: NUL, newline and length bounds") {
    auto withEnv = [](const std::string& kv) {
        Bytes p;
        fieldStr(p, 3, "default");
        field32(p, 4, 8888);
        fieldStr(p, 6, kv);
        return frame(0x02, p);
    };
    CHECK(decodeError(withEnv(std::string("JUPYTERHUB_USER=a\0b", 19))).find("NUL") != std::string::npos);
    CHECK_FALSE(decodeFrame(withEnv("JUPYTERHUB_USER=a\nb")).message);
    CHECK_FALSE(decodeFrame(withEnv("JUPYTERHUB_USER=a\rb")).message);
    CHECK(decodeFrame(withEnv("JUPYTERHUB_USER=" + std::string(kMaxText, 'v'))).message);
    CHECK_FALSE(decodeFrame(withEnv("JUPYTERHUB_USER=" + std::string(kMaxText + 1, 'v'))).message);
    CHECK_FALSE(decodeFrame(withEnv("lower=x")).message);
    CHECK_FALSE(decodeFrame(withEnv("NOEQUALS")).message);
    CHECK_FALSE(decodeFrame(withEnv("=x")).message);
    // Total environment bound: 9 x 4 KiB > 32 KiB.
    Spawn s{"default", 8888, "", {}};
    for (int i = 0; i < 9; ++i) s.env.push_back({"V" + std::to_string(i), std::string(4000, 'x')});
    CHECK_FALSE(encode(s).has_value());
}

TEST_CASE("names and ranges") {
    CHECK(validProfileName("default"));
    CHECK_FALSE(validProfileName(""));
    CHECK_FALSE(validProfileName("../x"));
    CHECK_FALSE(validProfileName("Default"));
    CHECK(validServerName(""));
    CHECK(validServerName("my-lab.2"));
    CHECK_FALSE(validServerName(".."));
    CHECK_FALSE(validServerName("a/b"));
    CHECK(validEnvName("JUPYTERHUB_API_TOKEN"));
    CHECK_FALSE(validEnvName("9X"));
    CHECK_FALSE(validEnvName("path"));
    CHECK_FALSE(encode(Spawn{"default", 0, "", {}}).has_value());
    CHECK_FALSE(encode(Spawn{"default", 70000, "", {}}).has_value());
    CHECK_FALSE(encode(ReadLog{0}).has_value());
    CHECK_FALSE(encode(Stop{kMaxGraceMs + 1}).has_value());
    CHECK_FALSE(encode(Spawn{"Bad Name", 8888, "", {}}).has_value());
}

TEST_CASE("WireReader records the first error and leaves outputs untouched") {
    const Bytes b{1, 2, 3};
    WireReader r(b);
    uint32_t v = 7;
    CHECK_FALSE(r.getU32(v));
    CHECK(v == 7);
    uint8_t u = 0;
    CHECK_FALSE(r.getU8(u));  // sticky failure
    CHECK(r.error().find("truncated") != std::string::npos);
    WireReader r2(b);
    CHECK(r2.getU8(u));
    CHECK(u == 1);
    CHECK_FALSE(r2.expectEnd());
    std::string s = "keep";
    WireReader r3(b);
    CHECK_FALSE(r3.getString(3, 2, s));
    CHECK(s == "keep");
}

namespace {

const std::string kKey =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n";
const std::string kCert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n-----END CERTIFICATE-----\n";

Spawn tlsSpawn() {
    Spawn s{"default", 8888, "", {{"JUPYTERHUB_USER", "alice"}}};
    s.tlsKey = kKey;
    s.tlsCert = kCert;
    s.tlsCa = kCert;
    return s;
}

Bytes spawnWithPem(uint8_t tag, const std::string& pem) {
    Bytes p = spawnPayload();
    for (uint8_t t : {22, 23, 24}) fieldStr(p, t, t == tag ? pem : kCert);
    return frame(0x02, p);
}

}  // namespace

TEST_CASE("SPAWN carries internal TLS material as PEM, newlines intact") {
    auto f = encode(tlsSpawn());
    REQUIRE(f.has_value());
    auto d = decodeFrame(*f);
    INFO(d.error);
    REQUIRE(d.message.has_value());
    const auto& s = std::get<Spawn>(*d.message);
    CHECK(s.tlsKey == kKey);
    CHECK(s.tlsCert == kCert);
    CHECK(s.tlsCa == kCert);
    CHECK(*d.message == Message(tlsSpawn()));
    // Without TLS the frame is what it was before internal TLS existed.
    CHECK(*encode(Spawn{"default", 8888, "", {{"JUPYTERHUB_API_TOKEN", "secret"}}}) ==
          frame(0x02, spawnPayload()));
    CHECK(std::get<Spawn>(*decodeFrame(frame(0x02, spawnPayload())).message).tlsKey.empty());
}

TEST_CASE("internal TLS fields: all three or none, strict PEM, bounded, SPAWN only") {
    // Partial sets: neither encoded nor accepted.
    Spawn partial = tlsSpawn();
    partial.tlsCa.clear();
    CHECK_FALSE(encode(partial).has_value());
    Bytes p = spawnPayload();
    fieldStr(p, 22, kKey);
    CHECK(decodeError(frame(0x02, p)).find("together") != std::string::npos);
    // Strict PEM text: a BEGIN line, an END line, printable ASCII and LF only.
    CHECK(decodeFrame(spawnWithPem(22, kKey)).message.has_value());
    CHECK(decodeError(spawnWithPem(22, "MIGHAgEAMBMG\n")).find("PEM") != std::string::npos);
    CHECK_FALSE(decodeFrame(spawnWithPem(22, "-----BEGIN X-----\nabc\n")).message);  // no END
    CHECK_FALSE(decodeFrame(spawnWithPem(23, "-----BEGIN X-----\r\n-----END X-----\r\n")).message);
    CHECK_FALSE(
        decodeFrame(spawnWithPem(23, std::string("-----BEGIN X-----\n\0\n-----END X-----\n", 37))).message);
    CHECK_FALSE(decodeFrame(spawnWithPem(24, "-----BEGIN X-----\n\xc3\xa9\n-----END X-----\n")).message);
    // Size bound, checked before the value is read.
    std::string big = "-----BEGIN X-----\n" + std::string(kMaxPem, 'A') + "\n-----END X-----\n";
    CHECK(decodeError(spawnWithPem(22, big)).find("longer than") != std::string::npos);
    Spawn tooBig = tlsSpawn();
    tooBig.tlsCert = big;
    CHECK_FALSE(encode(tooBig).has_value());
    // Only SPAWN may carry them.
    Bytes a;
    field32(a, 7, 42);
    Bytes st;
    for (int i = 7; i >= 0; --i) st.push_back(uint8_t(77ULL >> (8 * i)));
    field(a, 8, st);
    fieldStr(a, 22, kKey);
    CHECK(decodeError(frame(0x03, a)).find("not allowed") != std::string::npos);
    CHECK(validPem(kKey));
    CHECK_FALSE(validPem(""));
}
