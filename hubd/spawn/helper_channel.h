// SPDX-License-Identifier: BSD-3-Clause
// One conversation with a sudospawner helper: `sudo -n -u USER sudospawner`
// started with pipes, framed messages both ways (libhubcore/proto), and the
// helper's own stderr kept for error messages.
//
// MUST: secrets go only into frames on the helper's stdin, never into argv or
// the environment of sudo. MUST: every byte from the helper is untrusted and
// goes through hubproto's bounded decoder.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "http/event_loop.h"
#include "http/unique_fd.h"
#include "spawn_proto.h"

namespace hubd {

class HelperChannel {
public:
    using MessageFn = std::function<void(const hubproto::Message&)>;
    // Called once when the channel ends: the helper closed stdout, sent
    // garbage, or exited. `why` is a sentence for logs and users ("" on a
    // clean end after STOPPED or ERROR).
    using ClosedFn = std::function<void(const std::string& why)>;

    // argv[0] must be an absolute path. Starts the process in its own session
    // (so signals for hubd's process group do not reach it) with a minimal
    // environment. Returns nullptr and sets error on failure.
    static std::unique_ptr<HelperChannel> launch(hubd::http::EventLoop& loop,
                                                 const std::vector<std::string>& argv, MessageFn onMessage,
                                                 ClosedFn onClosed, std::string& error);
    ~HelperChannel();
    HelperChannel(const HelperChannel&) = delete;
    HelperChannel& operator=(const HelperChannel&) = delete;

    bool send(const hubproto::Message& message);
    // What the helper (or sudo) wrote on stderr so far, bounded.
    const std::string& stderrText() const { return stderr_; }
    pid_t pid() const { return pid_; }
    // Stops listening; the process is left to finish (and is reaped).
    void detach();

private:
    HelperChannel(hubd::http::EventLoop& loop, MessageFn onMessage, ClosedFn onClosed);
    void onReadable();
    void onStderr();
    void onExit();
    void close(const std::string& why);
    void flush();

    hubd::http::EventLoop& loop_;
    MessageFn onMessage_;
    ClosedFn onClosed_;
    pid_t pid_ = -1;
    hubd::http::UniqueFd stdin_, stdout_, stderrFd_, pidfd_;
    std::string in_;
    std::string out_;
    std::string stderr_;
    bool closed_ = false;
    bool exited_ = false;
    int exitStatus_ = 0;
    std::shared_ptr<bool> alive_;
};

}  // namespace hubd
