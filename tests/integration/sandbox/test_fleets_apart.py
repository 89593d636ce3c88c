"""Two fleets on one host, against the real `fleetwarden run` as root and the real
bubblewrap: each orchestrator, with its own config and state dir, holds a range of agent
uids on the host, so their first agents run as different uids and neither can enter the
other's workdir; a fleet asking for a range a running fleet holds is refused at start with
the fix; once that fleet stops, its range is free for the next."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.sandbox.lanes import SPAN
from tests import sandbox_need
from tests.integration.conftest import processes_under
from tests.integration.console_bot import (
    DEFAULT_TIMEOUT,
    FLEETWARDEN,
    ROSTER_HEAD,
    ConsoleBot,
    clean_env,
    wait_until,
)
from tests.integration.sandbox.test_sandbox import HOSTILE, agent_entry, attack
from tests.integration.sandbox.test_sandbox_lanes import host_uid

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]


@pytest.fixture
def place() -> Iterator[Path]:
    """Where the fleets live: under /var/tmp, which every sandbox shows (its /tmp is its
    own), so one fleet's agent could walk to the other's workdir but for its uid."""
    where = Path("/var/tmp") / f"fw-fleets-{uuid.uuid4().hex}"
    where.mkdir(mode=0o755)
    yield where
    # What a failed test left running of the fleets' agents (they outlive their
    # orchestrator by design): the processes working there or naming it, found live — a
    # run's pid file may name a process long gone, its number another test's by now.
    for pid in processes_under(where):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(where, ignore_errors=True)


def deploy(top: Path, name: str, head: str = "") -> Path:
    """A fleet of one agent, `coder`, running the hostile agent; its config's path."""
    fleet = top / name
    (fleet / "coder-work").mkdir(parents=True)
    fleet.chmod(0o755)
    shutil.copy(HOSTILE, fleet / "coder-work" / HOSTILE.name)
    config = fleet / "fleetwarden.yaml"
    config.write_text(head + ROSTER_HEAD.format() + agent_entry("coder", "coder-work"))
    return config


def aim(config: Path, other: Path) -> None:
    """Point the fleet's agent at a file the other fleet's agent writes in its workdir."""
    work = config.parent / "coder-work"
    target = other.parent / "coder-work" / "mine.txt"
    (work / "targets.json").write_text(f'{{"other_work": "{target}"}}')


def start(config: Path) -> ConsoleBot:
    return ConsoleBot(config.parent, "--config", str(config), env=clean_env())


def spawn(bot: ConsoleBot, config: Path) -> int:
    """Start `coder`, have it write a file in its workdir; the host uid it runs as."""
    log = config.parent / "state" / "agents" / "coder" / "output.log"
    since = log.stat().st_size if log.exists() else 0
    bot.command("spawn coder", r"Agent coder started", timeout=DEFAULT_TIMEOUT * 4)
    assert wait_until(lambda: "hostile agent ready" in log.read_bytes()[since:].decode())
    made = attack(bot, log, "coder", "write_workdir")
    assert made["write_workdir"][0] == "open", made
    return host_uid(config.parent / "state", "coder")


def stop(bot: ConsoleBot) -> None:
    bot.command("stop coder", r"Stopped coder")
    assert bot.close() == 0, bot.stderr


@sandbox_need.root("agents have uids of their own only when Fleetwarden runs as root")
def test_two_fleets_on_one_host_never_share_an_agent_uid(place: Path) -> None:
    """Two orchestrators at once: their first agents run as different uids of disjoint
    ranges and cannot read each other's workdir; a third asking for the first one's range
    is refused at start, naming that fleet, its pid and a free base; once the first stops,
    the third takes its range and its agent the same first uid."""
    first, second = deploy(place, "a"), deploy(place, "b")
    aim(first, second)
    aim(second, first)
    with start(first) as a, start(second) as b:
        uid_a = spawn(a, first)
        uid_b = spawn(b, second)
        assert uid_a in SPAN and uid_b in SPAN and uid_a != uid_b
        assert abs(uid_a - uid_b) >= 1000  # ranges of their own, not neighbours in one
        log_a = first.parent / "state" / "agents" / "coder" / "output.log"
        log_b = second.parent / "state" / "agents" / "coder" / "output.log"
        assert attack(a, log_a, "coder", "other_work")["other_work"][0] == "denied"
        assert attack(b, log_b, "coder", "other_work")["other_work"][0] == "denied"

        third = deploy(place, "c", f"agent_uids: {{base: {uid_a}}}\n")
        aim(third, second)
        refused = subprocess.run(
            [str(FLEETWARDEN), "run", "--config", str(third)],
            cwd=third.parent,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DEFAULT_TIMEOUT * 3,
        )
        said = refused.stderr
        assert refused.returncode == 1, said
        assert f"uids {uid_a}–{uid_a + 999} are held by the fleet at" in said, said
        assert f"{first.parent / 'state'} (pid {a.proc.pid})" in said, said
        assert "give this fleet another range with `agent_uids: {base: " in said, said
        assert not (third.parent / "state" / "agents").exists()  # nothing started

        stop(a)
        with start(third) as c:
            assert spawn(c, third) == uid_a  # the range let go with its fleet
            stop(c)
        stop(b)
