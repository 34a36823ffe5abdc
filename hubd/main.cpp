// SPDX-License-Identifier: BSD-3-Clause
// hubd: command line, start-up checks, listeners, and the event loop.
// The last of the three exception boundaries (docs/error-policy.md).
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "app/hub.h"
#include "app/metrics.h"
#include "check/check.h"
#include "http/https_redirect.h"
#include "http/server.h"
#include "hubcore/audit.h"
#include "hubcore/auth.h"
#include "hubcore/config.h"
#include "hubcore/cookie.h"
#include "hubcore/log.h"
#include "hubcore/store.h"
#include "internal_tls.h"
#include "listeners.h"
#include "privileges.h"
#include "socket_activation.h"
#include "sudoers_command.h"
#include "tls_setup.h"

namespace {

constexpr const char* kUsage = R"(Usage: hubd [-f CONFIG_FILE] [--Class.trait=VALUE ...]
       hubd sudoers --hub-user NAME (--group GROUP | --users A,B) [--helper PATH]
       hubd check [-f CONFIG_FILE] [--as USER] [--json]  (see hubd check --help)

hubd is a privilege-separated notebook hub: a JupyterHub-compatible hub,
proxy and OAuth provider that runs as an unprivileged user.

Options:
  -f, --config FILE   read a jupyterhub_config.py-style file (literal
                      assignments only: c.Class.trait = <literal>);
                      default: ./jupyterhub_config.py if it exists
  --Class.trait=VALUE override one setting, e.g.
                      --JupyterHub.bind_url=http://:8000
                      --Authenticator.admin_users="{'zoe'}"
  --check-config      load the configuration, report every problem, and exit
                      (0 when hubd would start with it)
  --allow-root        run even as root (refused otherwise: hubd is meant to run
                      as an unprivileged user; see docs/security-model.md)
  --help              show this help
  --help-all          list every setting with its default and help
  --version           print the version

The working directory holds jupyterhub.sqlite and jupyterhub_cookie_secret
unless configured otherwise. Documentation: docs/ in the source tree.
)";

struct ListenAddress {
    std::string scheme, host;
    uint16_t port = 0;
};

std::optional<ListenAddress> parseListenUrl(const std::string& url, std::string& error) {
    ListenAddress a;
    auto schemeEnd = url.find("://");
    if (schemeEnd == std::string::npos) {
        error = "URL " + url + " has no scheme: write it like http://127.0.0.1:8000";
        return std::nullopt;
    }
    a.scheme = url.substr(0, schemeEnd);
    std::string rest = url.substr(schemeEnd + 3);
    rest = rest.substr(0, rest.find('/'));
    std::string portText;
    if (!rest.empty() && rest[0] == '[') {
        auto close = rest.find(']');
        if (close == std::string::npos) {
            error = "URL " + url + " has an unterminated IPv6 address";
            return std::nullopt;
        }
        a.host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') portText = rest.substr(close + 2);
    } else {
        auto colon = rest.rfind(':');
        a.host = rest.substr(0, colon);
        if (colon != std::string::npos) portText = rest.substr(colon + 1);
    }
    if (portText.empty()) {
        a.port = a.scheme == "https" ? 443 : 80;
    } else {
        char* end = nullptr;
        long p = std::strtol(portText.c_str(), &end, 10);
        if (*end != '\0' || p < 0 || p > 65535) {
            error = "URL " + url + " has an invalid port";
            return std::nullopt;
        }
        a.port = static_cast<uint16_t>(p);
    }
    if (a.scheme != "http" && a.scheme != "https") {
        error = "URL " + url + ": the scheme must be http:// or https://";
        return std::nullopt;
    }
    return a;
}

// Binds every listener (or takes the sockets systemd passed), then drops
// every capability: CAP_NET_BIND_SERVICE, the one hubd may be given, is
// spent once the ports are bound, and no request has been read yet. Runs
// before the worker threads start, since capabilities belong to threads.
std::optional<hubd::Listeners> openListenersThenDropPrivileges(const ListenAddress& publicAddr,
                                                               const ListenAddress& hubAddr,
                                                               const hubd::ListenFds& inherited) {
    std::optional<hubd::Listeners> listeners;
    try {
        listeners = hubd::openListeners({publicAddr.host, publicAddr.port}, {hubAddr.host, hubAddr.port},
                                        inherited.sockets);
    } catch (const std::exception& e) {
        hub::logError("{}", e.what());
        return std::nullopt;
    }
    if (std::string error = hubd::dropCapabilities(); !error.empty()) {
        hub::logError("hubd did not start: {}", error);
        return std::nullopt;
    }
    return listeners;
}

