// SPDX-License-Identifier: BSD-3-Clause
// Server life cycle through the sudospawner helper (docs/protocol.md).
#include "app/servers.h"

#include "app/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "app/hub.h"
#include "app/idle_culler.h"
#include "app/json.h"
#include "app/subdomains.h"
#include "http/transport.h"
#include "hubcore/log.h"
#include "hubcore/token.h"

namespace hubd {

using Phase = ServerState::Phase;
using hubd::http::UniqueFd;

namespace {

constexpr uint32_t kStopGraceMs = 10'000;

// A free TCP port on loopback, as JupyterHub's random_port() picks one.
uint16_t randomPort() {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        return 0;
    return ntohs(addr.sin_port);
}

double msSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

std::string exitDescription(const std::optional<uint32_t>& code, const std::optional<uint32_t>& signal) {
    if (signal)
        return fmt::format("was killed by signal {} ({})", *signal, ::strsignal(static_cast<int>(*signal)));
    return fmt::format("exited with status {}", code.value_or(0));
}

// One HTTP request to the server's prefix; answers any status below 500 as up.
// With internal TLS (`tls` set) it is HTTPS with hubd's client certificate,
// and only a server whose certificate names `peer` counts.
class ReadinessProbe : public std::enable_shared_from_this<ReadinessProbe> {
public:
    using Done = std::function<void(bool up)>;
    ReadinessProbe(hubd::http::EventLoop& loop, uint16_t port, std::string path,
                   std::shared_ptr<const hubd::http::TlsClientContext> tls, std::string peer, Done done)
        : loop_(loop),
          port_(port),
          path_(std::move(path)),
          tls_(std::move(tls)),
          peer_(std::move(peer)),
          done_(std::move(done)) {}

    void run() {
        fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port_);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (!fd_ || (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
                     errno != EINPROGRESS))
            return finish(false);
        if (tls_) {
            auto ssl = tls_->newSession(fd_.get(), peer_);
            if (!ssl) return finish(false);
            transport_ = hubd::http::Transport(std::move(ssl));
        }
        auto self = shared_from_this();
        request_ = "GET " + path_ + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                   "\r\nConnection: close\r\nUser-Agent: hubd-readiness\r\n\r\n";
        loop_.watch(fd_.get(), EPOLLOUT, [self](uint32_t ev) { self->onEvent(ev); });
        timer_ = loop_.addTimer(std::chrono::seconds(2), [self] { self->finish(false); });
    }

private:
    void onEvent(uint32_t ev) {
        if (ev & (EPOLLERR | EPOLLHUP) && response_.empty() && !(ev & EPOLLIN)) return finish(false);
        if (!request_.empty()) {
            // Plain: the connect finished. TLS: the handshake runs inside this write.
            ssize_t n = transport_.write(fd_.get(), request_.data(), request_.size());
            if (n < 0 && errno != EAGAIN) return finish(false);
            if (n > 0) request_.erase(0, static_cast<size_t>(n));
        }
        if (request_.empty()) {
            char buf[512];
            ssize_t n = transport_.read(fd_.get(), buf, sizeof buf);
            if (n > 0) response_.append(buf, static_cast<size_t>(n));
            if (n == 0 || response_.size() >= 12) {
                // "HTTP/1.1 302" — the status code is bytes 9..11.
                bool up = response_.size() >= 12 && response_.compare(0, 5, "HTTP/") == 0 &&
                          response_[9] >= '1' && response_[9] <= '4';
                return finish(up);
            }
            if (n < 0 && errno != EAGAIN) return finish(false);
        }
        // A TLS write waiting for handshake bytes needs EPOLLIN, not EPOLLOUT.
        uint32_t want = request_.empty() || transport_.writeBlockedOnRead() ? EPOLLIN : EPOLLOUT;
        loop_.modify(fd_.get(), transport_.events(want));
    }

    void finish(bool up) {
        if (!done_) return;
        if (fd_) loop_.unwatch(fd_.get());
        transport_ = hubd::http::Transport{};
        fd_.reset();
        if (timer_) loop_.cancelTimer(timer_);
        auto done = std::move(done_);
        done_ = nullptr;
        done(up);
    }

