"""Compiled patterns, kept between starts (:mod:`bot.cli.patterns`): each start here is a
fresh interpreter, as each start of the command is."""

from __future__ import annotations

import marshal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli.kept import encoded, read
from tests.unit.bot.cli.fresh import started

PROGRAM = r"""
import json, re, sys
from bot.cli import patterns
kept = patterns.install()
again = patterns.install()
from re import _compiler
original = kept._original if kept else _compiler.compile
cases = [
    (r"(?P<key>[a-z_]+)\s*=\s*(?P<value>\S+)", 0, "token = abc123"),
    (r"^\s*#.*$", re.MULTILINE, "x\n  # note\ny"),
    (r"straße|STRASSE", re.IGNORECASE, "Strasse and STRASSE and straße"),
    (r" \d+ (?# digits ) [a-f]* ", re.VERBOSE, "12ab 7 99fz"),
    (rb"\x00(\d+)\x00", 0, b"a\x0012\x00b"),
    (r"(a)(b)?(?:c)(?P<d>d)", re.ASCII, "abcd acd"),
]
said = {"results": [], "same": []}
for text, flags, subject in cases:
    compiled = re.compile(text, flags)
    fresh = original(text, flags)
    said["same"].append(compiled == fresh and compiled.groupindex == fresh.groupindex)
    found = [m.groups() + (m.span(),) for m in compiled.finditer(subject)]
    said["results"].append(repr(found))
import enum, warnings
class Kind(str, enum.Enum):  # formatted, a member is "Kind.WORD", whatever its text
    WORD = sys.argv[1]
said["subclass"] = re.compile(Kind.WORD).pattern == sys.argv[1]
said["subclass_finds"] = bool(re.compile(Kind.WORD).fullmatch(sys.argv[2]))
with warnings.catch_warnings():
    warnings.simplefilter("error")
    try:
        re.compile(r"[[:alpha:]]x")
        said["warned"] = False
    except FutureWarning:
        said["warned"] = True
patterns.loaded()
re.compile(r"made after loading, never kept \d+")
patterns.loaded()
said.update({
    "compiled": kept.compiled if kept else None,
    "served": kept.served if kept else None,
    "again": again is None,
    "file": str(patterns.where(patterns.NAME)),
})
print(json.dumps(said))
"""
SIX = 6  # the cases above


def start(cache: Path, *flags: str, word: str = "a+", subject: str = "aaa") -> dict[str, object]:
    """One start of a program that compiles patterns as a module's load does (``word``:
    the text of a ``str`` enumeration's member it compiles, ``subject`` what it matches)."""
    return started(PROGRAM, cache, *flags, args=(word, subject))


def behaves(said: dict[str, object]) -> bool:
    """Every pattern equal to what Python compiles, and finding the same; a pattern the
    parser warns about warned, under a filter that takes warnings for errors; a ``str``
    enumeration's member compiled as its text."""
    return (
        said["again"] is True
        and said["same"] == [True] * SIX
        and said["warned"] is True
        and said["subclass"] is True
        and said["subclass_finds"] is True
    )


def test_a_pattern_the_parser_warns_about_or_a_str_subclass_is_never_served(
    tmp_path: Path,
) -> None:
    """The warning reaches a second start's caller as the first's (it is never kept), and
    a ``str`` enumeration's member whose text changed between starts is compiled from its
    new text (its formatted name is the same)."""
    start(tmp_path, word="a+", subject="aaa")
    said = start(tmp_path, word="b+", subject="bbb")
    assert behaves(said)


def test_a_second_start_parses_no_pattern_and_each_finds_the_same(tmp_path: Path) -> None:
    first = start(tmp_path)
    assert behaves(first) and first["served"] == 0 and first["compiled"] == SIX + 1
    kept = Path(str(first["file"]))
    assert kept.is_file() and kept.is_relative_to(tmp_path)  # beside the bytecode
    second = start(tmp_path)
    assert behaves(second) and second["results"] == first["results"]
    # only the pattern made after loading is compiled again: it was never kept
    assert second["served"] == SIX and second["compiled"] == 1