// Hands the listeners to the servers and tells the hub where servers call
// back. False (logged) when there is no URL for the hub API.
bool serveListeners(hubd::Listeners& listeners, hubd::http::HttpServer& publicServer,
                    hubd::http::HttpServer& hubServer, const hub::Settings& settings, hubd::Hub& hub,
                    const std::string& scheme, std::shared_ptr<const hubd::http::TlsContext> tls) {
    const hubd::InternalTls* internal = hub.internalTls();
    const std::string hubScheme = internal ? "https" : "http";
    // "http://127.0.0.1:8000/", or "unix:/run/hubd.sock (base_url /)"; and who bound it.
    auto describe = [&](const hubd::OpenListener& l, const std::string& how, const std::string& path) {
        std::string where = l.name.inet() ? how + "://" + l.name.display() + path
                                          : l.name.display() + " (base_url " + settings.baseUrl + ")";
        return where + (l.inherited ? " (socket from the service manager)" : "");
    };
    hub::logInfo("hubd {} is running at {}", HUBD_VERSION,
                 describe(listeners.publicListener, scheme, settings.baseUrl));
    publicServer.adopt(listeners.publicListener.fd.release(), std::move(tls));
    if (listeners.hubListener) {
        hub::logInfo("Hub API for single-user servers at {}",
                     describe(*listeners.hubListener, hubScheme, settings.baseUrl + "hub/api"));
        hubServer.adopt(listeners.hubListener->fd.release(), internal ? internal->apiContext() : nullptr);
    }
    std::string error;
    std::string connect = hubd::hubConnectBase(listeners, settings.hubConnectUrl, error, hubScheme);
    if (connect.empty()) {
        hub::logError("{}", error);
        return false;
    }
    hub.setInternalApiUrl(connect + settings.baseUrl + "hub/api");
    return true;
}

// JupyterHub.internal_ssl: the CAs (created on first start), hubd's
// certificate for every name servers may call the hub API by, and the
// contexts of the proxy and the hub API listener (internal_tls.h).
bool setUpInternalTls(const hub::Settings& settings, const hubd::Listeners& listeners, hubd::Hub& hub) {
    if (!listeners.hubListener) {
        hub::logError(
            "JupyterHub.internal_ssl needs the hub API on its own TCP listener (hub_bind_url, default "
            "127.0.0.1:8081), not on the public one: pass a socket named \"hub\" or set hub_bind_url");
        return false;
    }
    std::string error;
    std::vector<std::string> names = {
        "IP:::1",
        hubd::InternalTls::altNameOfUrl(hubd::hubConnectBase(listeners, settings.hubConnectUrl, error)),
        hubd::InternalTls::altNameOfUrl(settings.hubBindUrl)};
    std::vector<std::string> notes;
    try {
        hub.setInternalTls(std::make_shared<const hubd::InternalTls>(settings, names, notes));
    } catch (const std::exception& e) {
        hub::logError("hubd did not start: internal TLS: {}", e.what());
        return false;
    }
    for (const auto& n : notes) hub::logInfo("{}", n);
    return true;
}

std::string sqlitePath(const std::string& dbUrl) {
    const std::string prefix = "sqlite:///";
    return dbUrl.rfind(prefix, 0) == 0 ? dbUrl.substr(prefix.size()) : dbUrl;
}

