// SPDX-License-Identifier: BSD-3-Clause
#include "app/handoff_tickets.h"

#include <openssl/evp.h>

#include <algorithm>
#include <stdexcept>

#include "hubcore/cookie.h"
#include "hubcore/token.h"

namespace hubd {
namespace {

std::string sha256(std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 failed in OpenSSL");
    return hub::hexEncode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace

void HandoffTickets::purge(int64_t nowUnix) {
    std::erase_if(byHash_, [nowUnix](const auto& item) { return item.second.expires <= nowUnix; });
}

std::optional<std::string> HandoffTickets::issue(Grant grant, int64_t nowUnix) {
    purge(nowUnix);
    const auto recent = std::count_if(byHash_.begin(), byHash_.end(), [&](const auto& item) {
        return item.second.grant.userId == grant.userId && item.second.grant.label == grant.label;
    });
    if (static_cast<size_t>(recent) >= kMaxPerHost) return std::nullopt;
    std::string ticket = hub::generateToken();
    byHash_[sha256(ticket)] = Entry{std::move(grant), nowUnix + kLifetimeSeconds, false};
    return ticket;
}

std::optional<HandoffTickets::Grant> HandoffTickets::redeem(std::string_view ticket, std::string_view label,
                                                            int64_t nowUnix) {
    if (ticket.empty() || ticket.size() > 256) return std::nullopt;
    auto it = byHash_.find(sha256(ticket));
    if (it == byHash_.end()) return std::nullopt;
    Entry& entry = it->second;
    if (entry.spent || entry.expires <= nowUnix) return std::nullopt;
    entry.spent = true;
    if (entry.grant.label != label) return std::nullopt;
    return entry.grant;
}

}  // namespace hubd
