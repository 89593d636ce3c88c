"""The code data classes generate, kept between starts (:mod:`bot.cli.generated`): each
start here is a fresh interpreter, as each start of the command is."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest

from bot.cli.kept import encoded, read
from tests.unit.bot.cli.fresh import started

PROGRAM = """
import dataclasses, json, sys
from bot.cli import generated
kept = generated.install()
again = generated.install()

@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 2

p = Point(1)
try:
    p.x = 5
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
generated.save()
print(json.dumps({
    "compiled": kept.compiled if kept else None,
    "again": again is None,
    "repr": repr(p),
    "equal": p == Point(1, 2) and p != Point(1, 3),
    "hash": hash(p) == hash(Point(1, 2)),
    "frozen": frozen,
    "file": str(generated.where()),
    "annotations": {k: repr(v) for k, v in Point.__init__.__annotations__.items()},
}))
"""


def start(cache: Path, *flags: str) -> dict[str, object]:
    """One start of a program that makes a frozen data class, as the command's start does."""
    return started(PROGRAM, cache, *flags)


def behaves(said: dict[str, object]) -> bool:
    return (
        said["repr"] == "Point(x=1, y=2)"
        and said["equal"] is True
        and said["hash"] is True
        and said["frozen"] is True
        and said["again"] is True
        # compiled as exec compiles it: this module's __future__ flags not inherited
        and said["annotations"] == {"x": "<class 'int'>", "y": "<class 'int'>", "return": "None"}
    )


def test_a_second_start_compiles_nothing_and_its_classes_behave_the_same(tmp_path: Path) -> None:
    first = start(tmp_path)
    assert behaves(first) and isinstance(first["compiled"], int) and first["compiled"] > 0
    kept = Path(str(first["file"]))
    assert kept.is_file() and kept.is_relative_to(tmp_path)  # beside the bytecode
    second = start(tmp_path)
    assert behaves(second) and second["compiled"] == 0


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
    assert behaves(said) and isinstance(said["compiled"], int) and said["compiled"] > 0
    assert start(tmp_path)["compiled"] == 0  # written again, whole


def test_a_file_of_ours_holding_what_is_not_code_is_compiled_afresh(tmp_path: Path) -> None:
    """Python's magic number and a table of texts, but other values than code (a later
    format under the same name): each text is compiled again, never run as it is."""
    kept = Path(str(start(tmp_path)["file"]))
    table = read(kept)
    assert table
    kept.write_bytes(encoded({text: marshal.dumps(5) for text in table}))
    said = start(tmp_path)
    assert behaves(said) and isinstance(said["compiled"], int) and said["compiled"] > 0


def test_a_cut_file_is_ignored(tmp_path: Path) -> None:
    kept = Path(str(start(tmp_path)["file"]))
    kept.write_bytes(kept.read_bytes()[: len(kept.read_bytes()) // 2])
    assert behaves(start(tmp_path))


def test_a_file_damaged_since_it_was_written_is_ignored(tmp_path: Path) -> None:
    """One byte changed past the digest (the table still reads as a table): its digest
    no longer matches, and every text is compiled afresh."""
    kept = Path(str(start(tmp_path)["file"]))
    data = bytearray(kept.read_bytes())
    at = data.rfind(b"__init__")
    data[at] ^= 0x20
    kept.write_bytes(bytes(data))
    said = start(tmp_path)
    assert behaves(said) and isinstance(said["compiled"], int) and said["compiled"] > 0


def test_where_python_writes_no_bytecode_nothing_is_written(tmp_path: Path) -> None:
    said = start(tmp_path, "-B")
    assert behaves(said) and not Path(str(said["file"])).exists()
