"""Lanes whatever the start order, against the real bubblewrap and `fleetwarden run`: an
agent started before another cannot read that agent's workdir — one the roster names
though its agent never ran (as root and as an ordinary user), or, as root, one that only
a `roster reload` brought in after it started. And what a sandbox binds back for an
agent's program is never resolved through its own workdir: a symlink it puts there in
place of its program does not bring another agent's directory into its next run."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.conftest import processes_under
from tests.integration.console_bot import ConsoleBot, clean_env, wait_until
from tests.integration.sandbox.test_sandbox import HOSTILE, attack
from tests.integration.sandbox.test_sandbox_lanes import NOBODY, as_nobody

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
    sandbox_need.root("runs Fleetwarden as root and as `nobody`, as CI does"),
]

HEAD = "state_dir: ../state\nconnectors:\n  console: {}\ndefaults:\n  stop_grace_seconds: 1\n"
NOTES = "b's notes, for b alone\n"


@pytest.fixture
def top() -> Iterator[Path]:
    """A directory outside /tmp (which every sandbox covers with its own), removed after,
    with whatever ran from it."""
    where = Path("/var/tmp") / f"fw-order-{uuid.uuid4().hex[:10]}"
    where.mkdir(mode=0o755)
    yield where
    for pid in processes_under(where):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(where, ignore_errors=True)


def hostile(name: str, workdir: Path) -> str:
    return (
        f"  - name: {name}\n    runtime: command\n"
        f"    argv: [{sys.executable}, -I, {HOSTILE.name}]\n    workdir: {workdir}\n"
    )


def workdirs(top: Path) -> tuple[Path, Path]:
    """`a`'s and `b`'s workdirs as an operator makes them (0755), each with the hostile
    agent; `b`'s holds a world-readable file, `a` is told where it is."""
    a, b = top / "work" / "a", top / "work" / "b"
    for where in (a, b):
        where.mkdir(parents=True)
        shutil.copy(HOSTILE, where / HOSTILE.name)
    (b / "notes.txt").write_text(NOTES)
    (b / "notes.txt").chmod(0o644)
    (a / "targets.json").write_text(json.dumps({"other_work": str(b / "notes.txt")}))
    (b / "targets.json").write_text(json.dumps({"other_work": str(a / "targets.json")}))
    return a, b


def config_in(top: Path) -> Path:
    """Where the config goes: a directory of its own beside the workdirs (its directory
    is hidden from every sandbox, with all it holds)."""
    (top / "cfg").mkdir(exist_ok=True)
    return top / "cfg" / "fleetwarden.yaml"


def log_of(top: Path, name: str) -> Path:
    return top / "state" / "agents" / name / "output.log"


def start(bot: ConsoleBot, top: Path, name: str) -> Path:
    bot.command(f"spawn {name}", rf"Agent {name} started")
    log = log_of(top, name)
    assert wait_until(lambda: "hostile agent ready" in log.read_text()), log.read_text()
    return log


@pytest.mark.parametrize("user", ["root", "nobody"])
def test_a_roster_workdir_is_hidden_from_an_agent_started_before_its_own_ever_ran(
    top: Path, user: str
) -> None:
    """`a` starts first; `b`, in the roster, never ran (the ledger has no row for it):
    `a` still cannot read the file in `b`'s workdir — as root (its own uid) and as
    `nobody` (one uid for all, where only the sandbox's mounts keep them apart)."""
    prefix = as_nobody() if user == "nobody" else []
    if user == "nobody":
        top.chmod(0o700)
    a, b = workdirs(top)
    config = config_in(top)
    config.write_text(HEAD + "agents:\n" + hostile("a", a) + hostile("b", b))
    home = top / "operator"  # Fleetwarden's own HOME, hidden from every sandbox
    home.mkdir()
    if user == "nobody":
        for path in (top, *top.rglob("*")):
            os.chown(path, NOBODY, NOBODY)
    bot = ConsoleBot(top, "--config", str(config), env=clean_env(HOME=str(home)), prefix=prefix)
    try:
        log = start(bot, top, "a")
        got = attack(bot, log, "a", "other_work", "write_workdir")
        assert got["other_work"][0] == "denied", got
        assert got["write_workdir"][0] == "open", got  # its own workdir is there
        bot.command("stop a", r"Stopped a")
        assert bot.close() == 0
    finally:
        bot.kill()


def test_as_root_a_workdir_added_after_an_agent_started_is_closed_to_it(top: Path) -> None:
    """`a` runs; a `roster reload` adds `b`, whose workdir (0755, a world-readable file in
    it) `a`'s sandbox could not hide — it was named after `a` started. Handed to `b`, it
    is closed to every other user: `a` cannot read `b`'s file, `b` works in it."""
    a, b = workdirs(top)
    config = config_in(top)
    config.write_text(HEAD + "agents:\n" + hostile("a", a))
    bot = ConsoleBot(top, "--config", str(config), env=clean_env())
    try:
        log = start(bot, top, "a")
        config.write_text(HEAD + "agents:\n" + hostile("a", a) + hostile("b", b))
        bot.command("roster reload", r"added: b")
        own = start(bot, top, "b")
        assert attack(bot, own, "b", "write_workdir")["write_workdir"][0] == "open"
        got = attack(bot, log, "a", "other_work")
        assert got["other_work"][0] == "denied", got
        closed = b.stat()  # `b`'s, and root's group (Fleetwarden's git probe reads it)
        assert (closed.st_mode & 0o777, closed.st_gid) == (0o750, 0) and closed.st_uid != 0
        for name in ("a", "b"):
            bot.command(f"stop {name}", rf"Stopped {name}")
        assert bot.close() == 0
    finally:
        bot.kill()


