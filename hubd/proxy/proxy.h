// SPDX-License-Identifier: BSD-3-Clause
// The reverse-proxy engine: takes a client connection over at request-head
// time (HttpServer's HeadHandler), forwards the request to a backend and
// streams the answer back, or tunnels a WebSocket, then hands the client
// connection back to the server for its next request. See docs/proxy.md.
//
// MUST: every byte a backend sends is framed strictly (a duplicate or
// malformed Content-Length, CL with TE, or a coding other than chunked is a
// 502, never a guess), and what the client receives is re-framed by the
// proxy; buffers are bounded per direction (bufferBytes) and a full buffer
// stops reading the other side; every phase has a deadline; no failure of
// one exchange affects another or the loop; headers follow header_policy.h.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/event_loop.h"
#include "http/server.h"
#include "http/tls_client.h"
#include "hubcore/cidr.h"
#include "proxy/routes.h"
#include "proxy/upstream_pool.h"

namespace hubd::proxy {

struct ProxyConfig {
    std::chrono::milliseconds connectTimeout{5'000};  // 504 beyond
    std::chrono::milliseconds responseHeadTimeout{
        300'000};  // request sent → response head (notebook can be slow); 504
    std::chrono::milliseconds ioTimeout{300'000};  // no byte either way while a body streams; closes
    std::chrono::milliseconds tunnelIdleTimeout{3'600'000};  // WebSocket without a byte either way; closes
    std::chrono::milliseconds poolIdleTimeout{30'000};       // idle backend keep-alive connection; closed
    // forward()'s onTraffic runs at most this often per exchange while bytes
    // move (a WebSocket's frames, a long download): activity for the idle culler.
    std::chrono::milliseconds trafficReportInterval{5'000};
    size_t bufferBytes = 64 * 1024;           // per direction
    size_t maxResponseHeadBytes = 64 * 1024;  // 502 beyond
    size_t maxResponseHeaders = 200;          // 502 beyond
    size_t maxIdlePerBackend = 64;            // kept for reuse; more are closed when they finish
    // In use at once; 503 beyond. Below the ~28k ephemeral ports of one
    // destination (port exhaustion: CHP #557), above what a WebSocket-heavy
    // service needs.
    size_t maxConnectionsPerBackend = 16384;
    // Peers (JupyterHub.trusted_downstream_ips: addresses and CIDR
    // networks) whose X-Forwarded-* / Forwarded / X-Real-IP are believed;
    // from anyone else they are dropped and rebuilt.
    hub::IpNetworkList trustedProxies;
    // Authorization is forwarded (user servers and services accept tokens
    // issued for them); false drops it. The hub's cookies are never forwarded.
    bool forwardAuthorization = true;
    // Internal TLS: how https:// backends are reached (hubd's client
    // certificate, the servers CA, the peer-name check). Without it an
    // https:// route answers 502.
    std::shared_ptr<const http::TlsClientContext> upstreamTls;
};

struct ProxyStats {
    uint64_t requests = 0;         // exchanges started
    uint64_t tunnels = 0;          // WebSocket tunnels opened
    uint64_t errors = 0;           // 5xx answered by the proxy, or exchanges aborted
    size_t active = 0;             // exchanges in progress (tunnels included)
    size_t peakBufferedBytes = 0;  // largest sum of one exchange's buffers seen (the memory bound)
    size_t idleBackendConnections = 0;
    uint64_t reusedBackendConnections = 0;
};

class Proxy {
public:
    Proxy(http::EventLoop& loop, ProxyConfig config);
    ~Proxy();  // aborts exchanges in progress
    Proxy(const Proxy&) = delete;
    Proxy& operator=(const Proxy&) = delete;

    RouteTable& routes() { return routes_; }
    const ProxyConfig& config() const { return config_; }
    // Internal TLS is set up after the proxy exists (hubd's main).
    void setUpstreamTls(std::shared_ptr<const http::TlsClientContext> tls) {
        config_.upstreamTls = std::move(tls);
    }

    // For a HeadHandler: if a route matches the request path, takes the
    // connection over and forwards it; returns whether it did.
    bool forwardIfRouted(http::HeadContext& context);
    // Takes the connection over and forwards the request to `target`
    // (the caller has decided it may go there). `onTraffic`, if set, runs on
    // the loop when bytes pass either way, at most once per
    // trafficReportInterval, never after the exchange ends.
    void forward(http::HeadContext& context, std::shared_ptr<const Upstream> target,
                 std::function<void()> onTraffic = {});

    ProxyStats stats() const;

private:
    class Exchange;
    friend class Exchange;
    void finished(Exchange* exchange);

    http::EventLoop& loop_;
    ProxyConfig config_;
    RouteTable routes_;
    UpstreamPool pool_;
    std::unordered_map<Exchange*, std::unique_ptr<Exchange>> exchanges_;
    std::unordered_map<std::string, size_t> inUse_;  // backend connections per pool key
    std::unique_ptr<char[]> scratch_;                // one read buffer for all exchanges
    ProxyStats stats_;
};

}  // namespace hubd::proxy
