"""The build: which Fleetwarden this process runs — its version, from the installed
``fleetwarden`` distribution's metadata, and, when it runs from a git checkout, the commit.

The commit is read only when the package's source directory is inside a git work tree whose
top holds Fleetwarden's own ``pyproject.toml`` (an editable install, ``run.sh`` from a
clone): ``git rev-parse --short HEAD`` there, an argv list, with no ``GIT_*`` variable of
the environment. An installed wheel records no commit: its build says its version only.

:func:`current` reads it once per process; ``fleetwarden --version``, the footer on the
forge, ``/metrics`` (``fleetwarden_build_info``) and ``status`` all say what it says.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DISTRIBUTION: Final = "fleetwarden"
UNKNOWN: Final = "unknown"
_GIT_SECONDS: Final = 5.0
_ROOT: Final = Path(__file__).resolve().parents[1]
"""The directory that holds the ``bot`` package: a checkout's top, or site-packages."""


@dataclass(frozen=True, slots=True)
class Build:
    """Fleetwarden's version and, from a git checkout, its commit (``None``: not known)."""

    version: str
    commit: str | None = None

    @property
    def words(self) -> str:
        """``0.2.0 (commit 1a2b3c4)``, or the version alone."""
        return self.version if self.commit is None else f"{self.version} (commit {self.commit})"

    def as_json(self) -> dict[str, str | None]:
        return {"version": self.version, "commit": self.commit}


@functools.cache
def current() -> Build:
    """This process's build, read once."""
    return Build(installed_version(), checkout_commit(_ROOT))


def installed_version() -> str:
    """The ``fleetwarden`` distribution's version, ``unknown`` when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return UNKNOWN


def checkout_commit(root: Path) -> str | None:
    """The short commit of the git checkout whose top is ``root`` and holds Fleetwarden's
    ``pyproject.toml``; ``None`` anywhere else (an installed wheel), or when git cannot say."""
    if not _ours(root / "pyproject.toml"):
        return None
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != root.resolve():
        return None
    commit = _git(root, "rev-parse", "--short", "HEAD")
    if commit is None or not all(c in "0123456789abcdef" for c in commit):
        return None
    return commit


def _ours(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return False
    return f'name = "{DISTRIBUTION}"' in text


def _git(root: Path, *args: str) -> str | None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_SECONDS,
            env=environ,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None
