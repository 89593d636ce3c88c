"""Repositories: what a run's checkout costs against git's own ways of making one, and what
the end-of-run summary of a large change costs with 20 other live lines. Real git, in a
temporary directory; no network.

Run from the repository root::

    python -m bench.repos [--files 20000] [--rounds 3] [--change 500] [--others 20]
        [--summaries 30] [--json out.json] [--keep]

**The repository.** ``--files`` files (~1 KB of text each, 100 to a directory) in one
commit, fetched into a bare mirror as Fleetwarden's mirror fetches the upstream (so it is
one pack, as after a real fetch).

**Checkouts.** Per round, interleaved, each into a new directory: *fleetwarden*, the run's
checkout as the product makes it (:func:`fleet.repos.line.checkouts.make_checkout`: ``git clone
--no-local --single-branch --branch main`` of the mirror — a pack of what the base reaches —
``git checkout -b``,
``origin`` pointed at the door); *worktree*, ``git worktree add -b`` on the mirror; *clone
--local*, ``git clone --local`` of the mirror (hard links). Removed after each round, not
timed. Reported: the median and max of each, and fleetwarden's median over the faster of
the other two (goal ≤ 1.5).

**Summary.** On the same repository: a line with a ``--change``-file change (three
commits) and ``--others`` other live lines of 25 files each, four of them sharing files
with it (two clash, two merge cleanly); the base moved by two commits since the forks.
:func:`fleet.repos.landing.changes.change_of` (stat, commits, base moved, applies-cleanly, the
clash check against every other line) timed ``--summaries`` times as the bot asks it
after a run (the other lines' changed files remembered from before), and ``--summaries``
times cold (forgotten before each call: the first summary after the base moved). Goal:
p95 ≤ 300 ms.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import execute, percentile
from bench.processes import BenchError
from fleet.repos import git as g
from fleet.repos.landing import changes
from fleet.repos.landing.changes import OtherLine, change_of
from fleet.repos.line.checkouts import NewBranch, make_checkout

METHODS = ("fleetwarden", "worktree", "clone --local")


@dataclass
class Result:
    files: int
    rounds: int
    checkout_ms: dict[str, list[float]] = field(default_factory=dict)
    change_files: int = 0
    others: int = 0
    clashes: int = 0
    warm_ms: list[float] = field(default_factory=list)
    cold_ms: list[float] = field(default_factory=list)


async def sh(repo: Path | None, *args: str) -> str:
    return (await g.git(repo, list(args), limit=600)).text.strip()


def write_tree(work: Path, files: int) -> list[str]:
    """``files`` files of ~1 KB in ``work``, 100 to a directory; their names."""
    names = []
    for n in range(files):
        name = f"pkg{n // 100:03}/mod_{n:05}.py"
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def f{n}_{i}(x):\n    return x * {i} + {n}\n\n" for i in range(24))
        path.write_text(f'"""Module {n}."""\n\n{body}')
        names.append(name)
    return names


async def commit(work: Path, edits: dict[str, str], message: str) -> str:
    for name, text in edits.items():
        (work / name).write_text(text)
    await sh(work, "add", "-A")
    await sh(work, "commit", "-q", "-m", message)
    return await sh(work, "rev-parse", "HEAD")


def edited(work: Path, name: str, tag: str, line: int = 2) -> str:
    """``name``'s text with its ``line``-th line replaced by a mark of ``tag``."""
    lines = (work / name).read_text().split("\n")
    lines[line] = f"# edited by {tag}"
    return "\n".join(lines)


async def time_checkouts(root: Path, mirror: Path, rounds: int, result: Result) -> None:
    out = root / "checkouts"
    out.mkdir()
    result.checkout_ms = {m: [] for m in METHODS}
    for n in range(rounds):
        for method in METHODS:
            dest = out / f"{method.split()[0]}-{n}"
            start = time.perf_counter()
            if method == "fleetwarden":
                await make_checkout(
                    mirror,
                    dest,
                    NewBranch(
                        base_ref="main",
                        branch=f"fw/a/{n}",
                        origin_url="http://a:token@127.0.0.1:1/git/a/demo.git",
                    ),
                )
            elif method == "worktree":
                await sh(mirror, "worktree", "add", "-q", "-b", f"fw/w/{n}", str(dest), "main")
            else:
                await sh(None, "clone", "-q", "--local", "--branch", "main", str(mirror), str(dest))
            result.checkout_ms[method].append((time.perf_counter() - start) * 1000)
            if method == "worktree":
                await sh(mirror, "worktree", "remove", "--force", str(dest))
                await sh(mirror, "branch", "-q", "-D", f"fw/w/{n}")
            shutil.rmtree(dest, ignore_errors=True)