    hubd::http::EventLoop& loop_;
    uint16_t port_;
    std::string path_;
    std::shared_ptr<const hubd::http::TlsClientContext> tls_;
    std::string peer_;
    Done done_;
    UniqueFd fd_;
    hubd::http::Transport transport_;
    std::string request_, response_;
    hubd::http::EventLoop::TimerId timer_ = 0;
};

}  // namespace

ServerManager::ServerManager(Hub& hub) : hub_(hub) {}

ServerManager::~ServerManager() {
    detachAll();
}

ServerState& ServerManager::slot(int64_t userId) {
    return servers_[userId];
}

const ServerState* ServerManager::state(int64_t userId) const {
    auto it = servers_.find(userId);
    return it == servers_.end() ? nullptr : &it->second;
}

std::string ServerManager::prefixOf(const std::string& userName) const {
    return hub_.baseUrl() + "user/" + urlEncode(userName) + "/";
}

std::string ServerManager::urlOf(const std::string& userName) const {
    const Subdomains* subdomains = hub_.subdomains();
    return (subdomains ? subdomains->userOrigin(userName) : std::string()) + prefixOf(userName);
}

std::vector<std::string> ServerManager::helperArgv(const std::string& userName) const {
    const auto& s = hub_.settings();
    // Exactly the command the sudoers rule allows, with no arguments: sudo -n
    // fails at once instead of asking for a password.
    if (s.spawnerClass == "sudo") return {"/usr/bin/sudo", "-n", "-u", userName, s.sudospawnerPath};
    return {s.sudospawnerPath};  // same-user mode: the helper runs as the hub user
}

std::vector<std::pair<std::string, std::string>> ServerManager::environment(const hub::UserRecord& user,
                                                                            const ServerState& s,
                                                                            const std::string& token) const {
    const auto& settings = hub_.settings();
    std::string prefix = prefixOf(user.name);
    std::string api = hub_.internalApiUrl();
    std::string scopes =
        fmt::format("[\"access:servers!server={}/\", \"access:servers!user={}\"]", user.name, user.name);
    std::vector<std::pair<std::string, std::string>> env = {
        {"JUPYTERHUB_API_TOKEN", token},
        {"JPY_API_TOKEN", token},
        {"JUPYTERHUB_CLIENT_ID", "jupyterhub-user-" + urlEncode(user.name)},
        {"JUPYTERHUB_API_URL", api},
        {"JUPYTERHUB_ACTIVITY_URL", api + "/users/" + urlEncode(user.name) + "/activity"},
        {"JUPYTERHUB_BASE_URL", settings.baseUrl},
        {"JUPYTERHUB_SERVICE_PREFIX", prefix},
        {"JUPYTERHUB_SERVICE_URL", s.url + prefix},
        {"JUPYTERHUB_OAUTH_CALLBACK_URL", urlOf(user.name) + "oauth_callback"},
        {"JUPYTERHUB_OAUTH_SCOPES", scopes},
        {"JUPYTERHUB_OAUTH_ACCESS_SCOPES", scopes},
        {"JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES", "[]"},
        {"JUPYTERHUB_USER", user.name},
        {"JUPYTERHUB_SERVER_NAME", ""},
        {"JUPYTERHUB_HOST", settings.subdomainHost},  // where the hub's pages are, "" without subdomains
    };
    if (settings.adminAccess) env.emplace_back("JUPYTERHUB_ADMIN_ACCESS", "1");
    if (!settings.defaultUrl.empty()) env.emplace_back("JUPYTERHUB_DEFAULT_URL", settings.defaultUrl);
    if (!settings.notebookDir.empty()) env.emplace_back("JUPYTERHUB_ROOT_DIR", settings.notebookDir);
    if (settings.spawnerDebug) env.emplace_back("JUPYTERHUB_DEBUG", "1");
    // With idle culling on, the server reports its own (kernel) activity often
    // enough for its timeout (app/idle_culler.h); off, nothing changes.
    if (CullPolicy culling = CullPolicy::from(settings.idleCuller); culling.enabled())
        if (auto every = activityInterval(culling.idleTimeoutFor(hub_.groupsOf(user.name))))
            env.emplace_back("JUPYTERHUB_ACTIVITY_INTERVAL", std::to_string(*every));
    // Spawner.environment comes last, as in JupyterHub; the helper's policy
    // refuses any name it does not allow, with a sentence naming it.
    for (const auto& [k, v] : settings.spawnerEnvironment) {
        auto it = std::find_if(env.begin(), env.end(), [&](const auto& e) { return e.first == k; });
        if (it != env.end())
            it->second = v;
        else
            env.emplace_back(k, v);
    }
    return env;
}

