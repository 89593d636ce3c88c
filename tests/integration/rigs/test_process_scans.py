"""What a test kills when it ends is found among its own processes only: tests run side by
side, and a process of the same program started by another test is not its to end."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.console_bot import processes_where, under

pytestmark = pytest.mark.integration

NAMED = "mcp-server-everything"
"""A program name two tests may both run."""


@pytest.fixture
def two_tests(tmp_path: Path) -> Iterator[tuple[Path, Path, subprocess.Popen[bytes]]]:
    """Two tests' folders, ``mine`` and ``theirs``, and a process of the other test's,
    working in ``theirs`` with a command line naming the shared program."""
    mine, theirs = tmp_path / "mine", tmp_path / "mine1"  # a prefix of it, not its parent
    mine.mkdir()
    theirs.mkdir()
    code = "import time; time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, NAMED], cwd=theirs)
    try:
        yield mine, theirs, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_process_of_another_tests_folder_is_not_under_mine(
    two_tests: tuple[Path, Path, subprocess.Popen[bytes]],
) -> None:
    """Matched on the program's name, the other test's process is found; matched on the
    name among this test's processes, it is not — even where this test's folder is a
    prefix of the other's."""
    mine, theirs, proc = two_tests
    named = processes_where(lambda cwd, cmdline: NAMED.encode() in cmdline)
    assert proc.pid in named
    assert proc.pid not in processes_where(
        lambda cwd, cmdline: under(mine, cwd, cmdline) and NAMED.encode() in cmdline
    )
    assert proc.pid in processes_where(
        lambda cwd, cmdline: under(theirs, cwd, cmdline) and NAMED.encode() in cmdline
    )


def test_a_process_naming_a_path_below_the_folder_is_under_it(tmp_path: Path) -> None:
    """A process working elsewhere whose command line names a path below the folder (a
    server given its directory) is the folder's; one naming the folder's prefix is not."""
    assert under(tmp_path, "/", f"python3\0{tmp_path}/srv\0".encode())
    assert under(tmp_path, f"{tmp_path}/state/home", b"node\0server\0")
    assert under(tmp_path, str(tmp_path), b"sleep\x00600\x00")
    assert not under(tmp_path, f"{tmp_path}1", f"python3\0{tmp_path}1/srv\0".encode())
