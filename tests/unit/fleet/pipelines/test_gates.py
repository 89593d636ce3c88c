"""A `check:` gate's command (fleet.pipelines.gates): run as an argv in the checkout, with
a bare environment, only its output's tail kept; a command past its time limit is ended
with its whole process group; one that cannot run says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.pipelines.gates import TAIL, run_check
from tests.polling import eventually


async def test_a_check_runs_in_the_checkout_as_an_argv(tmp_path: Path) -> None:
    """Exit 0 passes; its words are argv, never a shell's (`;` is only a character)."""
    (tmp_path / "marker").write_text("here\n")
    ran = await run_check(["sh", "-c", 'cat marker; echo "$0"', "a;b"], tmp_path, 30)
    assert ran.passed and ran.tail == "here\na;b"


async def test_a_failing_check_keeps_its_code_and_the_tail_of_its_output(tmp_path: Path) -> None:
    """A non-zero exit fails, its code kept and only the end of what it printed."""
    script = "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; exit 4"
    ran = await run_check(["sh", "-c", script], tmp_path, 30)
    assert not ran.passed and ran.code == 4
    assert ran.tail.endswith("line 2999") and len(ran.tail) <= TAIL + 1
    assert "line 0\n" not in ran.tail


async def test_the_check_sees_no_secret_of_fleetwardens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only PATH, HOME and LANG reach the command: Fleetwarden's own variables do not."""
    monkeypatch.setenv("APP_TOKEN", "ghp_notForTheCheck")
    ran = await run_check(["env"], tmp_path, 30)
    assert "ghp_notForTheCheck" not in ran.tail
    assert sorted(line.split("=")[0] for line in ran.tail.splitlines()) == ["HOME", "LANG", "PATH"]


async def test_a_check_past_its_limit_is_ended_whole(tmp_path: Path) -> None:
    """Out of time, the gate fails saying so, and the child it left is gone too."""
    pid_file = tmp_path / "child"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    ran = await run_check(["sh", "-c", script], tmp_path, 0.5)
    assert ran.code is None and "ran out of its 0.5 s" in ran.problem
    child = Path(f"/proc/{int(pid_file.read_text())}/stat")

    def gone() -> bool:  # killed: gone, or a zombie until its new parent reaps it
        try:
            return child.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except OSError:
            return True

    await eventually(gone, "the check's child ended")


async def test_a_command_that_cannot_run_says_why(tmp_path: Path) -> None:
    """A missing program, or a checkout gone, fails the gate with the reason."""
    missing = await run_check(["no-such-program-here"], tmp_path, 30)
    assert missing.code is None and "'no-such-program-here' could not be run" in missing.problem
    gone = await run_check(["true"], tmp_path / "gone", 30)
    assert gone.code is None and "is gone" in gone.problem