bool ServerManager::openChannel(int64_t userId, const std::string& userName, std::string& error) {
    ServerState& s = slot(userId);
    s.channel = HelperChannel::launch(
        hub_.loop(), helperArgv(userName),
        [this, userId](const hubproto::Message& m) { onMessage(userId, m); },
        [this, userId](const std::string& why) { onClosed(userId, why); }, error);
    if (!s.channel)
        error += "; check SudoSpawner.sudospawner_path (meson install puts the helper at " +
                 std::string(hub::kSudospawnerPath) + ") and docs/install.md";
    return s.channel != nullptr;
}

std::optional<std::string> ServerManager::start(const hub::UserRecord& user, std::function<void()> settled) {
    ServerState& s = slot(user.id);
    if (s.phase == Phase::Running) return fmt::format("{}'s server is already running", user.name);
    if (const Subdomains* subdomains = hub_.subdomains())
        if (auto problem = subdomains->spawnProblem(user.name)) return problem;
    if (s.phase == Phase::Stopping)
        return fmt::format("{}'s server is stopping; try again in a moment", user.name);
    if (s.phase == Phase::Spawning) {  // already on its way
        // 3.0 observes this too (its duration: the handler's, next to nothing).
        metrics::registry().observeSpawn(metrics::SpawnStatus::AlreadyPending, {});
        if (settled) s.waiters.push_back(std::move(settled));
        return std::nullopt;
    }
    s = ServerState{};
    s.phase = Phase::Spawning;
    s.requestedAt = std::chrono::steady_clock::now();
    s.port = randomPort();
    const InternalTls* tls = hub_.internalTls();
    s.url = (tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(s.port);
    s.progress.push_back({0, "Server requested"});
    if (s.port == 0) {
        s.phase = Phase::Stopped;
        return std::string("no free TCP port on 127.0.0.1 for the server");
    }
    // A fresh token per start, with the server role's scopes (JupyterHub 3.0).
    std::string note = "Server at " + prefixOf(user.name);
    for (const auto& t : hub_.tokensOfUser(user.id))
        if (t.note == note) hub_.revokeToken(t.id);
    auto issued = hub_.issueToken(user.id, std::nullopt, note, {"users:activity!user", "access:servers!user"},
                                  std::nullopt);
    s.tokenId = issued.record.id;
    hub::OAuthClientRecord client;
    client.identifier = "jupyterhub-user-" + urlEncode(user.name);
    client.description = "Server at " + prefixOf(user.name);
    client.secretHash = hub::hashToken(issued.token, hub::kUserTokenRounds);
    client.redirectUri = urlOf(user.name) + "oauth_callback";
    client.allowedScopes = {"access:servers!server=" + user.name + "/", "access:servers!user=" + user.name};
    hub_.store().upsertOAuthClient(client);

    std::string error;
    if (settled) s.waiters.push_back(std::move(settled));
    hub_.serverChanged(user.id);
    if (!openChannel(user.id, user.name, error)) {
        fail(user.id, error);
        return std::nullopt;
    }
    hubproto::Spawn spawn;
    spawn.profile = hub_.settings().sudospawnerProfile;
    spawn.port = s.port;
    for (auto& [k, v] : environment(user, s, issued.token)) spawn.env.push_back({k, v});
    if (tls) {
        // A fresh key per start; it travels only in the SPAWN frame (the
        // helper writes it to a file only the user can read).
        try {
            Leaf leaf = tls->issueServer(user.name);
            spawn.tlsKey = std::move(leaf.keyPem);
            spawn.tlsCert = std::move(leaf.certPem);
            spawn.tlsCa = tls->hubCaPem();
        } catch (const InternalCaError& e) {
            fail(user.id, e.what());
            return std::nullopt;
        }
    }
    if (!s.channel->send(spawn)) {
        fail(user.id,
             "the spawn request could not be encoded: check Spawner.environment for values with newlines "
             "or over 4 KiB");
        return std::nullopt;
    }
    noteProgress(user.id, 20, "Starting " + user.name + "'s server through sudospawner");
    hub::logInfo("Spawning server for {} on port {}", user.name, s.port);
    int64_t id = user.id;
    auto timeout = std::chrono::milliseconds(static_cast<int64_t>(hub_.settings().startTimeout * 1000));
    s.timer = hub_.loop().addTimer(timeout, [this, id] {
        auto& st = slot(id);
        st.timer = 0;
        if (st.phase != Phase::Spawning || st.pid != 0) return;
        fail(id, fmt::format("the server did not start within Spawner.start_timeout ({} s)",
                             hub_.settings().startTimeout));
    });
    return std::nullopt;
}

void ServerManager::onMessage(int64_t userId, const hubproto::Message& m) {
    ServerState& s = slot(userId);
    const hub::UserRecord* user = hub_.findUserById(userId);
    std::string name = user ? user->name : std::to_string(userId);
    if (auto* started = std::get_if<hubproto::Started>(&m)) {
        s.pid = started->pid;
        s.startTime = started->startTime;
        s.logPath = started->logPath;
        s.started = hub::now();
        noteProgress(userId, 60,
                     fmt::format("Server process {} started; waiting for it to answer", started->pid));
        persist(userId);
        hub::logInfo("Server of {} started: pid {}, uid {} ({:.1f} ms after the request)", name, started->pid,
                     started->uid, msSince(s.requestedAt));
        s.probeAttempt = 0;
        probe(userId);
    } else if (auto* attached = std::get_if<hubproto::Attached>(&m)) {
        s.pid = attached->pid;
        s.startTime = attached->startTime;
        hub::logInfo("Reattached to the server of {} (pid {})", name, attached->pid);
        s.probeAttempt = 0;
        probe(userId);
    } else if (auto* exited = std::get_if<hubproto::Exited>(&m)) {
        s.lastExit = exitDescription(exited->exitCode, exited->signal);
        s.lastLog = exited->logTail;
        hub::logWarning("Server of {} {} (pid {})", name, s.lastExit, exited->pid);
        if (s.phase == Phase::Spawning)
            s.lastError =
                "the server " + s.lastExit + " before it was ready; its last log lines are shown below";
        finishStopped(userId);
    } else if (auto* stopped = std::get_if<hubproto::Stopped>(&m)) {
        hub::logInfo("Server of {} stopped ({}; {:.1f} ms after the request)", name,
                     stopped->outcome == hubproto::StopOutcome::Killed ? "killed after the grace period"
                                                                       : "terminated",
                     msSince(s.requestedAt));
        finishStopped(userId);
    } else if (auto* log = std::get_if<hubproto::Log>(&m)) {
        if (s.logReaders.empty()) return;
        auto reader = std::move(s.logReaders.front());
        s.logReaders.pop_front();
        if (*reader) std::exchange(*reader, nullptr)(log->data, {});
    } else if (auto* err = std::get_if<hubproto::Error>(&m)) {
        if (err->code == hubproto::ErrorCode::ServerExited) return;  // EXITED said it
        fail(userId, hub::safe(err->message, 1000));
    }
}

void ServerManager::onClosed(int64_t userId, const std::string& why) {
    ServerState& s = slot(userId);
    s.channel.reset();
    for (auto& reader : std::exchange(s.logReaders, {}))
        if (*reader) std::exchange(*reader, nullptr)({}, "the helper conversation ended: " + why);
    if (s.phase == Phase::Spawning || s.phase == Phase::Stopping) {
        fail(userId, why.empty() ? std::string("the helper ended the conversation unexpectedly") : why);
    } else if (s.phase == Phase::Running) {
        // The server may still run (the helper exits only with it); without a
        // channel we cannot see it end, so say so and reattach on demand.
        hub::logWarning("Lost the helper of a running server (user id {}): {}", userId, why);
    }
}

void ServerManager::probe(int64_t userId) {
    ServerState& s = slot(userId);
    const hub::UserRecord* user = hub_.findUserById(userId);
    if (!user || (s.phase != Phase::Spawning)) return;
    // The scheme of the URL the server was started with decides (a server
    // outlives hub restarts, and internal_ssl may have changed meanwhile).
    std::shared_ptr<const hubd::http::TlsClientContext> tls;
    if (s.url.rfind("https://", 0) == 0) {
        if (!hub_.internalTls())
            return fail(
                userId,
                "the server was started with internal TLS, which is now off: stop it and start it again");
        tls = hub_.internalTls()->clientContext();
    }
    auto p = std::make_shared<ReadinessProbe>(
        hub_.loop(), s.port, prefixOf(user->name), std::move(tls), user->name, [this, userId](bool up) {
            ServerState& st = slot(userId);
            if (st.phase != Phase::Spawning) return;
            if (up) return markReady(userId);
            // Short backoff: 20 ms doubling to 1 s, until Spawner.http_timeout.
            int attempt = ++st.probeAttempt;
            auto delay = std::chrono::milliseconds(std::min(1000, 10 << std::min(attempt, 7)));
            auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                hub::now() - st.started.value_or(hub::now()));
            auto limit = std::chrono::milliseconds(static_cast<int64_t>(hub_.settings().httpTimeout * 1000));
            if (elapsed > limit)
                return fail(userId,
                            fmt::format("the server started but did not answer HTTP on port {} within "
                                        "Spawner.http_timeout ({} s)",
                                        st.port, hub_.settings().httpTimeout));
            hub_.loop().addTimer(delay, [this, userId] { probe(userId); });
        });
    p->run();
}

