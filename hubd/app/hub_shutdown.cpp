// SPDX-License-Identifier: BSD-3-Clause
// POST /api/shutdown: the hub stops as on SIGTERM. Servers keep running and
// are reattached by the next start (the helpers supervise them), unless the
// caller asked for {"servers": true}, as JupyterHub 3.0 does.
#include <memory>
#include <set>

#include "app/hub.h"
#include "hubcore/log.h"

namespace hubd {

namespace {
// Long enough for the 202 to leave the socket before the loop stops.
constexpr auto kAnswerGrace = std::chrono::milliseconds(300);
// Servers that will not stop do not keep the hub up forever.
constexpr auto kStopServersLimit = std::chrono::seconds(60);
}  // namespace

void Hub::shutdown(bool stopServers) {
    if (shuttingDown_) return;
    shuttingDown_ = true;
    auto stopLoop = std::make_shared<bool>(false);
    auto finish = [this, stopLoop] {
        if (*stopLoop) return;
        *stopLoop = true;
        hub::logInfo("Shutting down on request (POST /hub/api/shutdown)");
        loop_.addTimer(kAnswerGrace, [this] { loop_.stop(); });
    };
    if (!stopServers) return finish();

    auto waiting = std::make_shared<std::set<int64_t>>();
    for (const auto* user : users()) {
        const ServerState* st = servers_->state(user->id);
        if (st && st->phase != ServerState::Phase::Stopped) waiting->insert(user->id);
    }
    hub::logInfo("Stopping {} server(s) before shutting down", waiting->size());
    for (int64_t id : std::set<int64_t>(*waiting)) {
        const hub::UserRecord* user = findUserById(id);
        auto done = [waiting, id, finish] {
            if (waiting->erase(id) && waiting->empty()) finish();
        };
        if (auto err = servers_->stop(*user, done)) {
            hub::logWarning("Cannot stop {}'s server before shutting down: {}", user->name, *err);
            done();
        }
    }
    if (waiting->empty()) return finish();
    loop_.addTimer(kStopServersLimit, [waiting, finish] {
        if (waiting->empty()) return;
        hub::logWarning("{} server(s) did not stop within {} s; shutting down anyway", waiting->size(),
                        kStopServersLimit.count());
        finish();
    });
}

}  // namespace hubd
