"""``tests/run.sh`` refuses a test path that is not there before it sets anything up, naming
the path: with six workers pytest itself would only say "no tests ran"."""

from __future__ import annotations

import subprocess

import pytest

from tests.unit.test_structure import ROOT


@pytest.mark.parametrize(
    ("word", "named"),
    [
        ("tests/unit/bot/clii", "tests/unit/bot/clii"),
        ("tests/unit/bot/cli/test_nothing.py::test_x", "tests/unit/bot/cli/test_nothing.py"),
        ("nowhere.py", "nowhere.py"),
    ],
)
def test_a_test_path_that_is_not_there_is_named_and_nothing_runs(word: str, named: str) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "tests" / "run.sh"), "-x", word],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""  # nothing set up, nothing run
    assert done.stderr == (
        f"tests/run.sh: no test file or directory {named} (a typo? paths start at the "
        "checkout's root, e.g. tests/unit/bot/cli)\n"
    )
