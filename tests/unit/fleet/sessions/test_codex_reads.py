"""Tests for the list of reading commands Codex's ``edits`` and ``read-only`` modes pass
unasked: listed commands with listed flags, every path inside the workdir, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.sessions.codex_reads import reads_only


@pytest.mark.parametrize(
    "line",
    [
        "cat notes.txt",
        "rg foo",
        "ls",
        "ls -la src",
        "rg -n -i 'two words' src",
        "rg --files",
        "grep -rn foo .",
        "head -n 5 notes.txt",
        "tail -20 notes.txt",
        "wc -l notes.txt | cat",
        "find . -name '*.py' -type f",
        "find src -maxdepth 2 -not -name x -print",
        "stat -c %s notes.txt",
        "cat notes.txt && ls src",
    ],
)
def test_listed_reads_inside_the_workdir_pass(tmp_path: Path, line: str) -> None:
    """A listed command with listed flags, reading inside the workdir, is a read."""
    assert reads_only(line, str(tmp_path), str(tmp_path))


@pytest.mark.parametrize(
    "line",
    [
        "rg --pre sh zzz payload.sh",
        "rg --pre=sh zzz",
        "rg --pre-glob '*' --pre sh x",
        "rg -z foo",
        "rg --search-zip foo",
        "rg -L foo",
        "find . -exec sh {} \\;",
        "find . -execdir sh {} +",
        "find . -ok rm {} \\;",
        "find . -delete",
        "find . -fprint out",
        "find . -fprintf out %p",
        "find -L . -name x",
        "git -c core.pager=sh log",
        "git log",
        "git status",
        "git diff --ext-diff",
        "sed -n 1p notes.txt",
        "sed -e 1e notes.txt",
        "awk 'BEGIN{system(\"sh\")}'",
        "less notes.txt",
        "more notes.txt",
        "tail -f notes.txt",
        "tree -o out",
        "cat /etc/passwd",
        "cat ../outside",
        "ls ~",
        "rg foo /",
        "rg foo *",
        "cat *.txt",
        "cat notes.txt > copy.txt",
        "cat $(echo notes.txt)",
        "cat `id`",
        "FOO=1 cat notes.txt",
        "env -i cat notes.txt",
        "sh -c 'cat notes.txt'",
        "xargs cat < list",
        "cat notes.txt; rm notes.txt",
        "cat notes.txt | sh",
        "cat --unknown-flag notes.txt",
        "python -c 'print(1)'",
        "",
    ],
)
def test_anything_else_is_not_a_read(tmp_path: Path, line: str) -> None:
    """Flags that run programs or write, unlisted commands and flags, paths outside the
    workdir, globs and shell syntax: not a read, so the operator is asked."""
    assert not reads_only(line, str(tmp_path), str(tmp_path))


def test_a_symlink_out_of_the_workdir_is_outside(tmp_path: Path) -> None:
    """A path through a symbolic link that leaves the workdir is not inside it."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "out").symlink_to(tmp_path)
    assert not reads_only("cat out/secret", str(work), str(work))
    assert reads_only("cat in/notes", str(work), str(work))


def test_a_command_run_outside_the_workdir_is_not_a_read(tmp_path: Path) -> None:
    """Codex's own ``cwd`` for the command must lie inside the workdir too."""
    assert not reads_only("ls", "/etc", str(tmp_path))


@pytest.mark.parametrize(
    "line",
    [
        "cat notes.txt 2>/dev/null /etc/shadow",
        "rg -F x 2>/dev/null --pre=sh payload.sh",
        "rg -F {--pre=sh,{x}} payload.sh",
        "rg -F {x,--pre=sh} payload.sh",
        "\\ cat notes.txt",
        "cat notes.txt > \\ /dev/null",
        "cat notes.txt >&0x1",
        "coproc cat notes.txt",
    ],
)
def test_what_the_shell_reads_otherwise_is_not_a_read(tmp_path: Path, line: str) -> None:
    """Words hung on a redirection, nested braces, an escaped blank the parser skips, a
    descriptor that is a file name, ``coproc``: the shell runs other words than shown."""
    assert not reads_only(line, str(tmp_path), str(tmp_path))
