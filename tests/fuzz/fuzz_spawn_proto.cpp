// SPDX-License-Identifier: BSD-3-Clause
// libFuzzer target for the hubd <-> sudospawner codec (libhubcore/proto).
//
// Checks, beyond "no crash, no sanitizer report":
// - decodeFrame either returns a message or a non-empty error sentence;
// - every accepted message re-encodes, and the re-encoded frame decodes to an
//   equal message (the encoder and decoder agree on one grammar);
// - decodeLength accepts exactly 1..kMaxFrame.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "spawn_proto.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace hubproto;
    const std::span<const uint8_t> in(data, size);

    const Decoded d = decodeFrame(in);
    if (d.message.has_value() == !d.error.empty()) std::abort();
    if (d.message) {
        const auto again = encode(*d.message);
        if (!again) std::abort();
        const Decoded d2 = decodeFrame(*again);
        if (!d2.message || !(*d2.message == *d.message)) std::abort();
    }

    // The body path (what the streaming reader hands over after the header).
    const Decoded b = decodeBody(in);
    if (b.message.has_value() == !b.error.empty()) std::abort();

    if (size >= kHeaderSize) {
        const auto len = decodeLength(in.first<kHeaderSize>());
        const uint32_t raw =
            uint32_t(data[0]) << 24 | uint32_t(data[1]) << 16 | uint32_t(data[2]) << 8 | data[3];
        if (len.has_value() != (raw >= 1 && raw <= kMaxFrame)) std::abort();
    }
    return 0;
}
