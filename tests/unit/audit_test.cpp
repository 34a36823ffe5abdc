// SPDX-License-Identifier: BSD-3-Clause
// The audit log's line format (no injection, bounded values) and its file
// target.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "hubcore/audit.h"

namespace {

std::string readAll(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("audit lines: key=value, values quoted and escaped") {
    CHECK(hub::formatAuditLine("login.success", {{"user", "alice"}, {"source", "192.0.2.7"}}) ==
          "event=login.success user=\"alice\" source=\"192.0.2.7\"");
    // A forged second line, a forged field and a forged quote stay inside the value.
    std::string line = hub::formatAuditLine(
        "login.failure", {{"user", "eve\nevent=login.success user=\"root\""}, {"source", "x"}});
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line ==
          "event=login.failure user=\"eve\\\\x0aevent=login.success user=\\\"root\\\"\" source=\"x\"");
    // Bidi overrides and invalid UTF-8 are escaped, not written raw.
    line = hub::formatAuditLine("x", {{"user", "a\u202Eb\xff"}});
    CHECK(line.find("\u202E") == std::string::npos);
    CHECK(line.find('\xff') == std::string::npos);
}

TEST_CASE("audit values are bounded") {
    std::string huge(100000, 'a');
    std::string line = hub::formatAuditLine("login.failure", {{"user", huge}});
    CHECK(line.size() < hub::kMaxAuditValueBytes + 64);
}

TEST_CASE("file target: appended lines, mode 0600, reopen after rotation; bad targets refused") {
    char dir[] = "/tmp/hubd-audit-XXXXXX";
    REQUIRE(::mkdtemp(dir));
    std::string path = std::string(dir) + "/audit.log";
    hub::openAuditLog(path);
    hub::audit("token.create", {{"user", "alice"}, {"note", "ci"}});
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    std::string rotated = path + ".1";
    REQUIRE(::rename(path.c_str(), rotated.c_str()) == 0);
    hub::audit("spawn", {{"user", "alice"}});  // still the old file until reopened
    hub::reopenAuditLog();
    hub::audit("stop", {{"user", "alice"}});
    std::string old = readAll(rotated);
    CHECK(old.find("event=token.create user=\"alice\" note=\"ci\"\n") != std::string::npos);
    CHECK(old.find("event=spawn") != std::string::npos);
    CHECK(readAll(path).find("event=stop user=\"alice\"\n") != std::string::npos);
    CHECK(readAll(path).find("event=spawn") == std::string::npos);
    CHECK_THROWS_AS(hub::openAuditLog("relative/path"), std::runtime_error);
    CHECK_THROWS_AS(hub::openAuditLog(std::string(dir) + "/missing/dir/audit.log"), std::runtime_error);
    hub::openAuditLog("off");
    hub::audit("ignored", {});
    ::unlink(path.c_str());
    ::unlink(rotated.c_str());
    ::rmdir(dir);
}
