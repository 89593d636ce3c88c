"""A `check:` gate's command (fleet.pipelines.gates): run as an argv in the checkout, in a
bubblewrap sandbox as the checkout's owner (the agent's uid), with a fixed PATH and a bare
environment, only its output's tail kept; nothing it started outlives it, passed or out of
time; it never runs as root; one that cannot run says why."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from fleet.pipelines.gates import TAIL, run_check
from tests import sandbox_need
from tests.polling import eventually

pytestmark = [sandbox_need.BWRAP]

AGENT_UID = 47_123  # the agent's own uid, as root: no one else's


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout the agent owns (as root, its own uid; else, Fleetwarden's own)."""
    where = tmp_path / "checkout"
    where.mkdir()
    if os.geteuid() == 0:
        os.chown(where, AGENT_UID, AGENT_UID)
    return where


def _agents(path: Path, text: str) -> None:
    path.write_text(text)
    if os.geteuid() == 0:
        os.chown(path, AGENT_UID, AGENT_UID)


def _alive(token: str) -> list[int]:
    """The host's live processes whose command line holds ``token``."""
    alive = []
    for proc in Path("/proc").iterdir():
        try:
            if token in (proc / "cmdline").read_bytes().decode("utf-8", "replace"):
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state not in ("Z", "X"):
                    alive.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return alive


async def test_a_check_runs_in_the_checkout_as_an_argv(checkout: Path) -> None:
    """Exit 0 passes; its words are argv, never a shell's (`;` is only a character)."""
    _agents(checkout / "marker", "here\n")
    ran = await run_check(["sh", "-c", 'cat marker; echo "$0"', "a;b"], checkout, 30)
    assert ran.passed and ran.tail == "here\na;b"


async def test_a_failing_check_keeps_its_code_and_the_tail_of_its_output(checkout: Path) -> None:
    """A non-zero exit fails, its code kept and only the end of what it printed."""
    script = "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; exit 4"
    ran = await run_check(["sh", "-c", script], checkout, 30)
    assert not ran.passed and ran.code == 4
    assert ran.tail.endswith("line 2999") and len(ran.tail) <= TAIL + 1
    assert "line 0\n" not in ran.tail


async def test_the_check_sees_no_secret_of_fleetwardens(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only PATH (a fixed one, not Fleetwarden's), HOME and LANG reach the command (and the
    PWD bubblewrap sets)."""
    monkeypatch.setenv("APP_TOKEN", "ghp_notForTheCheck")
    monkeypatch.setenv("PATH", f"/opt/fleetwarden-only:{os.environ['PATH']}")
    ran = await run_check(["env"], checkout, 30)
    assert "ghp_notForTheCheck" not in ran.tail
    assert sorted(line.split("=")[0] for line in ran.tail.splitlines()) == [
        "HOME",
        "LANG",
        "PATH",
        "PWD",
    ]
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in ran.tail.splitlines()


@sandbox_need.root("runs the check as the agent's own uid")
async def test_an_agents_makefile_reaches_nothing_outside_its_checkout(
    tmp_path: Path, checkout: Path
) -> None:
    """A Makefile the agent wrote runs as the agent's uid, in its checkout (which it writes),
    and cannot read a 0600 file beside it, nor see the state around it."""
    secret = tmp_path / "secret"
    secret.write_text("s3cretOfFleetwardens\n")
    secret.chmod(0o600)
    (tmp_path / "other-workdir").mkdir()
    _agents(
        checkout / "Makefile",
        f"all:\n\t@stat -c 'uid %u' out 2>/dev/null || touch out\n"
        f"\t@cat {secret} || echo no-secret\n\t@ls {tmp_path}\n",
    )
    ran = await run_check(["make"], checkout, 60)
    assert ran.passed, ran
    assert "s3cretOfFleetwardens" not in ran.tail and "other-workdir" not in ran.tail
    assert "no-secret" in ran.tail and ran.tail.endswith("\ncheckout")  # all it sees there
    assert (checkout / "out").stat().st_uid == AGENT_UID


@sandbox_need.root("a checkout root owns is refused")
async def test_a_check_is_never_run_as_root(tmp_path: Path) -> None:
    """A checkout root owns (an agent with no sandbox of its own) refuses the check, saying
    why and what to do, and runs nothing."""
    ran = await run_check(["sh", "-c", "touch ran"], tmp_path, 30)
    assert ran.code is None and "a check: gate needs a sandboxed agent" in ran.problem
    assert "gate: approve" in ran.problem and not (tmp_path / "ran").exists()


async def test_nothing_a_passing_check_started_lives_on(checkout: Path) -> None:
    """A child left in the background, or in a session of its own, ends with the check."""
    token = f"{secrets.randbelow(10**6) + 10**6}"
    script = f"(sleep {token}.1 &); setsid sleep {token}.2 & echo started"
    ran = await run_check(["sh", "-c", script], checkout, 30)
    assert ran.passed and ran.tail == "started"
    await eventually(lambda: not _alive(f"sleep {token}."), "the check's children ended")


async def test_a_check_past_its_limit_is_ended_whole(checkout: Path) -> None:
    """Out of time, the gate fails saying so, and the child it left is gone too."""
    token = f"{secrets.randbelow(10**6) + 10**6}"
    ran = await run_check(["sh", "-c", f"sleep {token} & wait"], checkout, 0.5)
    assert ran.code is None and "ran out of its 0.5 s" in ran.problem
    await eventually(lambda: not _alive(f"sleep {token}"), "the check's child ended")


async def test_a_command_that_cannot_run_says_why(checkout: Path) -> None:
    """A missing program, or a checkout gone, fails the gate with the reason."""
    missing = await run_check(["no-such-program-here"], checkout, 30)
    assert missing.code is None and "'no-such-program-here' could not be run" in missing.problem
    gone = await run_check(["true"], checkout / "gone", 30)
    assert gone.code is None and "is gone" in gone.problem
