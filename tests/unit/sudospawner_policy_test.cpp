// SPDX-License-Identifier: BSD-3-Clause
// Tests for sudospawner/policy.cpp (grammar, refusals) and planChild (environment from nothing).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "sudospawner.h"

using namespace sudospawner;

namespace {

const std::string kGood =
    "# comment\n"
    "min_uid 1500\n"
    "profile default /usr/bin/jupyterhub-singleuser --port=%p --x=100%%\n"
    "profile lab /opt/lab/bin/server\n"
    "allow_env JUPYTERHUB_API_TOKEN JUPYTERHUB_USER   # trailing comment\n"
    "setenv JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp\n"
    "limit as 8G\n"
    "limit nofile 1024\n"
    "limit cpu unlimited\n"
    "no_new_privs no\n"
    "log_file .local/state/hubd/server.log\n"
    "log_max_size 1M\n"
    "log_keep 2\n"
    "stop_timeout 20\n"
    "path /usr/bin:/bin\n"
    "lang en_US.UTF-8\n";

std::string errorOf(const std::string& text) {
    auto r = parsePolicy(text, "p.conf");
    CHECK_FALSE(r.error.empty());
    CHECK(r.policy.profiles.empty());  // no partial policy
    return r.error;
}

Identity alice() {
    Identity id;
    id.uid = 1501;
    id.gid = 1501;
    id.name = "alice";
    id.home = "/home/alice";
    id.shell = "/bin/bash";
    return id;
}

}  // namespace

TEST_CASE("a complete policy parses") {
    auto r = parsePolicy(kGood, "p.conf");
    INFO(r.error);
    REQUIRE(r.error.empty());
    const Policy& p = r.policy;
    CHECK(p.minUid == 1500);
    REQUIRE(p.profiles.size() == 2);
    CHECK(p.profile("default")->command == "/usr/bin/jupyterhub-singleuser");
    CHECK(p.profile("default")->args == std::vector<std::string>{"--port=%p", "--x=100%%"});
    CHECK(p.profile("nope") == nullptr);
    CHECK(p.allowed("JUPYTERHUB_USER"));
    CHECK_FALSE(p.allowed("LD_PRELOAD"));
    CHECK(p.limits.size() == 3);
    CHECK(p.limits[0].value == 8ULL << 30);
    CHECK(p.limits[2].value == RLIM_INFINITY);
    CHECK_FALSE(p.noNewPrivs);
    CHECK(p.logMaxSize == 1 << 20);
    CHECK(p.logKeep == 2);
    CHECK(p.stopTimeout == 20);
    CHECK(p.path == "/usr/bin:/bin");
    CHECK(p.lang == "en_US.UTF-8");
    // The default: user config disabled unless the policy decides.
    CHECK(std::count(p.setEnv.begin(), p.setEnv.end(),
                     std::pair<std::string, std::string>{"JUPYTERHUB_DISABLE_USER_CONFIG", "1"}) == 1);
}

TEST_CASE("defaults") {
    auto r = parsePolicy("profile default /usr/bin/jupyterhub-singleuser\n", "p.conf");
    REQUIRE(r.error.empty());
    CHECK(r.policy.minUid == 1000);
    CHECK(r.policy.noNewPrivs);
    CHECK(r.policy.lang == "C.UTF-8");
    CHECK(r.policy.logFile == ".local/state/hubd/server.log");
    auto own = parsePolicy("profile d /bin/true\nsetenv JUPYTERHUB_DISABLE_USER_CONFIG=0\n", "p.conf");
    REQUIRE(own.error.empty());
    CHECK(own.policy.setEnv.size() == 1);
}

