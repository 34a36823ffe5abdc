// SPDX-License-Identifier: BSD-3-Clause
#include "tls_setup.h"

#include <cstdint>
#include <vector>

#include "http/listen_socket.h"
#include "hubcore/log.h"

namespace hubd {

std::shared_ptr<http::TlsContext> loadPublicTls(const hub::Settings& settings) {
    if (settings.sslCert.empty()) return nullptr;
    http::TlsSettings files;
    files.certFile = settings.sslCert;
    files.keyFile = settings.sslKey;
    files.ocspFile = settings.sslOcspResponse;
    files.allowWorldReadableKey = settings.sslAllowWorldReadableKey;
    std::vector<std::string> warnings;
    auto tls = std::make_shared<http::TlsContext>(std::move(files), warnings);
    for (const auto& w : warnings) hub::logWarning("{}", w);
    hub::logInfo("TLS certificate {}: {}", settings.sslCert, tls->summary());
    return tls;
}

void reloadPublicTls(http::TlsContext* tls) {
    if (!tls) {
        hub::logInfo("Received SIGHUP: nothing to reload (JupyterHub.ssl_cert is not set)");
        return;
    }
    std::vector<std::string> warnings;
    std::string error;
    bool ok = tls->reload(warnings, error);
    for (const auto& w : warnings) hub::logWarning("{}", w);
    if (ok)
        hub::logInfo(
            "Received SIGHUP: reloaded TLS certificate {}: {}; connections already open keep the "
            "previous one",
            tls->settings().certFile, tls->summary());
    else
        hub::logError("Received SIGHUP: TLS reload failed, still serving the previous certificate ({}): {}",
                      tls->summary(), error);
}

http::UniqueFd openRedirectListener(const hub::Settings& settings, const std::string& host) {
    if (settings.redirectHttpPort == 0) return {};
    uint16_t bound = 0;
    return http::openListeningSocket(host, static_cast<uint16_t>(settings.redirectHttpPort), bound);
}

void serveRedirectListener(http::HttpServer& server, http::UniqueFd fd) {
    http::SocketName name = http::localName(fd.get());
    server.adopt(fd.release());
    hub::logInfo("Plain HTTP on {} redirects to https", name.display());
}

}  // namespace hubd
