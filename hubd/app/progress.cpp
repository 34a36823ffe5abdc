// SPDX-License-Identifier: BSD-3-Clause
#include "app/progress.h"

#include <chrono>
#include <memory>

#include "app/json.h"
#include "hubcore/log.h"

namespace hubd {

using hubd::http::Response;
using hubd::http::ResponseStream;

namespace {

// JupyterHub writes a blank line this often so that proxies and browsers
// keep an idle stream open.
constexpr std::chrono::seconds kKeepalive{8};

std::string eventData(const ProgressEvent& event) {
    std::string out = "data: ";
    JsonWriter w(out);
    w.beginObject();
    w.key("progress").value(static_cast<int64_t>(event.percent));
    w.key("message").value(event.message);
    w.endObject();
    return out + "\n\n";
}

std::string readyData(const std::string& url) {
    std::string out = "data: ";
    JsonWriter w(out);
    w.beginObject();
    w.key("progress").value(int64_t{100});
    w.key("ready").value(true);
    w.key("message").value("Server ready at " + url);
    w.key("html_message")
        .value("Server ready at <a href=\"" + htmlEscape(url) + "\">" + htmlEscape(url) + "</a>");
    w.key("url").value(url);
    w.endObject();
    return out + "\n\n";
}

std::string failedData(const ServerState& s) {
    std::string why = !s.lastError.empty()  ? s.lastError
                      : !s.lastExit.empty() ? "the server " + s.lastExit
                                            : std::string("the server stopped");
    std::string out = "data: ";
    JsonWriter w(out);
    w.beginObject();
    w.key("progress").value(int64_t{100});
    w.key("failed").value(true);
    w.key("message").value("Spawn failed: " + why);
    w.endObject();
    return out + "\n\n";
}

Response streamHead() {
    Response head;
    head.set("Content-Type", "text/event-stream");
    head.set("Cache-Control", "no-cache");
    head.set("X-Accel-Buffering", "no");  // nginx in front must not hold events back
    head.set("X-JupyterHub-Version", "3.0.0");
    return head;
}

// One open progress stream: replays the steps so far, then follows the
// start until it is ready or has failed. Owned by its watcher entry in the
// ServerManager; timers and the close callback hold weak references.
class ProgressFollower : public std::enable_shared_from_this<ProgressFollower> {
public:
    ProgressFollower(Hub& hub, int64_t userId, std::string url, ResponseStream stream)
        : hub_(hub), userId_(userId), url_(std::move(url)), stream_(std::move(stream)) {}

    void start() {
        std::weak_ptr<ProgressFollower> weak = shared_from_this();
        stream_.onClose([weak] {
            if (auto self = weak.lock()) self->finish();
        });
        watchId_ = hub_.servers().watchProgress(userId_, [self = shared_from_this()] { self->update(); });
        stream_.write("\n\n");
        armKeepalive();
        update();
    }

private:
    void update() {
        if (finished_) return;
        const ServerState* s = hub_.servers().state(userId_);
        if (!s) return finish();
        while (sent_ < s->progress.size()) {
            const ProgressEvent& event = s->progress[sent_++];
            if (event.percent == 100) continue;  // the ready event below says it
            if (!stream_.write(eventData(event))) return finish();
        }
        if (s->phase == ServerState::Phase::Running && s->ready) {
            stream_.write(readyData(url_));
            return finish();
        }
        if (s->phase == ServerState::Phase::Stopped) {
            stream_.write(failedData(*s));
            return finish();
        }
    }

    void armKeepalive() {
        std::weak_ptr<ProgressFollower> weak = shared_from_this();
        keepaliveTimer_ = hub_.loop().addTimer(kKeepalive, [weak] {
            auto self = weak.lock();
            if (!self || self->finished_) return;
            self->keepaliveTimer_ = 0;
            if (!self->stream_.write("\n\n")) return self->finish();
            self->armKeepalive();
        });
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        if (keepaliveTimer_ != 0) hub_.loop().cancelTimer(std::exchange(keepaliveTimer_, 0));
        stream_.end();
        // Last: the watcher entry may hold the last reference to us.
        hub_.servers().unwatchProgress(userId_, watchId_);
    }

    Hub& hub_;
    int64_t userId_;
    std::string url_;
    ResponseStream stream_;
    uint64_t watchId_ = 0;
    size_t sent_ = 0;
    bool finished_ = false;
    hubd::http::EventLoop::TimerId keepaliveTimer_ = 0;
};

}  // namespace

void streamServerProgress(Hub& hub, const hub::UserRecord& user, hubd::http::Responder responder) {
    const ServerState* s = hub.servers().state(user.id);
    std::string url = hub.servers().prefixOf(user.name);
    if (s && s->phase == ServerState::Phase::Running && s->ready) {
        ResponseStream stream = responder.stream(streamHead());
        stream.write(readyData(url));
        return;  // ends with the stream
    }
    if (s && s->phase == ServerState::Phase::Stopped && s->startFailed) {
        ResponseStream stream = responder.stream(streamHead());
        stream.write(failedData(*s));
        return;
    }
    if (!s || s->phase != ServerState::Phase::Spawning)
        return responder.send(jsonError(400, user.name + " is not starting..."));
    auto follower = std::make_shared<ProgressFollower>(hub, user.id, url, responder.stream(streamHead()));
    follower->start();
}

}  // namespace hubd
