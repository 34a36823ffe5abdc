// SPDX-License-Identifier: BSD-3-Clause
// Public TLS for hubd's main(): loading the certificate from the settings,
// reloading it on SIGHUP, and the optional plain-HTTP redirect listener.
#pragma once

#include <memory>
#include <string>

#include "http/server.h"
#include "http/tls_context.h"
#include "http/unique_fd.h"
#include "hubcore/config.h"

namespace hubd {

// The context for JupyterHub.ssl_cert / ssl_key, or null when TLS is off.
// Logs the certificate and every warning; throws http::TlsError.
std::shared_ptr<http::TlsContext> loadPublicTls(const hub::Settings& settings);

// SIGHUP: re-reads the files. Connections keep their certificate; a failed
// reload keeps the old one and logs why and what to do.
void reloadPublicTls(http::TlsContext* tls);

// Binds JupyterHub.redirect_http_port on the public address (before
// capabilities are dropped: it is usually port 80); an empty fd when unset.
// Throws std::system_error naming the port and the fix.
http::UniqueFd openRedirectListener(const hub::Settings& settings, const std::string& host);

// Serves the redirect listener on `server` (created with httpsRedirectHandler).
void serveRedirectListener(http::HttpServer& server, http::UniqueFd fd);

}  // namespace hubd
