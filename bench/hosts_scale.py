"""Several hosts: N stub agents spread over 4 hosts against N local agents, in one run.

Run from the repository root, as root (each host is a real OpenSSH server on 127.0.0.2-5
letting in a Unix user of its own, made with ``useradd``; ``tests/sshd_server.py``)::

    python -m bench.hosts_scale [--agents 200] [--hosts 4] [--rounds 20] [--json out.json]

Two fleets, one after the other, each under the real ``fleetwarden run`` (console on
pipes, :class:`bench.fleet_scale.Console`), with the same agents — stub agents in tmux,
sandboxed, ``egress: locked`` with only the doors to the metering proxy and the heartbeat
endpoint (``egress_allow: []``):

* ``local``: all N on this machine;
* ``hosts``: N spread round-robin over the hosts (``spawn aNNN --host boxK``): each runs
  in a tmux server of the host's user, reached over one SSH connection per host, its
  heartbeats through its sandbox's doors forwarded over that connection, its log mirrored
  from one look a second per host.

For each: the spawn rate (spawned one after the other, each awaited), ``ps`` p50/p95 over
``--rounds`` rounds (timed from the line typed to its "N of N agents running"), one
watchdog sweep's cost as the orchestrator's CPU over a quiet 10 s (heartbeats, the hosts'
looks and the sweeps it runs every 30 s, nothing typed), and the orchestrator's VmRSS and
VmHWM. The ratios hosts / local are the goals' (``ps`` ≤ 1.5×).

Every agent is killed at the end, on error and on Ctrl-C too: the local ones by their
process groups, the hosts' with every process of their users.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.console_driver import Console
from bench.fleet_procs import cpu_seconds, kill_agents, proc_status_kb
from bench.harness import stats
from tests.sshd_server import SshServer

SUMMARY = re.compile(r"^(\d+) of (\d+) agents? running\s*$")
STARTED = re.compile(r"Agent \**(a\d+)\** started")
DEFAULTS = (
    "defaults:\n"
    "  send_reply_wait_seconds: 0\n"
    "  runtime: stub\n"
    "  backend: tmux\n"
    "  egress_allow: []\n"
)
GOAL_PS_RATIO = 1.5


def config_text(hosts: list[SshServer], known: Path, state: str) -> str:
    text = f"state_dir: {state}\n" + DEFAULTS
    if hosts:
        text += "hosts:\n"
        for index, server in enumerate(hosts):
            text += (
                f"  - {{name: box{index + 2}, ssh: '{server.ssh_target}',"
                f" key_file: '{server.client_key}', known_hosts: '{known}',"
                f" max_agents: 1000, state_dir: {server.state_dir('fw-bench')[0]}}}\n"
            )
    return text


def fleet(
    workdir: Path,
    agents: int,
    rounds: int,
    hosts: list[SshServer],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """One fleet of ``agents``, on ``hosts`` round-robin (none: here); its figures."""
    known = workdir / "known_hosts"
    known.write_text("".join(server.known_hosts_line() + "\n" for server in hosts))
    config = workdir / "fleetwarden.yaml"
    config.write_text(config_text(hosts, known, "./state"))
    bot = Console(workdir, config)
    try:
        bot.send("ps")
        bot.expect(re.compile(r"No agents yet"), 0)
        if hosts:  # every host up and set up before the first spawn
            names = [f"box{i + 2}" for i in range(len(hosts))]
            deadline = time.monotonic() + 60
            while True:
                since = bot.mark()
                bot.send("hosts")
                _, _, _ = bot.expect(re.compile(r"^local +up"), since)
                time.sleep(0.3)
                with bot._cond:
                    seen = "\n".join(text for _, text in bot._lines[since:])
                if all(re.search(rf"^{n} +up .* \d+\.\d\d", seen, re.M) for n in names):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the hosts did not all come up:\n{seen}")
        rss_idle = proc_status_kb(bot.pid, "VmRSS")
        spawn_ms: list[float] = []
        t_all = time.perf_counter()
        for i in range(1, agents + 1):
            name = f"a{i:03d}"
            where = f" --host box{(i - 1) % len(hosts) + 2}" if hosts else ""
            since = bot.mark()
            t0 = bot.send(f"spawn {name} --prompt hi{where}")
            at, found, _ = bot.expect(STARTED, since, timeout=60)
            if found.group(1) != name:
                raise RuntimeError(f"expected {name} to start, saw {found.group(0)}")
            spawn_ms.append((at - t0) * 1000)
            if i % 50 == 0:
                log(f"  spawned {i}/{agents}")
        spawn_total = time.perf_counter() - t_all
        time.sleep(6)  # every agent heartbeats at least once (the stub: every 5 s)
        ps_ms: list[float] = []
        for _ in range(rounds):
            since = bot.mark()
            t0 = bot.send("ps")
            at, found, _ = bot.expect(SUMMARY, since, timeout=60)
            if int(found.group(1)) != agents:
                raise RuntimeError(f"ps says {found.group(0)!r}, expected {agents} running")
            ps_ms.append((at - t0) * 1000)
            time.sleep(0.2)
        window = 10.0
        cpu0 = cpu_seconds(bot.pid)
        time.sleep(window)
        quiet_cpu_pct = (cpu_seconds(bot.pid) - cpu0) / window * 100
        rss = proc_status_kb(bot.pid, "VmRSS")
        hwm = proc_status_kb(bot.pid, "VmHWM")
        code = bot.close()
        if code != 0:
            raise RuntimeError(f"fleetwarden exited {code}; stderr:\n{bot.stderr[-3000:]}")
        return {
            "agents": agents,
            "hosts": len(hosts),
            "spawn_ms": stats(spawn_ms),
            "spawn_per_s": agents / spawn_total,
            "ps_ms": stats(ps_ms),
            "quiet_cpu_pct": quiet_cpu_pct,
            "rss_idle_mb": rss_idle / 1024,
            "rss_mb": rss / 1024,
            "hwm_mb": hwm / 1024,
        }
    finally:
        bot.kill()
        kill_agents(workdir / "state")


def report(local: dict[str, Any], remote: dict[str, Any]) -> str:
    lines = [
        f"{local['agents']} stub agents here vs spread over {remote['hosts']} hosts (sandboxed, "
        "locked, tmux)",
        f"{'':<34}{'local':>12}{'hosts':>12}{'hosts/local':>13}",
    ]
    rows = [
        ("ps p50 (ms)", local["ps_ms"]["p50"], remote["ps_ms"]["p50"]),
        ("ps p95 (ms)", local["ps_ms"]["p95"], remote["ps_ms"]["p95"]),
        ("spawn p50 (ms)", local["spawn_ms"]["p50"], remote["spawn_ms"]["p50"]),
        ("spawn rate (agents/s)", local["spawn_per_s"], remote["spawn_per_s"]),
        ("orchestrator CPU, quiet 10 s (%)", local["quiet_cpu_pct"], remote["quiet_cpu_pct"]),
        ("orchestrator VmRSS (MB)", local["rss_mb"], remote["rss_mb"]),
        ("orchestrator VmHWM (MB)", local["hwm_mb"], remote["hwm_mb"]),
    ]
    for label, a, b in rows:
        ratio = b / a if a else float("nan")
        lines.append(f"{label:<34}{a:>12.1f}{b:>12.1f}{ratio:>12.2f}x")
    ratio = remote["ps_ms"]["p95"] / local["ps_ms"]["p95"]
    verdict = "met" if ratio <= GOAL_PS_RATIO else "NOT met"
    lines.append(f"goal: ps p95 on hosts <= {GOAL_PS_RATIO}x local: {ratio:.2f}x, {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--hosts", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    servers: list[SshServer] = []
    with tempfile.TemporaryDirectory(prefix="fw-hosts-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the hosts' users read their sshd's files under it
        try:
            for index in range(args.hosts):
                server = SshServer(f"127.0.0.{index + 2}", f"fwbench{index + 2}")
                servers.append(server)
                server.start()
            log(f"local: {args.agents} agents")
            (root / "local").mkdir()
            local = fleet(root / "local", args.agents, args.rounds, [], log)
            log(f"hosts: {args.agents} agents over {args.hosts} hosts")
            (root / "hosts").mkdir()
            remote = fleet(root / "hosts", args.agents, args.rounds, servers, log)
        finally:
            for server in servers:
                with contextlib.suppress(Exception):
                    server.close()
    print(report(local, remote))
    if args.json is not None:
        args.json.write_text(json.dumps({"local": local, "hosts": remote}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
