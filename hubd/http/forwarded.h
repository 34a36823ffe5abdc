// SPDX-License-Identifier: BSD-3-Clause
// Who the client is and which URL it used, as seen through reverse proxies
// in front of hubd (Apache, nginx with TLS): X-Forwarded-For, -Proto and
// -Host are believed only when the socket peer is in
// JupyterHub.trusted_downstream_ips. From anyone else they are ignored, so a
// client cannot forge its address in the logs, or make the hub think a
// plain-HTTP request was HTTPS. See docs/proxy.md.
#pragma once

#include <string>

#include "http/server.h"
#include "hubcore/cidr.h"

namespace hubd::http {

struct ClientView {
    std::string address;  // the client's IP address (the peer's, unless a trusted proxy says otherwise)
    std::string scheme;   // "http" or "https"
    std::string host;     // host[:port] the client asked for; "" if none
    bool viaTrustedProxy = false;
};

// X-Forwarded-For is walked from the right, skipping trusted proxies; the
// first address that is not trusted is the client (a list of trusted hops
// only: its leftmost entry). An entry that is not an IP address ends the
// walk at the hop that wrote it. X-Forwarded-Proto: its last entry (what the
// nearest proxy saw, as Tornado reads it), "http" or "https" only.
// X-Forwarded-Host: its first entry (the host the browser used), else Host.
ClientView clientView(const Request& request, const hub::IpNetworkList& trusted);

}  // namespace hubd::http
