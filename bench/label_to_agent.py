"""From a label to a running agent: the time from a signed GitHub ``issues labeled``
webhook posted to the real ``fleetwarden run``'s endpoint to the agent's sandboxed process
running in its own checkout, on its own branch, of a ``--files``-file repository — with
ready checkouts (the default), without (``ready_checkouts: 0``, every file written at the
label), against the floor, a bare sandboxed launch of the same command in a checkout
already owned by the agent's uid (:mod:`bench.bare_launch`), and, as before, ``git
worktree add`` plus the same launch.

Run from the repository root (bubblewrap needed, as for the forge tests)::

    PYTHONPATH=$PWD python -m bench.label_to_agent [--files 20000] [--rounds 5]
        [--json out.json] [--keep]

**The rig.** A git upstream served over http holding ``app`` (``--files`` files of ~1 KB,
100 to a directory, one commit), the strict fake GitHub (held to GitHub's OpenAPI
description) with ``acme/app`` backed by it, and two real ``fleetwarden run`` processes
on it, each with its own state dir: *ready* (``ready_checkouts: 1``) and *today*
(``ready_checkouts: 0``). Each has ``--rounds`` command agents ``w0``…; round ``n`` opens
an issue labelled ``fleetwarden:wN`` and posts the signed ``issues labeled`` delivery to
``/webhooks/gh``. The agent's first act (``sh -c``, sandboxed, as its own uid) writes the
time, its branch and its directory to ``.git/fw-bench-started`` in its checkout; the
figure is that time less the time just before the post. Rounds interleave the two, each
waiting for the other's run to end and for the ready checkout to be made again before
the next, and for nothing more to be under way in its pool (as between two labels that
are not seconds apart).

**The floor** (*bare*). Per round, interleaved with the others: the product's bubblewrap
command line for the same ``sh -c`` (:func:`fleet.sandbox.policy.bwrap_argv`, egress open,
the forwarder first) started as a uid of its own by a launcher started before the rounds
(binds staged as the shim stages them), in a clone owned by that uid once before the
rounds: no shim's start, no hand-over, no run records.

**The old floor** (*c*, shown only). Per round, ``git worktree add -b`` of the same base
on a mirror of the same upstream (timed), plus *the same launch*: the ready run's time
less its checkout's share, measured in this process on the same mirror each round — a
ready checkout handed over and cut (:func:`fleet.repos.line.checkouts.make_checkout` with
:class:`fleet.repos.line.ready.ReadyCheckouts`) — which is also shown with the chown of the
checkout to an agent's uid (:func:`fleet.lane_files.hand_over`) as where the time goes.

Goals (issue 73): the ready p95 ≤ 1 s; the ready p50 ≤ 2× the bare launch's p50.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from bench.bare_launch import BareLaunch
from bench.harness import execute, percentile
from bench.processes import BenchError
from fleet.lane_files import hand_over_lane
from fleet.ledger.records.forge import Slug
from fleet.repos import git as g
from fleet.repos.line.checkouts import NewBranch, make_checkout, remove_tree
from fleet.repos.line.ready import ReadyCheckouts
from fleet.repos.schema import RepoEntry
from fleet.repos.upstream.mirror import Mirror
from tests.fakes.forge.webhook_sender import github_delivery, github_issue
from tests.fakes.github.api import BOT_LOGIN, DEFAULT_PAT, FakeGitHub
from tests.git_upstream import GitUpstream
from tests.integration.console_bot import ConsoleBot
from tests.integration.forge_rig import (
    APP_ON_GITHUB,
    app_on_github,
    ledger_rows,
    listening,
    post,
)
from tests.postgres_server import free_port

TOKEN = "ghp_benchUpstreamTokenNoAgentHolds1234567"
SECRET = "bench-webhook-secret-0123456789abcdef"
SLUG = Slug("acme", "app")
WRITER = "ann"
MARK = ".git/fw-bench-started"
SCRIPT = f"date +%s.%N > {MARK}; git rev-parse --abbrev-ref HEAD >> {MARK}; pwd >> {MARK}"
AGENT = """\
  - name: w{n}
    runtime: command
    repo: app
    argv: [sh, -c, "{script}"]