void ServerManager::markReady(int64_t userId) {
    ServerState& s = slot(userId);
    if (s.timer) hub_.loop().cancelTimer(s.timer);
    s.timer = 0;
    s.phase = Phase::Running;
    s.ready = true;
    s.lastError.clear();
    s.lastExit.clear();
    s.lastLog.clear();
    s.progress.push_back({100, "Server ready"});
    // A start this hub requested (a reattached server has no request time).
    if (s.requestedAt != std::chrono::steady_clock::time_point{})
        metrics::registry().observeSpawn(metrics::SpawnStatus::Success, metrics::since(s.requestedAt));
    persist(userId);
    // The route appears atomically with readiness; requests still pass
    // Hub::mayUseUserRoute before the proxy forwards them.
    if (const auto* u = hub_.findUserById(userId)) {
        std::string error;
        if (!hub_.addUserRoute(u->name, s.url, &error))
            hub::logError("Could not route {} to {}: {}", prefixOf(u->name), s.url, error);
    }
    hub_.serverChanged(userId);
    if (const auto* user = hub_.findUserById(userId))
        hub::logInfo("Server of {} is ready at {} ({:.1f} ms after the request)", user->name, s.url,
                     msSince(s.requestedAt));
    settle(userId);
}

void ServerManager::fail(int64_t userId, std::string sentence) {
    ServerState& s = slot(userId);
    const hub::UserRecord* user = hub_.findUserById(userId);
    hub::logWarning("Server of {}: {}", user ? user->name : std::to_string(userId), sentence);
    s.lastError = std::move(sentence);
    if (s.phase == Phase::Stopping) {
        metrics::registry().observeStop(metrics::OpStatus::Failure, metrics::since(s.requestedAt));
        if (s.pid != 0) {
            // The stop failed: the server may still run. Keep it as running.
            s.phase = Phase::Running;
            settle(userId);
            return;
        }
        s.phase = Phase::Stopped;  // counted above as a failed stop, not again below as a stop
    }
    finishStopped(userId);
}