TEST_CASE("errors name FILE:LINE and refuse everything") {
    CHECK(errorOf("profile default /usr/bin/x\nbogus 1\n") == "p.conf:2: unknown keyword 'bogus'");
    CHECK(errorOf("").find("no profile") != std::string::npos);
    CHECK(errorOf("profile default bin/x\n").find("p.conf:1: command 'bin/x' must be an absolute") == 0);
    CHECK(errorOf("profile default /usr/bin/../bin/sh\n").find("absolute") != std::string::npos);
    CHECK(errorOf("profile a /x\nprofile a /y\n").find("p.conf:2:") == 0);
    CHECK(errorOf("profile a /x\nmin_uid 1000\nmin_uid 2000\n").find("p.conf:3: min_uid is given twice") ==
          0);
    CHECK(errorOf("profile a /x\nmin_uid 0\n").find("min_uid") != std::string::npos);
    CHECK(errorOf("profile a /x\nmin_uid 12ab\n").find("min_uid") != std::string::npos);
    CHECK(errorOf("profile a /x\nlimit stack 1\n").find("unknown limit") != std::string::npos);
    CHECK(errorOf("profile a /x\nlimit as 1Q\n").find("bad limit") != std::string::npos);
    CHECK(errorOf("profile a /x\nno_new_privs maybe\n").find("yes or no") != std::string::npos);
    CHECK(errorOf("profile a /x\nlog_file /tmp/log\n").find("relative") != std::string::npos);
    CHECK(errorOf("profile a /x\nlog_file ../../etc/x\n").find("relative") != std::string::npos);
    CHECK(errorOf("profile a /x\nlog_max_size 10\n").find("4K") != std::string::npos);
    CHECK(errorOf("profile a /x\nstop_timeout 0\n").find("stop_timeout") != std::string::npos);
    CHECK(errorOf("profile a /x\npath bin:/usr/bin\n").find("absolute") != std::string::npos);
    CHECK(errorOf(std::string("profile a /x\n\x01\n")).find("p.conf:2: control character") == 0);
    CHECK(errorOf("profile a /x\nsetenv FOO\n").find("NAME=value") != std::string::npos);
    CHECK(errorOf("profile a /x\nsetenv PATH=/tmp\n").find("p.conf:2: PATH is set by sudospawner") == 0);
    CHECK(errorOf("profile a /x\nallow_env A\nsetenv A=1\n").find("both") != std::string::npos);
    CHECK(errorOf("profile a /x\n" + std::string(5000, 'x') + "\n").find("longer") != std::string::npos);
}

TEST_CASE("allow_env can never name loader, interpreter or identity variables") {
    for (const char* bad : {"LD_PRELOAD",
                            "LD_LIBRARY_PATH",
                            "LD_AUDIT",
                            "PYTHONPATH",
                            "PYTHONHOME",
                            "PYTHONSTARTUP",
                            "BASH_ENV",
                            "ENV",
                            "PATH",
                            "HOME",
                            "USER",
                            "SHELL",
                            "LOGNAME",
                            "LANG",
                            "JUPYTER_CONFIG_DIR",
                            "JUPYTER_PATH",
                            "IFS",
                            "GCONV_PATH",
                            "LC_ALL",
                            "MALLOC_CHECK_",
                            "GLIBC_TUNABLES",
                            "PERL5LIB",
                            "NODE_OPTIONS",
                            "IPYTHONDIR"}) {
        INFO(bad);
        CHECK(forbiddenHubVariable(bad));
        CHECK(errorOf(std::string("profile a /x\nallow_env ") + bad + "\n").find("may never be set") !=
              std::string::npos);
    }
    CHECK_FALSE(forbiddenHubVariable("JUPYTERHUB_API_TOKEN"));
    CHECK_FALSE(forbiddenHubVariable("MEM_LIMIT"));
    CHECK(errorOf("profile a /x\nallow_env lower\n").find("not a variable name") != std::string::npos);
}