"""
GOAL_P95_S = 1.0
GOAL_RATIO = 2.0  # (a) p50 over the bare launch's
AGENT_UID = 1_650_000  # the in-process hand-over's, far from the uids the bots take
SETTLE = 300.0  # seconds a run's end or a ready checkout's making may take


@dataclass
class Result:
    files: int
    rounds: int
    ready_s: list[float] = field(default_factory=list)
    today_s: list[float] = field(default_factory=list)
    worktree_s: list[float] = field(default_factory=list)
    cut_s: list[float] = field(default_factory=list)  # a ready checkout handed over and cut
    chown_s: list[float] = field(default_factory=list)  # the checkout given to an agent's uid
    floor_s: list[float] = field(default_factory=list)
    bare_s: list[float] = field(default_factory=list)  # the bare sandboxed launch
    accepted_s: list[float] = field(default_factory=list)  # (a): the post to its 202 logged
    cut_at_s: list[float] = field(default_factory=list)  # (a): the post to its checkout cut
    forked_s: list[float] = field(default_factory=list)  # (a): the post to the shim's fork
    sandboxed_s: list[float] = field(default_factory=list)  # (a): to the sandbox's init up
    checked: list[str] = field(default_factory=list)  # branch and directory of each agent


def seeded(upstream: GitUpstream, files: int) -> None:
    """``app`` with ``files`` files of ~1 KB, 100 to a directory, in one commit."""
    tree = {}
    for n in range(files):
        body = "".join(f"def f{n}_{i}(x):\n    return x * {i} + {n}\n\n" for i in range(24))
        tree[f"pkg{n // 100:03}/mod_{n:05}.py"] = f'"""Module {n}."""\n\n{body}'
    upstream.create("app", tree)


def config(upstream: GitUpstream, github: FakeGitHub, port: int, ready: int, rounds: int) -> str:
    head = APP_ON_GITHUB.format(
        port=port, api=github.api_url, login=BOT_LOGIN, url=upstream.url("app")
    )
    agents = "".join(AGENT.format(n=n, script=SCRIPT) for n in range(rounds))
    return f"{head}    ready_checkouts: {ready}\nagents:\n{agents}"


def child_env() -> dict[str, str]:
    """The bots' environment: this tree's code first, the tokens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETWARDEN_")}
    here = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env.update(APP_TOKEN=TOKEN, FORGE_TOKEN=DEFAULT_PAT, FORGE_HOOK_SECRET=SECRET)
    return env


def started_bot(home: Path, text: str) -> ConsoleBot:
    home.mkdir()
    (home / "fleetwarden.yaml").write_text(text)
    return ConsoleBot(home, "--config", str(home / "fleetwarden.yaml"), env=child_env())


async def until(check: object, what: str, limit: float = SETTLE) -> None:
    deadline = time.monotonic() + limit
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise BenchError(f"{what} within {limit:.0f} s")
        await asyncio.sleep(0.05)


def marks(home: Path) -> dict[Path, str]:
    return {p: p.read_text() for p in (home / "state" / "checkouts" / "app").glob(f"*/{MARK}")}


def idle(home: Path) -> bool:
    return not ledger_rows(home, "SELECT id FROM runs WHERE ended_at IS NULL")


def refilled(home: Path) -> bool:
    """Whether the bot's ready checkout is made again, and nothing more is being done to
    it (made, brought up to date, or its work tree given ahead: a dotted name)."""
    where = home / "state" / "repos" / "app" / "ready"
    names = [p.name for p in where.iterdir()] if where.is_dir() else []
    return bool(names) and not any(name.startswith(".") for name in names)


@dataclass(frozen=True)
class Round:
    """One label's figures: seconds from the post to the agent's first act, and to the
    bot's log saying the delivery accepted and the checkout cut; the branch and place."""

    took: float
    accepted: float
    cut: float
    seen: str
    forked: float = float("nan")  # the run dir made, just before the shim is forked
    sandboxed: float = float("nan")  # sandbox.json: the shim started, bubblewrap's init up


async def label(github: FakeGitHub, home: Path, port: int, agent: str) -> Round:
    """``agent``'s label posted; what it took to its first act."""
    issue = github.add_issue(str(SLUG), f"Work of {agent} in {home.name}", "Go.",
                             author=WRITER, labels=[f"fleetwarden:{agent}"])  # fmt: skip
    event = github_issue("labeled", repo=SLUG, number=issue, sender=WRITER, author=WRITER,
                         label=f"fleetwarden:{agent}")  # fmt: skip
    headers, body = github_delivery(*event, secret=SECRET.encode())
    before = set(marks(home))
    posted = time.time()
    status, text = await asyncio.to_thread(post, port, "gh", headers, body)
    if status != 202:
        raise BenchError(f"the webhook was answered {status}: {text[:200]}")
    await until(lambda: set(marks(home)) - before, f"no agent started in {home.name}")
    path = (set(marks(home)) - before).pop()
    await until(lambda: len(path.read_text().splitlines()) >= 3, "the agent's mark unfinished")
    at, branch, where = path.read_text().splitlines()[:3]
    if branch in ("main", "HEAD") or Path(where).name != path.parents[1].name:
        raise BenchError(f"the agent ran on {branch} in {where}, not on its own branch")
    await until(lambda: idle(home), f"the run in {home.name} did not end")
    logged = (home / "state" / "fleetwarden.log").read_text(errors="replace").splitlines()
    delivery = headers["X-GitHub-Delivery"]
    accepted = logged_at(logged, f"delivery {delivery} (issues): accepted") - posted
    cut = logged_at(logged, f"{agent} works on {branch} of app, cut from") - posted
    forked, sandboxed = launch_times(home, agent)
    done = Round(float(at) - posted, accepted, cut, f"{branch} in {where}")
    return replace(done, forked=forked - posted, sandboxed=sandboxed - posted)


