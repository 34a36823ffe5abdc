// SPDX-License-Identifier: BSD-3-Clause
// The ports of JupyterHub.bind_url and hub_bind_url can be bound by the hub
// user: bound and closed again at once. When one is taken, /proc says by
// whom, and a hubd already serving on it is not an error.
#include <arpa/inet.h>
#include <dirent.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "check/check.h"
#include "check/fs.h"

namespace hubd::check {
namespace {

struct HostPort {
    std::string host;
    int port = -1;
};

// "https://[::1]:443" -> ("::1", 443); the path is ignored.
HostPort parseUrl(const std::string& url) {
    HostPort hp;
    auto scheme = url.find("://");
    if (scheme == std::string::npos) return hp;
    std::string rest = url.substr(scheme + 3);
    rest = rest.substr(0, rest.find('/'));
    std::string port;
    if (!rest.empty() && rest[0] == '[') {
        auto close = rest.find(']');
        if (close == std::string::npos) return hp;
        hp.host = rest.substr(1, close - 1);
        if (close + 1 < rest.size() && rest[close + 1] == ':') port = rest.substr(close + 2);
    } else {
        auto colon = rest.rfind(':');
        hp.host = rest.substr(0, colon);
        if (colon != std::string::npos) port = rest.substr(colon + 1);
    }
    hp.port = port.empty() ? (url.rfind("https", 0) == 0 ? 443 : 80) : std::atoi(port.c_str());
    return hp;
}

// 0 when bound (and closed again), else errno.
int tryBind(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res) != 0 || !res)
        return EADDRNOTAVAIL;
    int err = 0;
    for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as hubd: TIME_WAIT is no conflict
        err = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1) == 0 ? 0 : errno;
        ::close(fd);
        if (err != 0) break;
    }
    ::freeaddrinfo(res);
    return err;
}

struct Holder {
    uid_t uid = 0;
    bool found = false;
    int pid = 0;
    std::string comm;
};

// The listening socket on `port` from /proc/net/tcp{,6} (uid and inode are
// readable by everyone), then its process if we may see its descriptors.
Holder whoListens(int port) {
    Holder h;
    std::string inode;
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);
        while (std::getline(in, line)) {
            std::stringstream ss(line);
            std::string sl, local, remote, state, queues, timer, retr, uid, timeout, ino;
            ss >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> ino;
            auto colon = local.rfind(':');
            if (state != "0A" || colon == std::string::npos) continue;
            if (std::stoi(local.substr(colon + 1), nullptr, 16) != port) continue;
            h.found = true;
            h.uid = static_cast<uid_t>(std::stoul(uid));
            inode = ino;
        }
    }
    if (!h.found) return h;
    const std::string target = "socket:[" + inode + "]";
    DIR* proc = ::opendir("/proc");
    while (dirent* e = proc ? ::readdir(proc) : nullptr) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        const std::string fdDir = std::string("/proc/") + e->d_name + "/fd";
        DIR* fds = ::opendir(fdDir.c_str());
        while (dirent* f = fds ? ::readdir(fds) : nullptr) {
            char link[64];
            ssize_t n = ::readlink((fdDir + "/" + f->d_name).c_str(), link, sizeof link - 1);
            if (n > 0 && std::string(link, static_cast<size_t>(n)) == target) {
                h.pid = std::atoi(e->d_name);
                std::ifstream comm(std::string("/proc/") + e->d_name + "/comm");
                std::getline(comm, h.comm);
            }
        }
        if (fds) ::closedir(fds);
        if (h.pid) break;
    }
    if (proc) ::closedir(proc);
    return h;
}

void checkPort(const Context& ctx, const std::string& name, const std::string& trait, const std::string& url,
               Report& r) {
    HostPort hp = parseUrl(url);
    if (hp.port < 0 || hp.port > 65535) {
        r.fail(name, trait + " " + url + " has no valid port", "hubd --check-config");
        return;
    }
    const std::string where = fmt::format("port {} on {} ({} {})", hp.port,
                                          hp.host.empty() ? "all addresses" : hp.host, trait, url);
    int err = tryBind(hp.host, hp.port);
    if (err == 0) {
        r.pass(name, where + " can be bound by " + ctx.hub.name);
    } else if (err == EADDRINUSE) {
        Holder h = whoListens(hp.port);
        std::string who = h.pid     ? fmt::format("{} (pid {}, user {})", h.comm, h.pid, userName(h.uid))
                          : h.found ? "a process of user " + userName(h.uid)
                                    : "another socket";
        if (h.comm == "hubd" || (h.pid == 1 && h.comm == "systemd"))
            r.pass(name, where + " is in use by " + who + ": the hub is already running on it");
        else
            r.fail(
                name, where + " is in use by " + who,
                fmt::format("ss -ltnp 'sport = :{}'  # stop that, or give {} a free port", hp.port, trait));
    } else if (err == EACCES && hp.port < 1024) {
        r.warn(name,
               where + ": " + ctx.hub.name + " may not bind ports below 1024 without CAP_NET_BIND_SERVICE",
               "setcap cap_net_bind_service=+ep /usr/local/bin/hubd  # or AmbientCapabilities= "
               "(docs/install.md step 7)");
    } else {
        r.fail(name, where + " cannot be bound: " + std::strerror(err),
               "ip -br addr  # the host part of " + trait + " must be an address of this machine");
    }
}

}  // namespace

void checkPorts(Context& ctx, Report& r) {
    checkPort(ctx, "port", "JupyterHub.bind_url", ctx.settings.bindUrl, r);
    HostPort pub = parseUrl(ctx.settings.bindUrl), api = parseUrl(ctx.settings.hubBindUrl);
    if (pub.port == api.port && pub.host == api.host)
        r.pass("hub API port", "the hub API shares the public listener");
    else
        checkPort(ctx, "hub API port", "JupyterHub.hub_bind_url", ctx.settings.hubBindUrl, r);
}

}  // namespace hubd::check