SWAP = """\
#!/bin/sh
# The agent's first run puts a symlink to the other agent's script in place of its own.
ln -s {target} run.new && mv -f run.new run.sh
echo "swapped run.sh"
exec sleep 300
"""
B_SCRIPT = """\
#!/bin/sh
echo "seen: $(cat {secret})"
exec sleep 300
"""


def test_a_symlink_in_an_agents_workdir_binds_nothing_of_another_into_its_next_run(
    top: Path,
) -> None:
    """`a`'s program is `run.sh` in its own workdir; its first run replaces it with a
    symlink to `b`'s script. Relaunched, `a`'s sandbox binds nothing back for it: the
    program is not found there, and `b`'s directory — secret and all — stays hidden."""
    a, b = top / "work" / "a", top / "work" / "b"
    scripts = b / "scripts"
    scripts.mkdir(parents=True)
    a.mkdir()
    secret = scripts / "secret.txt"
    secret.write_text("b-secret-4711\n")
    secret.chmod(0o644)
    for path, text in (
        (scripts / "run.sh", B_SCRIPT.format(secret=secret)),
        (a / "run.sh", SWAP.format(target=scripts / "run.sh")),
    ):
        path.write_text(text)
        path.chmod(0o755)
    entries = "".join(
        f"  - name: {name}\n    runtime: command\n    argv: [{program}]\n    workdir: {work}\n"
        for name, program, work in (("a", a / "run.sh", a), ("b", scripts / "run.sh", b))
    )
    config = config_in(top)
    config.write_text(HEAD + "agents:\n" + entries)
    bot = ConsoleBot(top, "--config", str(config), env=clean_env())
    try:
        bot.command("spawn b", r"Agent b started")
        assert wait_until(lambda: "seen: b-secret" in log_of(top, "b").read_text())
        bot.command("spawn a", r"Agent a started")
        log = log_of(top, "a")
        assert wait_until(lambda: "swapped run.sh" in log.read_text()), log.read_text()
        assert (a / "run.sh").is_symlink()
        bot.command("restart a", r"Restarted a")
        refused = f"cannot start '{a / 'run.sh'}'"
        assert wait_until(lambda: refused in log.read_text()), log.read_text()
        assert "seen:" not in log.read_text()
        bot.send("stop a")
        bot.command("stop b", r"Stopped b")
        assert bot.close() == 0
    finally:
        bot.kill()


def test_unprivileged_a_workdir_made_after_an_agent_started_is_hidden_below_workdirs(
    top: Path,
) -> None:
    """Fleetwarden as `nobody` (one uid for all agents) with `workdirs:` naming the
    workdirs' parent: `a` starts; then `b`'s workdir is made and a `roster reload` adds
    `b` — `a`'s sandbox, built before either, hides the whole parent but `a`'s own
    workdir, so `a` cannot read `b`'s file while `b` works in it."""
    prefix = as_nobody()
    top.chmod(0o700)
    a, b = workdirs(top)
    shutil.rmtree(b)  # made after `a` started, below
    home = top / "operator"
    home.mkdir()
    config = config_in(top)
    head = HEAD + f"workdirs: {top / 'work'}\n"
    config.write_text(head + "agents:\n" + hostile("a", a))
    for path in (top, *top.rglob("*")):
        os.chown(path, NOBODY, NOBODY)
    bot = ConsoleBot(top, "--config", str(config), env=clean_env(HOME=str(home)), prefix=prefix)
    try:
        log = start(bot, top, "a")
        b.mkdir()
        shutil.copy(HOSTILE, b / HOSTILE.name)
        (b / "notes.txt").write_text(NOTES)
        (b / "targets.json").write_text(json.dumps({"other_work": str(a / "targets.json")}))
        for path in (b, *b.iterdir()):
            os.chown(path, NOBODY, NOBODY)
        config.write_text(head + "agents:\n" + hostile("a", a) + hostile("b", b))
        bot.command("roster reload", r"added: b")
        own = start(bot, top, "b")
        assert attack(bot, own, "b", "write_workdir")["write_workdir"][0] == "open"
        got = attack(bot, log, "a", "other_work", "write_workdir")
        assert got["other_work"][0] == "denied", got
        assert got["write_workdir"][0] == "open", got
        for name in ("a", "b"):
            bot.command(f"stop {name}", rf"Stopped {name}")
        assert bot.close() == 0
    finally:
        bot.kill()
