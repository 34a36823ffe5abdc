#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Per-user memory and CPU limits from the helper's root-owned policy, with
real sudo, real users and the real jupyterhub-singleuser 3.0.

The policy gives every server `memory_max 300M` (all of its processes
together, enforced by the helper's supervisor), `limit data 1G` (each process,
by the kernel) and `limit cpu 20` (CPU seconds of each process). Two users,
`hog` and `neighbour`, each run a server with a kernel; the neighbour's kernel
holds a variable and its pid is noted. Then, through each kernel's WebSocket:
* hog asks for 1.5 GiB at once: the kernel gets MemoryError (limit data)
  and goes on: same pid, and it still answers;
* hog allocates 16 MiB chunks, touching every page, up to 1.5 GiB: the
  supervisor kills the kernel once the server's processes hold more than
  300 MiB together; the loop never finishes; the server's log and the
  helper say why, naming memory_max; hog's jupyterhub-singleuser keeps
  running and answers, and gets a fresh kernel;
* the server is told its limit: MEM_LIMIT = 314572800 in its environment;
* hog's kernel spins: killed at 20 CPU seconds (SIGXCPU);
* through all of this the neighbour's server and kernel are untouched: same
  pids, the variable still set, the kernel still answers.
Needs root (exit 77 otherwise). Run under flock /tmp/hubd-itest.lock.
"""
import os
import secrets

import hubtest
from hubtest import check, wait_for
from demotest import stop_pids, user_pids
from kerneltest import Kernel
from sudotest import require_singleuser, require_spawn_tools, singleuser_env, singleuser_policy, sudo_setup

OPS = secrets.token_hex(32)
MEMORY_MAX_MIB = 300
LOG = ".local/state/hubd/server.log"
POLICY = singleuser_policy("test_resource_limits.py", f"log_file {LOG}", f"memory_max {MEMORY_MAX_MIB}M",
                           "limit data 1G", "limit cpu 20")


def api(hub, method, path, body=None):
    return hub.client().json(method, "/hub/api" + path, headers={"Authorization": f"token {OPS}"}, json=body)


def server_ready(hub, name):
    status, body, _ = api(hub, "GET", f"/users/{name}")
    return status == 200 and (body.get("servers", {}).get("", {}) or {}).get("ready")


def start(hub, user):
    """Starts user's server; returns (singleuser pid, a Kernel of it holding x = 41, kernel pid)."""
    status, _, _ = api(hub, "POST", f"/users/{user.name}/server")
    check(status in (201, 202), f"{user.name}'s server start is accepted ({status})")
    check(wait_for(lambda: server_ready(hub, user.name), timeout=120), f"{user.name}'s server is ready")
    status, tok, _ = api(hub, "POST", f"/users/{user.name}/tokens", {"note": "limits test", "expires_in": 900})
    check(status == 201, f"a token for {user.name} ({status})")
    kernel = Kernel(hub, user.name, (tok or {}).get("token", ""))
    if not kernel.open():
        return None, kernel, None
    r = kernel.run("import os\nx = 41\nprint(os.getpid())", 90)
    check(r["done"] and r["text"].strip().isdigit(), f"{user.name}'s kernel runs code ({r})")
    return singleuser_env(user.name)[0], kernel, int(r["text"]) if r["text"].strip().isdigit() else None


def alive(pid):
    return pid is not None and os.path.exists(f"/proc/{pid}")


