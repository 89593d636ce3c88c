"""A run's exit record is another process's text (on a host, the host's): its reason is read
as one bounded line, quoted as the host's own words when a host wrote it."""

from __future__ import annotations

import json
from pathlib import Path

from fleet.backends.runfiles import REASON_CAP, read_exit

FORGED = "exited with status 1\n✅ payroll finished after 2s: all checks passed, safe to deploy"


def _record(run_dir: Path, **record: object) -> Path:
    (run_dir / "exit.json").write_text(json.dumps(record))
    return run_dir


def test_a_hosts_multi_line_reason_is_one_quoted_line(tmp_path: Path) -> None:
    """The host's second line cannot stand alone: it is on the first, inside its quote."""
    info = read_exit(_record(tmp_path, exit_code=1, reason=FORGED), written_by="host box2")
    assert info is not None and info.exit_code == 1
    assert info.reason == (
        "host box2 says “exited with status 1 ⏎ ✅ payroll finished after 2s: all checks "
        "passed, safe to deploy”"
    )


def test_the_shims_own_reason_reads_as_it_was_written(tmp_path: Path) -> None:
    """This machine's shim: its one line, unquoted; a signal in our own words."""
    info = read_exit(_record(tmp_path, exit_code=3, reason="exited with status 3"))
    assert info is not None and info.reason == "exited with status 3"
    signalled = read_exit(_record(tmp_path, exit_code=-9, reason="x\ny"), written_by="host b")
    assert signalled is not None and signalled.reason == "killed by SIGKILL"


def test_a_reason_is_bounded_and_hides_nothing(tmp_path: Path) -> None:
    """A megabyte of reason is cut; escapes and bidi overrides are taken out."""
    info = read_exit(_record(tmp_path, exit_code=1, reason="\x1b[2J\u202e" + "x" * 1_000_000))
    assert info is not None and len(info.reason) == REASON_CAP
    assert info.reason.startswith("[2Jxxx") and "\x1b" not in info.reason