async def new_line(root: Path, mirror: Path, agent: str, fork: str) -> tuple[Path, str]:
    repo = root / "lines" / agent / "1.git"
    await sh(None, "init", "-q", "--bare", str(repo))
    (repo / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
    branch = f"fw/{agent}/1"
    await sh(repo, "update-ref", f"refs/heads/{branch}", fork)
    return repo, branch


async def make_lines(
    root: Path, work: Path, mirror: Path, names: Sequence[str], args: Result
) -> tuple[Path, str, str, list[OtherLine]]:
    """The line with the big change and the others; what ``change_of`` needs."""
    fork = await sh(mirror, "rev-parse", "refs/heads/main")
    mine = names[: args.change_files]
    repo, branch = await new_line(root, mirror, "ann", fork)
    await sh(work, "checkout", "-q", "-b", branch, fork)
    third = max(1, len(mine) // 3)
    for part in range(3):
        chunk = mine[part * third : (part + 1) * third] if part < 2 else mine[2 * third :]
        await commit(work, {n: edited(work, n, "ann") for n in chunk}, f"ann part {part}")
    await sh(work, "push", "-q", str(repo), f"HEAD:refs/heads/{branch}")
    others = []
    for k in range(args.others):
        agent = f"o{k:02}"
        other_repo, other_branch = await new_line(root, mirror, agent, fork)
        await sh(work, "checkout", "-q", "-b", other_branch, fork)
        start = len(mine) + k * 25
        theirs = list(names[start : start + 25])
        if k < 4:
            theirs[0] = mine[k]  # shares a file: k 0, 1 on the same line (clash), 2, 3 not
        edits = {n: edited(work, n, agent, 2 if k < 2 or n not in mine else 40) for n in theirs}
        await commit(work, edits, f"{agent} work")
        await sh(work, "push", "-q", str(other_repo), f"HEAD:refs/heads/{other_branch}")
        others.append(OtherLine(agent, other_branch, other_repo))
    await sh(work, "checkout", "-q", "main")
    spare = names[len(mine) + args.others * 25 :]
    for step in range(2):
        await commit(work, {spare[step]: edited(work, spare[step], "base")}, f"base {step}")
    await sh(mirror, "fetch", "-q", str(work), "+refs/heads/main:refs/heads/main")
    return repo, branch, fork, others


async def work(root: Path, args: argparse.Namespace) -> Result:
    result = Result(args.files, args.rounds, change_files=args.change, others=args.others)
    src = root / "work"
    await sh(None, "init", "-q", "-b", "main", str(src))
    names = write_tree(src, args.files)
    await commit(src, {}, "initial")
    mirror = root / "mirror.git"
    await sh(None, "init", "-q", "--bare", "-b", "main", str(mirror))
    await sh(mirror, "fetch", "-q", str(src), "+refs/heads/*:refs/heads/*")
    scratch = root / "scratch.git"
    await sh(None, "init", "-q", "--bare", str(scratch))
    (scratch / "objects" / "info" / "alternates").write_text(f"{mirror / 'objects'}\n")
    await time_checkouts(root, mirror, args.rounds, result)

    if args.change + args.others * 25 + 2 > len(names):
        raise BenchError("the repository is too small for that change and that many lines")
    repo, branch, fork, others = await make_lines(root, src, mirror, names, result)

    async def summary() -> float:
        start = time.perf_counter()
        change = await change_of(
            scratch,
            mirror,
            repo,
            repo="demo",
            agent="ann",
            branch=branch,
            base_ref="main",
            fork_sha=fork,
            others=others,
        )
        took = (time.perf_counter() - start) * 1000
        if len(change.files) + change.more_files != args.change or not change.applies:
            raise BenchError(f"the summary is wrong: {change}")
        result.clashes = len(change.clashes)
        return took

    changes.forget()
    await summary()  # as the line's earlier summaries did
    for _ in range(args.summaries):
        result.warm_ms.append(await summary())
    for _ in range(args.summaries):
        changes.forget()
        result.cold_ms.append(await summary())
    if result.clashes != 2:
        raise BenchError(f"expected 2 clashes, found {result.clashes}")
    return result


def report(result: Result) -> str:
    medians = {m: percentile(v, 50) for m, v in result.checkout_ms.items()}
    floor = min(medians["worktree"], medians["clone --local"])
    lines = [
        f"checkout of {result.files:,} files, {result.rounds} rounds (ms):",
        f"{'':<16}{'median':>9}{'max':>9}{'/ faster':>10}",
    ]
    for method, samples in result.checkout_ms.items():
        lines.append(
            f"{method:<16}{medians[method]:>9.0f}{max(samples):>9.0f}"
            f"{medians[method] / floor:>9.2f}x"
        )
    lines.append(
        f"\nsummary of a {result.change_files}-file change, {result.others} other live lines "
        f"({result.clashes} clash), ms:"
    )
    for label, samples in (("remembered", result.warm_ms), ("cold", result.cold_ms)):
        lines.append(
            f"{label:<12} p50 {percentile(samples, 50):7.1f}  p95 {percentile(samples, 95):7.1f}"
            f"  max {max(samples):7.1f}  (n={len(samples)})"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.repos", description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20_000, help="files in the repository")
    parser.add_argument("--rounds", type=int, default=3, help="checkouts of each kind")
    parser.add_argument("--change", type=int, default=500, help="files the line changes")
    parser.add_argument("--others", type=int, default=20, help="other live lines")
    parser.add_argument("--summaries", type=int, default=30, help="summaries timed, each way")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    async def run(root: Path) -> Result:
        return await work(root, args)

    return execute(run, report, keep=args.keep, json_path=args.json, prefix="fw-repos-")


if __name__ == "__main__":
    raise SystemExit(main())