def launch_times(home: Path, agent: str) -> tuple[float, float]:
    """When ``agent``'s last run dir was made (its birth time: just before the shim is
    forked) and when the shim wrote its ``sandbox.json``; NaN where unknown."""
    runs = sorted((home / "state" / "agents" / agent / "runs").glob("*"))
    if not runs:
        return float("nan"), float("nan")
    born = subprocess.run(["stat", "-c", "%.9W", str(runs[-1])], capture_output=True, text=True)
    try:
        forked = float(born.stdout.strip() or "nan") or float("nan")
        sandboxed = (runs[-1] / "sandbox.json").stat().st_mtime
    except (ValueError, OSError):
        return float("nan"), float("nan")
    return forked, sandboxed


def logged_at(lines: Sequence[str], words: str) -> float:
    """The time of the log line that says ``words`` (the log's clock is this machine's)."""
    for line in lines:
        if words in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    raise BenchError(f"the bot's log does not say {words!r}")


async def floor_round(
    root: Path, mirror: Mirror, ready: ReadyCheckouts, n: int
) -> tuple[float, float, float]:
    """The worktree's seconds, a ready checkout's cut's, and its chown's, in this process
    (the agent's uid one for all rounds, as one agent's runs have)."""
    dest = root / "floor" / f"w-{n}"
    start = time.perf_counter()
    added = ["worktree", "add", "-q", "-b", f"fw/w/{n}", str(dest), "main"]
    await g.git(mirror.path, added, limit=600)
    worktree = time.perf_counter() - start
    await g.git(mirror.path, ["worktree", "remove", "--force", str(dest)], limit=600)
    await ready.settled("app")
    if n > 0:  # the last round's, kept until its uid was learned
        await asyncio.to_thread(remove_tree, root / "floor" / f"r-{n - 1}")
    tip = await mirror.tip("main")
    assert tip is not None
    dest = root / "floor" / f"r-{n}"
    start = time.perf_counter()
    await make_checkout(mirror.path, dest,
                        NewBranch("main", f"fw/r/{n}", "http://w:t@127.0.0.1:1/git/w/app.git"),
                        ready=partial(ready.take, "app", "main", tip))  # fmt: skip
    cut = time.perf_counter() - start
    start = time.perf_counter()
    await asyncio.to_thread(hand_over_lane, root / "floor" / "home", dest, AGENT_UID)
    chown = time.perf_counter() - start
    return worktree, cut, chown


