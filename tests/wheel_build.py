"""Fleetwarden as it ships: the wheel built from this checkout, and a fresh virtualenv with
that wheel installed (not editable), for the tests that run the installed package.

The wheel is built offline — pip's ``wheel --no-build-isolation`` on the test venv's
setuptools — from a copy of the project's files (those git tracks and the new ones it does
not ignore): a build in place would leave ``build/`` in the checkout, whose stale files a
later wheel would carry. The fresh venv has nothing but the wheel of its own; the product's
dependencies come from the test venv's site-packages, named by a plain path line in a
``.pth`` file. A directory put on ``sys.path`` that way is not a site directory: the
``.pth`` files in it (the editable install's finder among them) never run, so ``bot``,
``fleet`` and the rest can only come from the wheel. :func:`imported_from` shows where
they did.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("bot", "connectors", "fleet", "scheduler")
"""The packages the wheel holds (``pyproject.toml``'s ``packages.find``)."""
BUILD_INPUTS = ("pyproject.toml", "README.md")
"""What the build reads besides the packages (the readme is the wheel's description)."""
DEPENDENCIES_PTH = "_fleetwarden_test_dependencies.pth"
BUILD_TIMEOUT = 120.0


def project_files(*where: str) -> dict[str, int]:
    """The files under ``where`` (paths of the checkout) that a clone has — those git
    tracks, and new ones it does not ignore — each with its mode (``0o755`` for one git
    keeps executable); a tracked file deleted in the checkout is left out."""
    listed = _git("ls-files", "-z", "--stage", "--", *where).split("\0")
    modes = {line.split("\t", 1)[1]: int(line.split()[0], 8) & 0o777 for line in listed if line}
    new = _git("ls-files", "-z", "--others", "--exclude-standard", "--", *where).split("\0")
    for path in filter(None, new):
        modes[path] = 0o755 if (ROOT / path).stat().st_mode & 0o111 else 0o644
    return {path: mode for path, mode in sorted(modes.items()) if (ROOT / path).is_file()}


def build_wheel(dest: Path) -> Path:
    """The wheel of the checkout as it is, built in a copy of its files under ``dest``."""
    have = importlib.metadata.version("setuptools")
    if tuple(int(part) for part in have.split(".")[:2]) < (70, 1):
        raise AssertionError(
            f"setuptools {have} cannot build the wheel offline (70.1 or later has bdist_wheel):"
            " `.venv/bin/pip install -e '.[dev]'` brings the test extras' setuptools"
        )
    source = dest / "source"
    for path, mode in project_files(*BUILD_INPUTS, *PACKAGES).items():
        target = source / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / path, target)
        target.chmod(mode)
    out = dest / "dist"
    _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(source))
    (wheel,) = out.glob("fleetwarden-*.whl")
    return wheel


@dataclass(frozen=True, slots=True)
class Installed:
    """A fresh virtualenv with the wheel installed in it."""

    venv: Path
    site: Path
    """Its site-packages, where the wheel's packages are."""

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def fleetwarden(self) -> Path:
        """The console script the wheel's entry point made."""
        return self.venv / "bin" / "fleetwarden"

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for its programs: this one's, without anything that would pick a
        config, another venv or other modules, and a PATH of the venv's ``bin`` and the
        system's."""
        dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("FLEETWARDEN_") and k not in dropped
        }
        env["PATH"] = os.pathsep.join(
            (str(self.venv / "bin"), "/usr/local/bin", "/usr/bin", "/bin")
        )
        env.update(extra)
        return env


def install_fresh(wheel: Path, dest: Path) -> Installed:
    """``wheel`` installed (not editable, no dependencies fetched) into a new venv at
    ``dest``, the test venv's third-party packages reachable from it (see the module)."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(dest)],
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    python = dest / "bin" / "python"
    _pip("--python", str(python), "install", "--no-deps", "--no-index", str(wheel))
    found = subprocess.run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=BUILD_TIMEOUT,
    )
    packages = Path(found.stdout.strip())
    (packages / DEPENDENCIES_PTH).write_text("".join(f"{path}\n" for path in dependency_dirs()))
    return Installed(dest, packages)


def dependency_dirs() -> list[str]:
    """Where this Python finds its third-party packages (its venv's site-packages, and the
    system's or the user's where it reads them), but none that holds one of the four
    packages itself."""
    found = [sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    return [
        where
        for where in dict.fromkeys(found)
        if Path(where).is_dir() and not any((Path(where) / name).exists() for name in PACKAGES)
    ]


IMPORTED = """\
import importlib, json, sys
PACKAGES = {"bot", "connectors", "fleet", "scheduler"}
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps({
    "modules": {
        name: getattr(module, "__file__", None)
        for name, module in sys.modules.items()
        if name.split(".")[0] in PACKAGES
    },
    "editable": sorted(name for name in sys.modules if "editable" in name),
}))
"""


def imported_from(installed: Installed, *modules: str) -> tuple[dict[str, str | None], list[str]]:
    """Every module of the four packages loaded once ``modules`` are imported by the venv's
    Python, with where it was loaded from; and the editable-install finders loaded (none)."""
    found = json.loads(run_python(installed, IMPORTED, *modules))
    return found["modules"], found["editable"]


def run_python(installed: Installed, code: str, *args: str) -> str:
    """What ``code`` prints, run by the venv's Python — with ``-P``, and in the venv: never
    the checkout's packages, which a ``-c`` run in it would find first."""
    done = subprocess.run(
        [str(installed.python), "-P", "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=installed.venv,
        env=installed.env(),
        timeout=BUILD_TIMEOUT,
    )
    if done.returncode != 0:
        raise AssertionError(f"the installed package's Python failed:\n{done.stderr}")
    return done.stdout


def _pip(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    if done.returncode != 0:
        raise AssertionError(f"pip {args[0]} failed ({done.returncode}):\n{done.stderr}")


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout
