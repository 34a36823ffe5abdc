// SPDX-License-Identifier: BSD-3-Clause
#include "hubcore/cidr.h"

#include "hubcore/log.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstring>

namespace hub {
namespace {

// Long enough for any IPv6 text with an embedded IPv4 part (45 characters).
constexpr std::size_t kMaxAddressText = INET6_ADDRSTRLEN;

bool isMappedV4(const std::array<uint8_t, 16>& b) {
    return std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; }) && b[10] == 0xff &&
           b[11] == 0xff;
}

std::string format(const IpAddress& a) {
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(a.v6 ? AF_INET6 : AF_INET, a.bytes.data(), text, sizeof text);
    return text;
}

// Zeroes every bit after the first `prefix`.
IpAddress masked(IpAddress a, int prefix) {
    for (int i = 0; i < 16; ++i) {
        const int keep = std::clamp(prefix - i * 8, 0, 8);
        a.bytes[static_cast<std::size_t>(i)] &= static_cast<uint8_t>(0xff00u >> keep);
    }
    return a;
}

// The user-facing spelling of a network, for suggestions.
std::string format(const IpNetwork& n) {
    return fmt::format("{}/{}", format(n.base), n.prefix);
}

}  // namespace

std::optional<IpAddress> parseIpAddress(std::string_view text) {
    // inet_pton wants a C string: bound the length and allow only the
    // characters of address text, so no NUL, '%' zone or space gets through.
    if (text.empty() || text.size() >= kMaxAddressText) return std::nullopt;
    const bool allowed = std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' ||
               c == ':';
    });
    if (!allowed) return std::nullopt;
    char buf[kMaxAddressText];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddress a;
    if (text.find(':') == std::string_view::npos) {
        // glibc's inet_pton takes exactly four decimal parts without leading
        // zeros (inet_aton would read "010" as octal and "1.2" as 1.0.0.2).
        if (::inet_pton(AF_INET, buf, a.bytes.data()) != 1) return std::nullopt;
        return a;
    }
    if (::inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
    if (isMappedV4(a.bytes)) {
        std::array<uint8_t, 16> v4{};
        std::copy(a.bytes.begin() + 12, a.bytes.end(), v4.begin());
        a.bytes = v4;
        return a;
    }
    a.v6 = true;
    return a;
}

bool IpNetwork::contains(const IpAddress& address) const {
    return address.v6 == base.v6 && masked(address, prefix) == base;
}

std::optional<IpNetwork> parseIpNetwork(std::string_view text, std::string& why) {
    const std::size_t slash = text.find('/');
    const std::string_view addressText = text.substr(0, slash);
    auto address = parseIpAddress(addressText);
    if (!address) {
        why =
            "it is not an IPv4 or IPv6 address (write e.g. 127.0.0.1, 10.0.0.0/8, ::1 or fd00::/8; host "
            "names and zone ids are not accepted)";
        return std::nullopt;
    }
    IpNetwork n;
    n.prefix = address->bits();
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        const bool numeric =
            !digits.empty() && digits.size() <= 3 &&
            std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
        int prefix = 0;
        if (numeric)  // at most 3 digits: no overflow
            for (char c : digits) prefix = prefix * 10 + (c - '0');
        // Written as IPv6, the prefix counts 128 bits, also for a mapped IPv4 base.
        const int writtenBits = addressText.find(':') != std::string_view::npos ? 128 : 32;
        if (!numeric || prefix > writtenBits) {
            why = fmt::format("the prefix length after '/' must be a number from 0 to {}", writtenBits);
            return std::nullopt;
        }
        if (!address->v6 && writtenBits == 128) {
            if (prefix < 96) {
                why =
                    "an IPv4-mapped network (::ffff:a.b.c.d) needs a prefix of at least 96: write the IPv4 "
                    "network instead, e.g. 10.0.0.0/8";
                return std::nullopt;
            }
            prefix -= 96;
        }
        n.prefix = prefix;
    }
    n.base = masked(*address, n.prefix);
    if (!(n.base == *address)) {
        why = fmt::format("the address has bits set beyond the /{} prefix: write {}", n.prefix, format(n));
        return std::nullopt;
    }
    return n;
}

std::optional<IpNetworkList> IpNetworkList::parse(const std::vector<std::string>& entries, std::string& why) {
    IpNetworkList list;
    for (const auto& entry : entries) {
        std::string reason;
        auto n = parseIpNetwork(entry, reason);
        if (!n) {
            why = fmt::format("'{}' is not an IP address or CIDR network: {}", safe(entry, 60), reason);
            return std::nullopt;
        }
        list.networks_.push_back(*n);
    }
    return list;
}

bool IpNetworkList::contains(const IpAddress& address) const {
    return std::any_of(networks_.begin(), networks_.end(),
                       [&](const IpNetwork& n) { return n.contains(address); });
}

bool IpNetworkList::contains(std::string_view address) const {
    if (networks_.empty()) return false;
    auto a = parseIpAddress(address);
    return a && contains(*a);
}

}  // namespace hub
