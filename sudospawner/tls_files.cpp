// SPDX-License-Identifier: BSD-3-Clause
// sudospawner: the server's internal TLS files (JupyterHub.internal_ssl).
// SPAWN carries the key, the certificate and the hub's CA as PEM; they are
// written here and named to the server by the three JUPYTERHUB_SSL_* variables.
//
// Invariants:
// - The directory MUST be new (mkdtemp: 0700, owned by the user) and every file
//   created with O_EXCL|O_NOFOLLOW, mode 0600: nothing that existed is reused.
// - It is in /tmp, not the home directory: a home on NFS would carry the key
//   over the network, and /tmp's sticky bit keeps other users from replacing it.
// - Only paths reach the environment; the key's text never reaches argv, the
//   environment or a log.
// - The directory is removed when the server ends, and by fatal().
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sudospawner.h"

namespace sudospawner {
namespace {

std::string gDir;  // this server's directory; "" = none
constexpr const char* kNames[3] = {"key.pem", "cert.pem", "ca.pem"};
constexpr const char* kVars[3] = {"JUPYTERHUB_SSL_KEYFILE", "JUPYTERHUB_SSL_CERTFILE",
                                  "JUPYTERHUB_SSL_CLIENT_CA"};

}  // namespace

bool writeTlsFiles(const hubproto::Spawn& req, ChildPlan& plan, std::string& why) {
    if (req.tlsKey.empty()) return true;  // internal_ssl is off
    char dir[] = "/tmp/hubd-tls-XXXXXX";
    if (!mkdtemp(dir)) {
        why = std::string("cannot create a directory for the server's TLS files in /tmp: ") +
              std::strerror(errno);
        return false;
    }
    gDir = dir;
    // Ours replace any value the hub sent under these names (allow_env): a
    // duplicate name would leave which one the server sees to its libc.
    std::erase_if(plan.env, [](const std::string& e) { return e.starts_with("JUPYTERHUB_SSL_"); });
    const std::string* texts[3] = {&req.tlsKey, &req.tlsCert, &req.tlsCa};
    for (int i = 0; i < 3; ++i) {
        const std::string path = gDir + "/" + kNames[i];
        UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!fd.valid() ||
            !writeAll(fd.get(), reinterpret_cast<const uint8_t*>(texts[i]->data()), texts[i]->size(), 1000)) {
            why = "cannot write " + path + ": " + std::strerror(errno);
            removeTlsFiles();
            return false;
        }
        plan.env.push_back(std::string(kVars[i]) + "=" + path);
    }
    return true;
}

void removeTlsFiles() {
    if (gDir.empty()) return;
    for (const char* name : kNames) unlink((gDir + "/" + name).c_str());
    rmdir(gDir.c_str());
    gDir.clear();
}

}  // namespace sudospawner
