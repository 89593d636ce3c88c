"""The tests' own structure: a fixture's name says what it is, so no name is defined in more
than two test files (``test_*.py``, ``conftest.py`` and the ``*rig*.py`` helpers); a fixture
that rooms share lives in their conftest."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_FIXTURE_FILES = 2


def fixture_files(root: Path = ROOT) -> list[Path]:
    """The files under ``root``'s tests/ whose fixtures the check reads."""
    tests = root / "tests"
    found = {*tests.rglob("test_*.py"), *tests.rglob("conftest.py"), *tests.rglob("*rig*.py")}
    return sorted(found)


def _is_fixture(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == "fixture":
            return True
        if isinstance(target, ast.Name) and target.id == "fixture":
            return True
    return False


def _fixture_name(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call):
            for keyword in decorator.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    return str(keyword.value.value)
    return node.name


def fixtures_by_name(root: Path = ROOT) -> dict[str, list[str]]:
    """Each fixture name defined at module level, with the files (relative) that define it."""
    found: dict[str, list[str]] = {}
    for path in fixture_files(root):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_fixture(node):
                files = found.setdefault(_fixture_name(node), [])
                relative = str(path.relative_to(root))
                if relative not in files:
                    files.append(relative)
    return found


def overshared(root: Path = ROOT) -> dict[str, list[str]]:
    """The names defined in more than :data:`MAX_FIXTURE_FILES` files."""
    return {
        name: files
        for name, files in sorted(fixtures_by_name(root).items())
        if len(files) > MAX_FIXTURE_FILES
    }


def test_no_fixture_name_is_defined_in_more_than_two_test_files() -> None:
    """A fixture shared by a room's modules lives in its conftest; two that only share a name
    are renamed to say what each is."""
    assert overshared() == {}


def test_the_fixture_check_finds_a_planted_third_definition(tmp_path: Path) -> None:
    """Three files defining one fixture name (a test module, a conftest, a rig) are named."""
    body = "import pytest\n\n\n@pytest.fixture\ndef door_keeper() -> int:\n    return 1\n"
    room = tmp_path / "tests" / "integration" / "forge"
    room.mkdir(parents=True)
    for name in ("test_a.py", "conftest.py", "forge_rig.py"):
        (room / name).write_text(body)
    (room / "helpers.py").write_text(body)  # neither a test module nor a rig: not read
    assert overshared(tmp_path) == {
        "door_keeper": [
            "tests/integration/forge/conftest.py",
            "tests/integration/forge/forge_rig.py",
            "tests/integration/forge/test_a.py",
        ]
    }
