"""One start of a fresh interpreter running a program that reports in JSON, with its
bytecode (and so what :mod:`bot.cli.kept` keeps) under a cache of the test's own: each start
of the command is a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.test_structure import ROOT


def started(
    program: str, cache: Path, *flags: str, args: tuple[str, ...] = ()
) -> dict[str, object]:
    """What ``program`` (run with the interpreter's ``flags``, then ``args``) printed."""
    env = {"PYTHONPYCACHEPREFIX": str(cache), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, *flags, "-c", program, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    said: dict[str, object] = json.loads(done.stdout)
    return said