int run(int argc, char** argv) {
    const auto startedAt = std::chrono::steady_clock::now();  // jupyterhub_hub_startup_duration_seconds
    // Signals arrive through the loop (signalfd) so shutdown happens between
    // requests. They are blocked before any thread starts, since threads
    // inherit the mask and an unblocked worker would take SIGTERM's default.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);  // reloads the TLS certificate, reopens the audit log file
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    if (argc >= 2 && std::string(argv[1]) == "sudoers") return hubd::sudoersCommand(argc - 2, argv + 2);
    if (argc >= 2 && std::string(argv[1]) == "check") return hubd::check::checkCommand(argc - 2, argv + 2);
    std::optional<std::string> configFile;
    std::vector<std::string> overrides;
    bool checkOnly = false;
    bool allowRoot = false;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            return 0;
        }
        if (arg == "--help-all") {
            std::cout << kUsage << "\n" << hub::helpAllText();
            return 0;
        }
        if (arg == "--version") {
            std::cout << "hubd " << HUBD_VERSION << " (JupyterHub API 3.0.0)\n";
            return 0;
        }
        if (arg == "--check-config") {
            checkOnly = true;
        } else if (arg == "--allow-root") {
            allowRoot = true;
        } else if (arg == "-f" || arg == "--config") {
            if (i + 1 >= argc) {
                std::cerr << "hubd: " << arg << " needs a file name\n";
                return 2;
            }
            configFile = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            configFile = arg.substr(9);
        } else if (arg.rfind("--", 0) == 0 && arg.find('.') != std::string::npos) {
            overrides.push_back(arg);
        } else {
            std::cerr << "hubd: unknown argument '" << hub::safe(arg, 100) << "'; see hubd --help\n";
            return 2;
        }
    }

    // Before anything can start a child: the variables must not reach it.
    hubd::ListenFds inherited = hubd::takeListenFds();
    if (!inherited.note.empty()) hub::logWarning("{}", inherited.note);
    if (!inherited.error.empty()) {
        hub::logError("socket activation: {}", inherited.error);
        return 1;
    }

    // Like JupyterHub (JupyterHub.config_file), read ./jupyterhub_config.py
    // when no file is named: the seed guide starts the hub in the directory
    // that holds it.
    if (!configFile && ::access("jupyterhub_config.py", F_OK) == 0) {
        configFile = "jupyterhub_config.py";
        hub::logInfo("Loading configuration from ./jupyterhub_config.py");
    }
    hub::LoadResult loaded = hub::loadSettings(configFile, overrides);
    for (const auto& d : loaded.diagnostics) {
        if (d.severity == hub::ConfigDiagnostic::Severity::Error)
            hub::logError("{}", d.format());
        else
            hub::logWarning("{}", d.format());
    }
    if (!loaded.ok()) {
        hub::logError("hubd did not start: fix the configuration errors above");
        return 1;
    }
    if (checkOnly) {
        std::cout << "configuration OK" << (configFile ? ": " + *configFile : std::string()) << " ("
                  << loaded.diagnostics.size() << " warning(s))\n";
        return 0;
    }
    if (hubd::RootCheck root = hubd::checkRoot(::getuid(), ::geteuid(), allowRoot); root.refuse) {
        hub::logError("{}", root.message);
        return 1;
    } else if (!root.message.empty()) {
        hub::logWarning("{}", root.message);
    }
    hub::Settings& settings = loaded.settings;
    if (settings.logLevel == "DEBUG") hub::setLogLevel(hub::LogLevel::Debug);

    std::string error;
    auto publicAddr = parseListenUrl(settings.bindUrl, error);
    if (!publicAddr) {
        hub::logError("JupyterHub.bind_url: {}", error);
        return 1;
    }
    auto hubAddr = parseListenUrl(settings.hubBindUrl, error);
    if (!hubAddr) {
        hub::logError("JupyterHub.hub_bind_url: {}", error);
        return 1;
    }

    // TLS files are checked before anything is bound; the redirect port
    // (usually 80) is bound while hubd may still bind low ports.
    std::shared_ptr<hubd::http::TlsContext> tls;
    hubd::http::UniqueFd redirectFd;
    try {
        tls = hubd::loadPublicTls(settings);
        redirectFd = hubd::openRedirectListener(settings, publicAddr->host);
    } catch (const std::exception& e) {
        hub::logError("hubd did not start: {}", e.what());
        return 1;
    }

    std::optional<hubd::Listeners> listeners =
        openListenersThenDropPrivileges(*publicAddr, *hubAddr, inherited);
    if (!listeners) return 1;

    // Everything hubd writes (database, cookie secret) is private to the hub user.
    ::umask(077);

    try {
        hub::openAuditLog(settings.auditLog);
    } catch (const std::exception& e) {
        hub::logError("{}", e.what());
        return 1;
    }

    const char* envSecret = std::getenv("JPY_COOKIE_SECRET");
    hub::CookieSecretResult secret =
        hub::loadCookieSecret(settings.cookieSecret, envSecret, settings.cookieSecretFile);
    if (!secret.error.empty()) {
        hub::logError("{}", secret.error);
        return 1;
    }
    if (secret.generated) hub::logInfo("Wrote a new cookie secret to {}", settings.cookieSecretFile);
    if (envSecret) ::unsetenv("JPY_COOKIE_SECRET");  // nothing hubd starts needs it

    std::unique_ptr<hub::Store> store;
    try {
        store = hub::Store::open(sqlitePath(settings.dbUrl));
    } catch (const hub::StoreError& e) {
        hub::logError("{}", e.what());
        return 1;
    }

    std::unique_ptr<hub::Authenticator> authenticator = hub::makeAuthenticator(settings);
    hubd::http::EventLoop loop;
    hubd::http::WorkerPool workers(loop, 8);
    hubd::Hub hub(settings, std::move(store), std::move(authenticator), secret.secret, loop, workers);
    if (settings.internalSsl && !setUpInternalTls(settings, *listeners, hub)) return 1;
    std::vector<std::string> startErrors = hub.start();
    if (!startErrors.empty()) {
        for (const auto& e : startErrors) hub::logError("{}", e);
        hub::logError("hubd did not start: fix the errors above");
        return 1;
    }

    auto handler = [&hub](hubd::http::Request& request, hubd::http::Responder responder) {
        hub.handle(request, std::move(responder));
    };
    hubd::http::HttpServer publicServer(loop, {}, handler);
    // Proxied routes (/services/<name>/, /user/<name>/) are decided at head
    // time so their bodies stream; only the public server proxies.
    publicServer.setHeadHandler([&hub](hubd::http::HeadContext& context) { hub.handleHead(context); });
    hubd::http::HttpServer hubServer(loop, {}, handler);
    if (!serveListeners(*listeners, publicServer, hubServer, settings, hub, publicAddr->scheme, tls))
        return 1;
    hubd::metrics::registry().observeHubStartup(hubd::metrics::since(startedAt));
    if (listeners->redirect) {
        // The service manager's socket wins over redirect_http_port.
        if (!tls) {
            hub::logError(
                "socket activation passed a socket named \"redirect\", but TLS is off: it would redirect to "
                "an https port that does not exist. Set JupyterHub.ssl_cert and ssl_key, or remove the "
                "redirect socket from the socket unit");
            return 1;
        }
        redirectFd = std::move(listeners->redirect);
    }
    std::optional<hubd::http::HttpServer> redirectServer;
    if (redirectFd)
        hubd::serveRedirectListener(
            redirectServer.emplace(loop, hubd::http::Limits{},
                                   hubd::http::httpsRedirectHandler(listeners->publicListener.name.port)),
            std::move(redirectFd));

    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        hub::logError("signalfd failed: {}", std::strerror(errno));
        return 1;
    }
    loop.watch(sfd, EPOLLIN, [&](uint32_t) {
        signalfd_siginfo info{};
        bool stop = false;
        while (::read(sfd, &info, sizeof info) == sizeof info) {
            if (info.ssi_signo == SIGHUP) {
                hubd::reloadPublicTls(tls.get());  // certbot renewals need no restart
                hub::reopenAuditLog();             // logrotate moved it
                continue;
            }
            hub::logInfo("Received signal {}, shutting down",
                         info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            stop = true;
        }
        if (stop) loop.stop();
    });
    loop.run();
    loop.unwatch(sfd);
    ::close(sfd);
    hub::logInfo("hubd stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    ::signal(SIGPIPE, SIG_IGN);
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        hub::logError("hubd stopped on an unexpected error: {}", e.what());
    } catch (...) {
        hub::logError("hubd stopped on an unexpected error");
    }
    return 70;
}
