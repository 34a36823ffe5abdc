// SPDX-License-Identifier: BSD-3-Clause
// The LISTEN_FDS protocol (sd_listen_fds(3)) as hubd reads it, and which
// inherited socket becomes which listener.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "socket_activation.h"

using hubd::assignSocketRoles;
using hubd::InheritedSocket;
using hubd::parseListenFds;

namespace {
constexpr pid_t kSelf = 4242;
}

TEST_CASE("no variables: no socket activation, no error") {
    auto r = parseListenFds(nullptr, nullptr, nullptr, kSelf);
    CHECK(r.sockets.empty());
    CHECK(r.error.empty());
    CHECK(r.note.empty());
}

TEST_CASE("sockets start at fd 3 and carry their names") {
    auto r = parseListenFds("4242", "2", "public:hub", kSelf);
    REQUIRE(r.error.empty());
    REQUIRE(r.sockets.size() == 2);
    CHECK(r.sockets[0].fd == 3);
    CHECK(r.sockets[0].name == "public");
    CHECK(r.sockets[1].fd == 4);
    CHECK(r.sockets[1].name == "hub");

    r = parseListenFds("4242", "1", nullptr, kSelf);
    REQUIRE(r.sockets.size() == 1);
    CHECK(r.sockets[0].fd == 3);
    CHECK(r.sockets[0].name.empty());

    r = parseListenFds("4242", "0", nullptr, kSelf);
    CHECK(r.error.empty());
    CHECK(r.sockets.empty());
}

TEST_CASE("variables meant for another process are ignored, with a note") {
    auto r = parseListenFds("4241", "1", nullptr, kSelf);
    CHECK(r.sockets.empty());
    CHECK(r.error.empty());
    CHECK(r.note.find("process 4241") != std::string::npos);
}

TEST_CASE("malformed values are refused") {
    for (const char* bad : {"", "abc", "-1", "3x", " 3", "+3", "99999999999999999999999"}) {
        CAPTURE(bad);
        auto r = parseListenFds("4242", bad, nullptr, kSelf);
        CHECK(r.sockets.empty());
        CHECK(r.error.find("LISTEN_FDS") != std::string::npos);
        r = parseListenFds(bad, "1", nullptr, kSelf);
        CHECK(r.sockets.empty());
        CHECK(r.error.find("LISTEN_PID") != std::string::npos);
    }
    CHECK(parseListenFds("0", "1", nullptr, kSelf).error.find("LISTEN_PID") != std::string::npos);
}

TEST_CASE("one variable without the other is refused") {
    CHECK(!parseListenFds("4242", nullptr, nullptr, kSelf).error.empty());
    CHECK(!parseListenFds(nullptr, "1", nullptr, kSelf).error.empty());
}

TEST_CASE("too many fds are refused before any is touched") {
    auto r = parseListenFds("4242", std::to_string(hubd::kMaxListenFds + 1).c_str(), nullptr, kSelf);
    CHECK(r.sockets.empty());
    CHECK(r.error.find("more than") != std::string::npos);
    CHECK(parseListenFds("4242", std::to_string(hubd::kMaxListenFds).c_str(), nullptr, kSelf).error.empty());
}

TEST_CASE("LISTEN_FDNAMES must name every socket") {
    CHECK(!parseListenFds("4242", "2", "public", kSelf).error.empty());
    CHECK(!parseListenFds("4242", "1", "public:hub", kSelf).error.empty());
    auto r = parseListenFds("4242", "2", ":hub", kSelf);
    REQUIRE(r.sockets.size() == 2);
    CHECK(r.sockets[0].name.empty());
}

TEST_CASE("roles: by name, else in order") {
    auto roles = assignSocketRoles({{3, "public"}, {4, "hub"}});
    CHECK(roles.publicFd == 3);
    CHECK(roles.hubFd == 4);
    roles = assignSocketRoles({{3, "hub"}, {4, "public"}});
    CHECK(roles.publicFd == 4);
    CHECK(roles.hubFd == 3);
    // systemd names sockets after their unit by default
    roles = assignSocketRoles({{3, "hubd.socket"}});
    CHECK(roles.publicFd == 3);
    CHECK(!roles.hubFd);
    roles = assignSocketRoles({{3, "hubd.socket"}, {4, "hubd.socket"}});
    CHECK(roles.publicFd == 3);
    CHECK(roles.hubFd == 4);
    roles = assignSocketRoles({{3, "hub"}, {4, ""}});
    CHECK(roles.publicFd == 4);
    CHECK(roles.hubFd == 3);
    roles = assignSocketRoles({{3, "hub"}});
    CHECK(!roles.publicFd);
    CHECK(roles.hubFd == 3);
    CHECK(roles.error.empty());
}