TEST_CASE("planChild: environment from nothing, argv from the policy") {
    auto r = parsePolicy(kGood, "p.conf");
    REQUIRE(r.error.empty());
    hubproto::Spawn req{"default", 8123, "", {{"JUPYTERHUB_API_TOKEN", "tok"}}};
    ChildPlan plan;
    std::string why;
    REQUIRE(planChild(r.policy, alice(), req, plan, why));
    CHECK(plan.argv == std::vector<std::string>{"/usr/bin/jupyterhub-singleuser", "--port=8123", "--x=100%"});
    CHECK(plan.env == std::vector<std::string>{"HOME=/home/alice", "USER=alice", "LOGNAME=alice",
                                               "SHELL=/bin/bash", "PATH=/usr/bin:/bin", "LANG=en_US.UTF-8",
                                               "JUPYTERHUB_API_TOKEN=tok",
                                               "JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp",
                                               "JUPYTERHUB_DISABLE_USER_CONFIG=1"});

    hubproto::Spawn unknown{"nope", 8123, "", {}};
    CHECK_FALSE(planChild(r.policy, alice(), unknown, plan, why));
    CHECK(why == "profile 'nope' is not defined in p.conf");
    for (const char* bad : {"LD_PRELOAD", "PYTHONPATH", "PATH", "BASH_ENV", "HOME", "SOMETHING_ELSE"}) {
        hubproto::Spawn req2{"default", 8123, "", {{bad, "x"}}};
        INFO(bad);
        CHECK_FALSE(planChild(r.policy, alice(), req2, plan, why));
        CHECK(why.find(std::string("variable ") + bad + " is not in allow_env") == 0);
    }
}

TEST_CASE("argv expansion: %p and %% only; any other % stays as written") {
    auto r = parsePolicy("profile default /bin/x %p %% %x 100% %%p %\n", "p.conf");
    REQUIRE(r.error.empty());
    ChildPlan plan;
    std::string why;
    REQUIRE(planChild(r.policy, alice(), hubproto::Spawn{"default", 9, "", {}}, plan, why));
    CHECK(plan.argv == std::vector<std::string>{"/bin/x", "9", "%", "%x", "100%", "%p", "%"});
}

TEST_CASE("memory_max: a total for all of the server's processes, shown to it as MEM_LIMIT") {
    auto r = parsePolicy(
        "profile default /bin/x\nallow_env MEM_LIMIT CPU_LIMIT\nmemory_max 512M\nlimit data 1G\n", "p.conf");
    REQUIRE(r.error.empty());
    CHECK(r.policy.memoryMax == 512ULL << 20);
    REQUIRE(r.policy.limits.size() == 1);
    CHECK(r.policy.limits[0].resource == RLIMIT_DATA);
    CHECK(r.policy.limits[0].value == 1ULL << 30);
    ChildPlan plan;
    std::string why;
    // The hub may not raise (or lower) the limit the server is told about.
    hubproto::Spawn req{"default", 9, "", {{"MEM_LIMIT", "99999999999"}, {"CPU_LIMIT", "2"}}};
    REQUIRE(planChild(r.policy, alice(), req, plan, why));
    CHECK(std::count(plan.env.begin(), plan.env.end(), "MEM_LIMIT=536870912") == 1);
    CHECK(
        std::none_of(plan.env.begin(), plan.env.end(), [](auto& e) { return e == "MEM_LIMIT=99999999999"; }));
    CHECK(std::count(plan.env.begin(), plan.env.end(), "CPU_LIMIT=2") == 1);
    // Without memory_max the hub's value passes as before.
    auto r2 = parsePolicy("profile default /bin/x\nallow_env MEM_LIMIT\n", "p.conf");
    REQUIRE(planChild(r2.policy, alice(), req = {"default", 9, "", {{"MEM_LIMIT", "7"}}}, plan, why));
    CHECK(std::count(plan.env.begin(), plan.env.end(), "MEM_LIMIT=7") == 1);

    CHECK(errorOf("profile a /x\nmemory_max 1M\n").find("at least 16M") != std::string::npos);
    CHECK(errorOf("profile a /x\nmemory_max lots\n").find("memory_max") != std::string::npos);
    CHECK(errorOf("profile a /x\nmemory_max 1G\nmemory_max 2G\n").find("given twice") != std::string::npos);
}