void ServerManager::finishStopped(int64_t userId) {
    ServerState& s = slot(userId);
    if (s.phase == Phase::Spawning && s.requestedAt != std::chrono::steady_clock::time_point{})
        metrics::registry().observeSpawn(metrics::SpawnStatus::Failure, metrics::since(s.requestedAt));
    else if (s.phase == Phase::Stopping)
        metrics::registry().observeStop(metrics::OpStatus::Success, metrics::since(s.requestedAt));
    if (s.timer) hub_.loop().cancelTimer(s.timer);
    s.timer = 0;
    if (s.tokenId) hub_.revokeToken(*s.tokenId);
    s.tokenId.reset();
    if (const auto* u = hub_.findUserById(userId)) hub_.removeUserRoute(u->name);
    s.startFailed = !s.ready;
    s.phase = Phase::Stopped;
    s.ready = false;
    s.pid = 0;
    s.startTime = 0;
    if (s.channel) {
        // Leave the helper to finish on its own; it exits with the server.
        s.channel->detach();
        auto dead = std::move(s.channel);
        hub_.loop().post([dead = std::shared_ptr<HelperChannel>(std::move(dead))] {});
    }
    persist(userId);
    hub_.serverChanged(userId);
    settle(userId);
}

void ServerManager::settle(int64_t userId) {
    ServerState& s = slot(userId);
    auto waiters = std::move(s.waiters);
    s.waiters.clear();
    for (auto& w : waiters) w();
    notifyWatchers(userId);
}