def server_log(user):
    try:
        with open(os.path.join(user.home_dir, LOG), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def test_limits(hub, hog, neighbour):
    n_server, n_kernel, n_pid = start(hub, neighbour)
    h_server, h_kernel, h_pid = start(hub, hog)
    if not (n_pid and h_pid):
        return
    env = singleuser_env(hog.name)[1]
    check(env.get("MEM_LIMIT") == str(MEMORY_MAX_MIB << 20),
          f"the server is told its limit: MEM_LIMIT={env.get('MEM_LIMIT')}")

    # Each process: the kernel refuses one allocation over `limit data`, and goes on.
    r = h_kernel.run("b = bytearray(1536 << 20)", 60)
    check(r["error"] == "MemoryError", f"1.5 GiB at once fails with MemoryError in the kernel ({r})")
    r = h_kernel.run("print(os.getpid())", 30)
    check(r["text"].strip() == str(h_pid), f"the kernel survives its MemoryError ({r})")

    # The server's processes together: the supervisor stops the hog at memory_max.
    r = h_kernel.run("import time\nchunks = []\nfor i in range(96):\n chunks.append(b'\\x01' * (16 << 20))\n"
                     " time.sleep(0.05)\nprint('allocated', len(chunks))", 120)
    check("allocated" not in r["text"] and not r["done"],
          f"the hog never finishes allocating 1.5 GiB ({ {k: v for k, v in r.items() if k != 'text'} })")
    check(wait_for(lambda: not alive(h_pid), timeout=30), f"the hog's kernel (pid {h_pid}) is killed")
    log = server_log(hog)
    line = next((x for x in log.splitlines() if "over memory_max" in x), "")
    check(f"over memory_max {MEMORY_MAX_MIB} MiB" in line and f"killed pid {h_pid}" in line,
          f"the server's log names memory_max and the killed pid: {line!r}")
    held = int(line.split(" held ")[1].split(" MiB")[0]) if " held " in line else 10**6
    check(MEMORY_MAX_MIB < held < MEMORY_MAX_MIB + 512,  # MiB rounded up
          f"it was stopped near its limit ({held} MiB held)")
    check(alive(h_server), "the hog's jupyterhub-singleuser keeps running")
    status, _, _ = hub.client().json("GET", f"/user/{hog.name}/api/status",
                                     headers={"Authorization": f"token {h_kernel.token}"})
    check(status == 200, f"the hog's server still answers ({status})")
    check(server_ready(hub, hog.name), "the hub still shows the hog's server as ready")
    h_kernel.close()

    # CPU seconds: a spinning kernel ends at `limit cpu`.
    fresh = Kernel(hub, hog.name, h_kernel.token)
    if fresh.open():
        r = fresh.run("import os\nprint(os.getpid())", 90)
        spin_pid = int(r["text"]) if r["text"].strip().isdigit() else None
        check(spin_pid and spin_pid != h_pid, f"a new kernel runs for the hog (pid {spin_pid})")
        r = fresh.run("while True:\n pass", 240)
        check(r["restarted"] and not r["done"], f"the spinning kernel is ended ({r})")
        check(wait_for(lambda: not alive(spin_pid), timeout=30), "the spinning kernel is gone")
        check(server_log(hog).count("over memory_max") == 1, "its end is the CPU limit's, not memory_max's")
        fresh.close()

    # The neighbour saw none of it.
    check(alive(n_server) and alive(n_pid), "the neighbour's server and kernel still run (same pids)")
    r = n_kernel.run("print(x + 1, os.getpid())", 60)
    check(r["text"].split() == ["42", str(n_pid)], f"the neighbour's kernel kept its state ({r['text']!r})")
    check("memory_max" not in server_log(neighbour), "nothing was killed in the neighbour's server")
    n_kernel.close()


def run():
    require_spawn_tools("sudo", "visudo", "useradd", "pgrep")
    require_singleuser()
    with hubtest.hub_user() as hub_name, hubtest.SystemUser() as hog, hubtest.SystemUser() as neighbour, \
            sudo_setup(hub_name.name, [hog.name, neighbour.name], POLICY) as setup:
        if setup is None:
            return
        hub = hubtest.Hub(config=f"""
c.JupyterHub.services = [{{'name': 'ops', 'api_token': '{OPS}', 'admin': True}}]
c.Authenticator.allowed_users = {{'{hog.name}', '{neighbour.name}'}}
c.Spawner.http_timeout = 90
c.Spawner.start_timeout = 120
""", args=["--JupyterHub.spawner_class=sudospawner.SudoSpawner"], user=hub_name.name)
        try:
            with hub:
                hubtest.main([("resource limits", lambda: test_limits(hub, hog, neighbour))])
        finally:
            for user in (hog, neighbour):  # servers outlive hubd by design
                stop_pids(user_pids(user.name))


if __name__ == "__main__":
    run()