async def work(root: Path, args: argparse.Namespace) -> Result:
    result = Result(args.files, args.rounds)
    upstream = GitUpstream(root / "upstream", TOKEN)
    seeded(upstream, args.files)
    upstream.start()
    bots: list[ConsoleBot] = []
    try:
        with app_on_github(upstream, SLUG, WRITER) as github:
            homes = {"ready": root / "ready", "today": root / "today"}
            ports = {}
            for name, home in homes.items():
                ports[name] = free_port()
                text = config(upstream, github, ports[name], int(name == "ready"), args.rounds)
                bots.append(started_bot(home, text))
            entry = RepoEntry(url=upstream.url("app"), token_env="APP_TOKEN", ready_checkouts=1)
            mirror = Mirror("app", entry, root / "floor-repos", child_env())
            await mirror.ensure()
            await mirror.fetch()
            ready = ReadyCheckouts({"app": mirror})
            mirror.fetched = partial(ready.stir, "app")
            await ready.start(root / "floor-repos")
            (root / "floor" / "home").mkdir(parents=True)
            bare = BareLaunch(root / "bare", [*homes.values(), root / "floor-repos",
                              root / "floor"], SCRIPT, MARK)  # fmt: skip
            await bare.make(mirror.path, "main")
            bare.start()
            for name, port in ports.items():
                await until(lambda p=port: listening(p), f"the {name} bot did not listen")
            await until(lambda: refilled(homes["ready"]), "no ready checkout was made")
            for n in range(args.rounds):
                done = await label(github, homes["ready"], ports["ready"], f"w{n}")
                result.ready_s.append(done.took)
                result.accepted_s.append(done.accepted)
                result.cut_at_s.append(done.cut)
                result.forked_s.append(done.forked)
                result.sandboxed_s.append(done.sandboxed)
                result.checked.append(done.seen)
                await until(
                    lambda: refilled(homes["ready"]), "the ready checkout was not made again"
                )
                done = await label(github, homes["today"], ports["today"], f"w{n}")
                result.today_s.append(done.took)
                result.checked.append(done.seen)
                worktree, cut, chown = await floor_round(root, mirror, ready, n)
                result.worktree_s.append(worktree)
                result.cut_s.append(cut)
                result.chown_s.append(chown)
                result.floor_s.append(worktree + max(0.0, result.ready_s[-1] - cut))
                result.bare_s.append(await bare.launch())
                said = f"ready {result.ready_s[-1]:.3f} s, today {result.today_s[-1]:.3f} s"
                said += f", bare {result.bare_s[-1]:.3f} s"
                print(f"round {n}: {said}, worktree {worktree:.3f} s", file=sys.stderr)
            await ready.stop()
    finally:
        if "bare" in locals():
            bare.stop()
        for bot in bots:
            try:
                bot.quit(60)
            except (OSError, subprocess.TimeoutExpired):
                bot.kill()
        upstream.stop()
    return result


def report(result: Result) -> str:
    def row(label: str, samples: Sequence[float]) -> str:
        return (f"{label:<42}{percentile(samples, 50):>9.3f}{percentile(samples, 95):>9.3f}"
                f"{max(samples):>9.3f}")  # fmt: skip

    ready50, ready95 = percentile(result.ready_s, 50), percentile(result.ready_s, 95)
    floor50 = percentile(result.floor_s, 50)
    today50 = percentile(result.today_s, 50)
    bare50 = percentile(result.bare_s, 50)
    lines = [
        f"label → agent running, {result.files:,}-file repository, {result.rounds} rounds (s):",
        f"{'':<42}{'p50':>9}{'p95':>9}{'max':>9}",
        row("(a) ready checkouts", result.ready_s),
        row("(b) today (ready_checkouts: 0)", result.today_s),
        row("floor: bare sandboxed launch (owned tree)", result.bare_s),
        row("(c) old floor: worktree add + launch", result.floor_s),
        "where the time goes in (a), from the post (the bot's log, ms resolution):",
        row("  delivery accepted", result.accepted_s),
        row("  line cut (forge reads, fetch, checkout)", result.cut_at_s),
        row("  shim forked (chown, sandbox plan done)", result.forked_s),
        row("  shim started, sandbox's init up", result.sandboxed_s),
        row("  agent's first act", result.ready_s),
        "and in this process, on a mirror of the same upstream:",
        row("  git worktree add", result.worktree_s),
        row("  ready checkout handed over + cut", result.cut_s),
        row("  chown to the agent's uid", result.chown_s),
        f"(b) / (a) p50: {today50 / ready50:.1f}x;  (c) / (a) p50: {floor50 / ready50:.1f}x",
        f"goal: (a) p95 ≤ {GOAL_P95_S:.1f} s — {ready95:.3f} s "
        f"{'met' if ready95 <= GOAL_P95_S else 'missed'}",
        f"goal: (a) / bare p50 ≤ {GOAL_RATIO:.0f}x — {ready50:.3f} / {bare50:.3f} s = "
        f"{ready50 / bare50:.2f}x {'met' if ready50 <= GOAL_RATIO * bare50 else 'missed'}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench.label_to_agent", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--files", type=int, default=20_000, help="files in the repository")
    parser.add_argument("--rounds", type=int, default=5, help="labels posted to each bot")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    here = subprocess.run([sys.executable, "-c", "import fleet; print(fleet.__file__)"],
                          env=child_env(), capture_output=True, text=True, check=True)  # fmt: skip
    print(f"the bots run {here.stdout.strip()}", file=sys.stderr)
    if shutil.which("bwrap") is None:
        raise SystemExit("bubblewrap (bwrap) is needed: the agents run sandboxed")

    async def run(root: Path) -> Result:
        return await work(root, args)

    return execute(run, report, keep=args.keep, json_path=args.json, prefix="fw-label-")


if __name__ == "__main__":
    raise SystemExit(main())