void ServerManager::noteProgress(int64_t userId, int percent, std::string message) {
    slot(userId).progress.push_back({percent, std::move(message)});
    notifyWatchers(userId);
}

void ServerManager::notifyWatchers(int64_t userId) {
    auto it = progressWatchers_.find(userId);
    if (it == progressWatchers_.end()) return;
    // A copy: watchers unwatch themselves when their stream ends.
    auto watchers = it->second;
    for (auto& [id, changed] : watchers) changed();
}

uint64_t ServerManager::watchProgress(int64_t userId, std::function<void()> changed) {
    uint64_t id = nextWatchId_++;
    progressWatchers_[userId].emplace(id, std::move(changed));
    return id;
}

void ServerManager::unwatchProgress(int64_t userId, uint64_t watchId) {
    auto it = progressWatchers_.find(userId);
    if (it == progressWatchers_.end()) return;
    it->second.erase(watchId);
    if (it->second.empty()) progressWatchers_.erase(it);
}

void ServerManager::persist(int64_t userId) {
    ServerState& s = slot(userId);
    const hub::UserRecord* user = hub_.findUserById(userId);
    if (!user) return;
    auto existing = hub_.store().findServer(userId, "");
    hub::ServerRecord rec = existing.value_or(hub::ServerRecord{});
    rec.userId = userId;
    rec.name = "";
    rec.baseUrl = prefixOf(user->name);
    bool active = s.phase != Phase::Stopped && s.pid != 0;
    rec.active = active;
    rec.url = active ? s.url : std::string();
    if (active) {
        std::string state;
        JsonWriter w(state);
        w.beginObject().key("pid").value(static_cast<int64_t>(s.pid));
        w.key("start_time").value(std::to_string(s.startTime));
        w.key("port").value(static_cast<int64_t>(s.port));
        if (s.tokenId) w.key("token_id").value(*s.tokenId);
        w.endObject();
        rec.state = state;
        rec.started = s.started;
    } else {
        rec.state = "{}";
        rec.started.reset();
    }
    hub_.store().saveServer(rec);
}

std::optional<std::string> ServerManager::stop(const hub::UserRecord& user, std::function<void()> settled) {
    ServerState& s = slot(user.id);
    if (s.phase == Phase::Stopped) return fmt::format("{}'s server is not running", user.name);
    if (settled) s.waiters.push_back(std::move(settled));
    if (s.phase == Phase::Stopping) return std::nullopt;
    if (s.phase == Phase::Spawning && s.pid == 0) s.lastError = "the start was cancelled";
    s.phase = Phase::Stopping;
    s.requestedAt = std::chrono::steady_clock::now();
    noteProgress(user.id, s.progress.empty() ? 0 : s.progress.back().percent, "Stopping");
    hub_.serverChanged(user.id);
    std::string error;
    if (!s.channel) {
        // No conversation left (e.g. it was lost): reach the supervisor anew.
        if (!openChannel(user.id, user.name, error)) {
            fail(user.id, error);
            return std::nullopt;
        }
        s.channel->send(hubproto::Attach{s.pid, s.startTime, ""});
    }
    s.channel->send(hubproto::Stop{kStopGraceMs});
    hub::logInfo("Stopping server of {}", user.name);
    return std::nullopt;
}