TEST_CASE("roles: duplicates, an unplaceable third socket and a fourth are refused") {
    CHECK(!assignSocketRoles({{3, "public"}, {4, "public"}}).error.empty());
    CHECK(!assignSocketRoles({{3, "hub"}, {4, "hub"}}).error.empty());
    CHECK(!assignSocketRoles({{3, "redirect"}, {4, "redirect"}}).error.empty());
    // An unnamed third socket is never taken for the redirect port.
    auto roles = assignSocketRoles({{3, ""}, {4, ""}, {5, ""}});
    CHECK(roles.error.find("name them") != std::string::npos);
    CHECK(!roles.redirectFd);
    roles = assignSocketRoles({{3, "public"}, {4, "hub"}, {5, "redirect"}, {6, ""}});
    CHECK(roles.error.find("4 sockets") != std::string::npos);
    CHECK(!roles.publicFd);
}

TEST_CASE("roles: the redirect port only by its name") {
    auto roles = assignSocketRoles({{3, "redirect"}, {4, "public"}, {5, "hub"}});
    CHECK(roles.error.empty());
    CHECK(roles.redirectFd == 3);
    CHECK(roles.publicFd == 4);
    CHECK(roles.hubFd == 5);
    roles = assignSocketRoles({{3, ""}, {4, "redirect"}});
    CHECK(roles.error.empty());
    CHECK(roles.publicFd == 3);
    CHECK(roles.redirectFd == 4);
    CHECK(!roles.hubFd);
    roles = assignSocketRoles({{3, ""}});
    CHECK(!roles.redirectFd);
}

namespace {

// Puts `fd` at descriptor 3 for one test, as a service manager would,
// and restores whatever was there.
class AtFd3 {
public:
    explicit AtFd3(int fd) {
        saved_ = ::fcntl(3, F_DUPFD_CLOEXEC, 10);
        REQUIRE(::dup2(fd, 3) == 3);
        ::close(fd);
    }
    ~AtFd3() {
        if (saved_ >= 0) {
            ::dup2(saved_, 3);
            ::close(saved_);
        } else {
            ::close(3);
        }
    }

private:
    int saved_ = -1;
};

int tcpSocket(bool listening) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    if (listening) REQUIRE(::listen(fd, 1) == 0);
    // Well away from 3, so that AtFd3 sees what was at 3 before.
    int high = ::fcntl(fd, F_DUPFD, 100);
    ::close(fd);
    return high;
}

void setActivation(pid_t pid, const char* count) {
    ::setenv("LISTEN_PID", std::to_string(pid).c_str(), 1);
    ::setenv("LISTEN_FDS", count, 1);
    ::setenv("LISTEN_FDNAMES", "public", 1);
}

bool variablesGone() {
    return !std::getenv("LISTEN_PID") && !std::getenv("LISTEN_FDS") && !std::getenv("LISTEN_FDNAMES");
}

}  // namespace

TEST_CASE("takeListenFds takes a listening socket, marks it CLOEXEC and unsets the variables") {
    AtFd3 at3(tcpSocket(true));
    REQUIRE((::fcntl(3, F_GETFD) & FD_CLOEXEC) == 0);
    setActivation(::getpid(), "1");
    auto r = hubd::takeListenFds();
    CHECK(r.error.empty());
    REQUIRE(r.sockets.size() == 1);
    CHECK(r.sockets[0].fd == 3);
    CHECK(r.sockets[0].name == "public");
    CHECK((::fcntl(3, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(variablesGone());
}

TEST_CASE("takeListenFds refuses a socket that is not listening, and closes it") {
    AtFd3 at3(tcpSocket(false));
    setActivation(::getpid(), "1");
    auto r = hubd::takeListenFds();
    CHECK(r.error.find("not a listening stream socket") != std::string::npos);
    CHECK(r.sockets.empty());
    CHECK(::fcntl(3, F_GETFD) < 0);
    CHECK(variablesGone());
}

TEST_CASE("takeListenFds unsets variables meant for another process and leaves its fds alone") {
    AtFd3 at3(tcpSocket(true));
    setActivation(::getpid() + 1, "1");
    auto r = hubd::takeListenFds();
    CHECK(r.sockets.empty());
    CHECK(r.error.empty());
    CHECK((::fcntl(3, F_GETFD) & FD_CLOEXEC) == 0);  // untouched
    CHECK(variablesGone());
}