@pytest.mark.parametrize(
    "content",
    [b"", b"not python's", b"\x00" * 40, b"PK\x03\x04 another python's magic"],
    ids=["empty", "garbage", "zeros", "foreign"],
)
def test_a_file_that_is_not_ours_is_ignored_and_written_again(
    tmp_path: Path, content: bytes
) -> None:
    kept = Path(str(start(tmp_path)["file"]))
    kept.write_bytes(content)
    said = start(tmp_path)
    assert behaves(said) and said["served"] == 0
    assert start(tmp_path)["served"] == SIX  # written again, whole


@pytest.mark.parametrize(
    "spoil",
    [
        lambda engine: marshal.dumps(5),
        lambda engine: marshal.dumps(engine[:4]),
        lambda engine: marshal.dumps((engine[0], [99999, 1, 2], *engine[2:])),
        lambda engine: marshal.dumps((engine[0], [str(op) for op in engine[1]], *engine[2:])),
        lambda engine: b"\xff\x00cut",
        lambda engine: marshal.dumps((*engine[:2], 2**29, *engine[3:])),
        lambda engine: marshal.dumps((*engine[:2], -1, *engine[3:])),
        lambda engine: marshal.dumps((*engine[:3], {"x": 1}, engine[4])),
        lambda engine: marshal.dumps((*engine[:4], (None, *[5] * max(1, len(engine[4]) - 1)))),
    ],
    ids=[
        "not-a-table",
        "short",
        "opcode",
        "strings",
        "not-marshal",
        "huge-groups",
        "negative-groups",
        "names-disagree",
        "names-not-strings",
    ],
)
def test_what_the_engine_refuses_or_is_not_ours_is_compiled_afresh(
    tmp_path: Path, spoil: Callable[[tuple[object, ...]], bytes]
) -> None:
    """A whole file of ours, but what is kept for each pattern is not what the engine
    takes (code it refuses, the wrong shape): each is compiled again, never handed over as
    it is. (Code the engine takes is trusted as a ``.pyc`` is: the digest turns away a file
    damaged since it was written, below.)"""
    kept = Path(str(start(tmp_path)["file"]))
    table = read(kept)
    assert len(table) == SIX
    kept.write_bytes(encoded({key: spoil(marshal.loads(data)) for key, data in table.items()}))
    said = start(tmp_path)
    assert behaves(said) and said["served"] == 0 and said["compiled"] == SIX + 1


def test_a_file_damaged_since_it_was_written_is_ignored(tmp_path: Path) -> None:
    """One byte of a pattern's code changed (code the engine would take, and match
    wrongly with): the file's digest no longer matches, and nothing of it is read."""
    kept = Path(str(start(tmp_path)["file"]))
    data = bytearray(kept.read_bytes())
    data[-40] ^= 0x01
    kept.write_bytes(bytes(data))
    said = start(tmp_path)
    assert behaves(said) and said["served"] == 0


def test_where_python_writes_no_bytecode_nothing_is_written(tmp_path: Path) -> None:
    said = start(tmp_path, "-B")
    assert behaves(said) and not Path(str(said["file"])).exists()


def test_the_console_script_keeps_its_patterns_and_its_classes_code(tmp_path: Path) -> None:
    """``fleetwarden check-config`` (the embedded default) leaves both kept files, the
    patterns' and the data classes' code (:mod:`bot.cli.generated`), and reads them, with
    no temporary copy left behind."""
    env = {"PYTHONPYCACHEPREFIX": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    script = Path(sys.executable).with_name("fleetwarden")
    names = {"regex-code-1": 50_000, "dataclass-code-2": 100_000}
    written: dict[str, tuple[int, int]] = {}
    for _ in range(2):
        subprocess.run(
            [str(script), "check-config"], cwd=tmp_path, env=env, capture_output=True, check=True
        )
        for name, least in names.items():
            [found] = (tmp_path / "cache").rglob(f"{name}.*.bin")
            assert found.stat().st_size > least
            assert not list((tmp_path / "cache").rglob(f".{name}.*"))  # no copy left
            # the second start found all it needed kept, so it wrote nothing again
            stat = found.stat()
            assert written.setdefault(name, (stat.st_ino, stat.st_mtime_ns)) == (
                stat.st_ino,
                stat.st_mtime_ns,
            )
