// SPDX-License-Identifier: BSD-3-Clause
// Users' notebook servers: start, readiness, stop, crash notice, and
// reattachment after a hub restart, through the sudospawner helper.
//
// MUST: hubd never signals a process itself; only the helper, running as
// the user, acts on the server it started (verified by pid + start time).
// MUST: the server's API token travels only inside the SPAWN frame.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hubcore/store.h"
#include "hubcore/time.h"
#include "spawn/helper_channel.h"

namespace hubd {

class Hub;

// One step of a start, as the pending page and the progress EventSource
// (GET /hub/api/users/:name/server/progress) show it.
struct ProgressEvent {
    int percent = 0;  // 0-100
    std::string message;
};

struct ServerState {
    enum class Phase { Stopped, Spawning, Running, Stopping };
    Phase phase = Phase::Stopped;
    bool ready = false;
    uint16_t port = 0;
    std::string url;  // http://127.0.0.1:PORT
    uint32_t pid = 0;
    uint64_t startTime = 0;
    std::optional<int64_t> tokenId;
    std::optional<hub::Timestamp> started;
    std::string logPath;
    std::string lastError;     // a sentence: why the last start or stop failed
    bool startFailed = false;  // stopped before it was ever ready: the start failed
    std::string lastExit;      // "exited with status 1" for a server that ended by itself
    std::string lastLog;       // its last log lines (untrusted bytes)
    std::unique_ptr<HelperChannel> channel;
    std::vector<std::function<void()>> waiters;  // called when the phase settles
    // READ_LOG requests sent on `channel`, oldest first: the supervisor
    // answers them in order. An entry stays until its LOG arrives, even if
    // it timed out (then `done` is empty), to keep replies matched.
    std::deque<std::shared_ptr<std::function<void(std::string text, std::string error)>>> logReaders;
    hubd::http::EventLoop::TimerId timer = 0;
    int probeAttempt = 0;
    std::vector<ProgressEvent> progress;                // steps of the current or last start
    std::chrono::steady_clock::time_point requestedAt;  // start or stop request, for the log's timings
};

class ServerManager {
public:
    explicit ServerManager(Hub& hub);
    ~ServerManager();

    // Starts the user's default server. `settled` runs when it is ready or
    // has failed (state(user)->phase tells which); it may run before start()
    // returns. Returns an error sentence if the start could not even begin.
    std::optional<std::string> start(const hub::UserRecord& user, std::function<void()> settled);
    std::optional<std::string> stop(const hub::UserRecord& user, std::function<void()> settled);
    // Last `lines` lines of the server log, read by the helper as the user.
    void readLog(const hub::UserRecord& user, uint32_t lines,
                 std::function<void(std::string text, std::string error)> done);

    const ServerState* state(int64_t userId) const;
    // Running servers found in the database are reattached (not restarted).
    void reattachAll();
    // Stops listening to helpers without stopping servers (hub shutdown).
    void detachAll();

    std::string prefixOf(const std::string& userName) const;  // "/user/alice/"
    // Where browsers find the server: prefixOf(), on the user's own host
    // under JupyterHub.subdomain_host ("https://alice.hub.example.org/user/alice/").
    std::string urlOf(const std::string& userName) const;

    // Calls `changed` after every progress step and phase change of the
    // user's server, until unwatchProgress(): what progress streams follow.
    uint64_t watchProgress(int64_t userId, std::function<void()> changed);
    void unwatchProgress(int64_t userId, uint64_t watchId);

private:
    ServerState& slot(int64_t userId);
    std::vector<std::string> helperArgv(const std::string& userName) const;
    std::vector<std::pair<std::string, std::string>> environment(const hub::UserRecord& user,
                                                                 const ServerState& s,
                                                                 const std::string& token) const;
    void onMessage(int64_t userId, const hubproto::Message& message);
    void onClosed(int64_t userId, const std::string& why);
    void probe(int64_t userId);
    void markReady(int64_t userId);
    void fail(int64_t userId, std::string sentence);
    void finishStopped(int64_t userId);
    void noteProgress(int64_t userId, int percent, std::string message);
    void notifyWatchers(int64_t userId);
    void settle(int64_t userId);
    void persist(int64_t userId);
    bool openChannel(int64_t userId, const std::string& userName, std::string& error);

    Hub& hub_;
    std::map<int64_t, ServerState> servers_;
    std::map<int64_t, std::map<uint64_t, std::function<void()>>> progressWatchers_;
    uint64_t nextWatchId_ = 1;
};

}  // namespace hubd
