"""The suite's dealing of test files to workers (tests/scheduling.py): the files marked
``synapse`` go in two bundles of even test counts, every other file alone."""

from __future__ import annotations

from pathlib import Path

from tests.scheduling import SynapseBundles, bundles


def _plant(root: Path, name: str, tests: int, marked: bool) -> None:
    path = root / "tests" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    mark = "pytestmark = pytest.mark.synapse\n\n" if marked else ""
    body = "".join(f"async def test_{n}() -> None:\n    pass\n\n" for n in range(tests))
    path.write_text(f"import pytest\n\n{mark}{body}", encoding="utf-8")


def test_the_synapse_files_go_in_two_bundles_of_even_weight(tmp_path: Path) -> None:
    _plant(tmp_path, "matrix/test_big.py", 6, marked=True)
    _plant(tmp_path, "matrix/test_mid.py", 4, marked=True)
    _plant(tmp_path, "approvals/test_small.py", 2, marked=True)
    _plant(tmp_path, "forge/test_plain.py", 9, marked=False)
    assert bundles(tmp_path, tmp_path / "tests") == {
        "tests/matrix/test_big.py": "synapse-1",
        "tests/matrix/test_mid.py": "synapse-2",
        "tests/approvals/test_small.py": "synapse-2",
    }


def test_a_test_id_is_dealt_by_its_bundle_or_its_file(tmp_path: Path) -> None:
    _plant(tmp_path, "matrix/test_big.py", 1, marked=True)
    _plant(tmp_path, "forge/test_plain.py", 1, marked=False)
    scheduler = SynapseBundles.__new__(SynapseBundles)  # its dealing alone, no xdist session
    scheduler._root = tmp_path
    assert scheduler._split_scope("tests/matrix/test_big.py::test_0[x]") == "synapse-1"
    assert (
        scheduler._split_scope("tests/forge/test_plain.py::test_0") == "tests/forge/test_plain.py"
    )


def test_the_suites_own_synapse_files_are_bundled() -> None:
    """The marked files of this suite are found, the Matrix tests among them."""
    root = Path(__file__).resolve().parents[2]
    dealt = bundles(root, root / "tests")
    assert "tests/integration/connectors/matrix/test_matrix_bot.py" in dealt
    assert set(dealt.values()) == {"synapse-1", "synapse-2"}
    assert not any("/unit/" in name for name in dealt)


def test_every_file_naming_the_synapse_mark_is_bundled() -> None:
    """Every file naming ``pytest.mark.synapse`` is bundled: the dealing reads it on a
    ``pytestmark = …`` or ``marks=…`` line; a file naming it another way (a decorator, a
    list of marks over several lines) fails here, before it runs outside the bundles and
    starts a Synapse of its own worker."""
    root = Path(__file__).resolve().parents[2]
    dealt = bundles(root, root / "tests")
    naming = {
        path.relative_to(root).as_posix()
        for path in (root / "tests").rglob("test_*.py")
        if "pytest.mark.synapse" in path.read_text(encoding="utf-8")
        and path.name != "test_scheduling.py"
    }
    assert naming - set(dealt) == set()
