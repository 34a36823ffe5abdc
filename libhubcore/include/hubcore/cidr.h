// SPDX-License-Identifier: BSD-3-Clause
// IP addresses and CIDR networks, for JupyterHub.trusted_downstream_ips: which
// peers may tell hubd who the client is (X-Forwarded-*).
//
// IPv4 and IPv6 are separate families, as in Python's ipaddress: "::/0" does
// not contain 127.0.0.1. An IPv4-mapped IPv6 address (::ffff:127.0.0.1, what a
// dual-stack socket reports for an IPv4 peer) is treated as the IPv4 address it
// maps, in addresses and in networks alike, so such a peer matches "127.0.0.1".
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hub {

struct IpAddress {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};  // IPv4: the first 4 bytes, the rest zero

    int bits() const { return v6 ? 128 : 32; }
    bool operator==(const IpAddress&) const = default;
};

// Parses a literal address: dotted-quad IPv4 (no leading zeros, which some
// parsers read as octal) or IPv6 text (no zone id "%eth0", no brackets).
std::optional<IpAddress> parseIpAddress(std::string_view text);

struct IpNetwork {
    IpAddress base;  // host bits zero
    int prefix = 0;  // 0..32 or 0..128

    bool contains(const IpAddress& address) const;
};

// Parses "ADDRESS" (a single host: /32 or /128) or "ADDRESS/PREFIX". On
// failure returns nullopt and sets `why` to a sentence naming the fix, e.g.
// "10.0.0.1/8 has host bits set: write 10.0.0.0/8".
std::optional<IpNetwork> parseIpNetwork(std::string_view text, std::string& why);

// A set of networks; an address is in it if any network contains it.
class IpNetworkList {
public:
    IpNetworkList() = default;
    // Parses every entry; on the first bad one returns nullopt and sets `why`
    // to a sentence naming that entry and the fix.
    static std::optional<IpNetworkList> parse(const std::vector<std::string>& entries, std::string& why);

    bool contains(const IpAddress& address) const;
    // Text as a peer address or an X-Forwarded-For entry; anything that is not
    // an address (a name, "unknown", garbage) is never contained.
    bool contains(std::string_view address) const;
    bool empty() const { return networks_.empty(); }

private:
    std::vector<IpNetwork> networks_;
};

}  // namespace hub
