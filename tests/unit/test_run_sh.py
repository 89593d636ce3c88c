"""``tests/run.sh`` refuses a test path that is not there before it sets anything up, naming
the path: with five workers pytest itself would only say "no tests ran". ``.ci/python.sh``
picks the Python both ``run.sh`` and ``tests/run.sh`` make their venvs with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def _python_sh(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``.ci/python.sh`` with nothing on PATH but ``tmp_path/bin`` and the shell's own."""
    base = {"PATH": f"{tmp_path / 'bin'}:/bin:/usr/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "python.sh"), "run.sh"],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _fake_python(path: Path, version: tuple[int, int], venv: bool = True) -> Path:
    """A ``python`` of ``version``: this machine's own Python where that is new enough (with
    ``venv=False`` one that cannot import ``ensurepip``, as Debian's before python3-venv),
    else one that says the old version and fails the version check, as an old one would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if version >= (3, 11):
        broken = path.parent / f"{path.name}-lib"
        broken.mkdir(exist_ok=True)
        if not venv:
            (broken / "ensurepip.py").write_text("raise ImportError('no ensurepip')\n")
        body = f'PYTHONPATH={broken} exec {sys.executable} "$@"\n'
    else:
        body = f'case "$*" in *print*) echo {version[0]}.{version[1]} ;; *) exit 1 ;; esac\n'
    path.write_text(f"#!/bin/bash\n{body}")
    path.chmod(0o755)
    return path


def test_the_system_python_is_taken_when_it_is_new_enough_and_makes_venvs(
    tmp_path: Path,
) -> None:
    system = _fake_python(tmp_path / "system" / "python3", (3, 11))
    _fake_python(tmp_path / "bin" / "python3", (3, 12))
    done = _python_sh(tmp_path, FLEETWARDEN_SYSTEM_PYTHON=str(system))
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{system}\n", "")


@pytest.mark.parametrize(("version", "venv"), [((3, 9), True), ((3, 11), False)])
def test_a_system_python_too_old_or_without_venv_leaves_python3_on_path(
    tmp_path: Path, version: tuple[int, int], venv: bool
) -> None:
    system = _fake_python(tmp_path / "system" / "python3", version, venv)
    _fake_python(tmp_path / "bin" / "python3", (3, 12))
    done = _python_sh(tmp_path, FLEETWARDEN_SYSTEM_PYTHON=str(system))
    assert (done.returncode, done.stdout, done.stderr) == (0, "python3\n", "")


def test_python_named_is_taken_and_one_too_old_or_missing_is_refused(tmp_path: Path) -> None:
    chosen = _fake_python(tmp_path / "mine" / "python3.12", (3, 12))
    done = _python_sh(tmp_path, PYTHON=str(chosen))
    assert (done.returncode, done.stdout) == (0, f"{chosen}\n")
    old = _fake_python(tmp_path / "mine" / "python3.9", (3, 9))
    done = _python_sh(tmp_path, PYTHON=str(old))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"run.sh: {old} is Python 3.9; 3.11 or newer is needed (set PYTHON=/path/to/python3.11)\n"
    )
    done = _python_sh(tmp_path, PYTHON="/bin/false")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "run.sh: /bin/false did not run as a Python (set PYTHON=/path/to/python3.11)\n"
    )
    done = _python_sh(tmp_path, PYTHON=str(tmp_path / "pyhton3"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"run.sh: no Python {tmp_path / 'pyhton3'} here (set PYTHON=/path/to/python3.11)\n"
    )


def test_a_venv_cut_short_is_made_again_and_a_folder_not_a_venv_is_never_emptied(
    tmp_path: Path,
) -> None:
    """``.ci/venv.sh``: a venv with no pip (Ctrl-C while it was made) is made again, whole;
    one with pip is kept; a folder that is no venv keeps what it holds."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {"PYTHON": sys.executable}

    def made(where: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(ROOT / ".ci" / "venv.sh"), "run.sh", str(where)],
            env={"PATH": "/usr/bin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    assert made(venv).returncode == 0
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--version"]
    assert subprocess.run(pip, capture_output=True, check=False).returncode == 0
    (venv / "kept").write_text("")
    assert made(venv).returncode == 0 and (venv / "kept").exists()  # had pip: kept
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert made(folder).returncode == 0
    assert (folder / "notes.txt").read_text() == "mine"