void ServerManager::readLog(const hub::UserRecord& user, uint32_t lines,
                            std::function<void(std::string text, std::string error)> done) {
    if (const ServerState* known = state(user.id); !known || known->pid == 0)
        return done({}, "the server is not running");
    ServerState* s = &slot(user.id);
    if (s->channel) {
        // Asked on the conversation that supervises the server: a second
        // ATTACH would take supervision away from it (the supervisor serves
        // one hub conversation), and a later STOP sent here would go nowhere.
        auto reader = std::make_shared<std::function<void(std::string, std::string)>>(std::move(done));
        s->logReaders.push_back(reader);
        s->channel->send(hubproto::ReadLog{lines});
        hub_.loop().addTimer(std::chrono::seconds(10), [reader] {
            if (*reader) std::exchange(*reader, nullptr)({}, "the helper did not answer within 10 s");
        });
        return;
    }
    // No conversation left (hubd lost it): a short one of its own, ATTACH,
    // READ_LOG, then close; stop() attaches again when it needs to.
    std::string error;
    auto holder = std::make_shared<std::unique_ptr<HelperChannel>>();
    auto finished = std::make_shared<bool>(false);
    auto ch = HelperChannel::launch(
        hub_.loop(), helperArgv(user.name),
        [holder, finished, done](const hubproto::Message& m) {
            if (*finished) return;
            if (auto* log = std::get_if<hubproto::Log>(&m)) {
                *finished = true;
                done(log->data, {});
            } else if (auto* err = std::get_if<hubproto::Error>(&m)) {
                *finished = true;
                done({}, hub::safe(err->message, 500));
            }
        },
        [holder, finished, done](const std::string& why) {
            if (!*finished) {
                *finished = true;
                done({}, why);
            }
        },
        error);
    if (!ch) return done({}, error);
    ch->send(hubproto::Attach{s->pid, s->startTime, ""});
    ch->send(hubproto::ReadLog{lines});
    *holder = std::move(ch);
    // The channel lives until the helper answers and closes (the callbacks
    // hold `holder`); a timer bounds it.
    hub_.loop().addTimer(std::chrono::seconds(10), [holder, finished, done] {
        if (!*finished) {
            *finished = true;
            done({}, "the helper did not answer within 10 s");
        }
        if (*holder) (*holder)->detach();
        holder->reset();
    });
}

void ServerManager::reattachAll() {
    for (const auto& rec : hub_.store().allServers()) {
        if (!rec.active || !rec.name.empty()) continue;
        const hub::UserRecord* user = hub_.findUserById(rec.userId);
        if (!user) continue;
        auto state = parseJson(rec.state);
        if (!state || !state->isObject()) continue;
        const Json* pid = state->find("pid");
        const Json* start = state->find("start_time");
        const Json* port = state->find("port");
        const Json* token = state->find("token_id");
        if (!pid || !pid->isNumber() || !start || !start->isString() || !port || !port->isNumber()) continue;
        ServerState& s = slot(rec.userId);
        s = ServerState{};
        s.phase = Phase::Spawning;  // "check" until the helper confirms and HTTP answers
        s.pid = static_cast<uint32_t>(pid->asNumber());
        s.startTime = std::strtoull(start->asString().c_str(), nullptr, 10);
        s.port = static_cast<uint16_t>(port->asNumber());
        s.url = rec.url;
        s.started = rec.started;
        if (token && token->isNumber()) s.tokenId = static_cast<int64_t>(token->asNumber());
        std::string error;
        if (!openChannel(rec.userId, user->name, error)) {
            fail(rec.userId, error);
            continue;
        }
        s.channel->send(hubproto::Attach{s.pid, s.startTime, ""});
        hub::logInfo("Reattaching to the server of {} (pid {})", user->name, s.pid);
    }
}

void ServerManager::detachAll() {
    for (auto& [id, s] : servers_)
        if (s.channel) s.channel->detach();
}

}  // namespace hubd
