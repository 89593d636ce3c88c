"""How the suite's test files are dealt to its workers under ``--dist loadfile``: each file
whole to one worker, as xdist deals them, except the files that need the session's
Synapse (those marked ``synapse``), which go in :data:`BUNDLES` bundles, each bundle whole
to one worker. The session's Synapse is one per worker that runs a Matrix test: dealt file
by file, every worker started one (five homeservers, each ~4 CPU s to start and ~0.5 CPU s
a minute awake until its worker ends); in two bundles, two start.

A bundle is a work unit as a file is: xdist deals the units with the most tests first, so
the two bundles start early and the files around them even out the workers' ends. Files
go to the bundle with fewer tests so far, the largest first. Which files are marked is
read from their text (``pytestmark`` or a parameter's ``marks=`` naming
``pytest.mark.synapse``), since the scheduler sees test ids only; a file
left out of the bundles by a mistake there still passes, starting a Synapse of its own
worker."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from xdist.scheduler import LoadFileScheduling

BUNDLES: Final = 2
_MARKED: Final = re.compile(
    r"^(?:pytestmark\s*=.*|.*\bmarks=.*)\bpytest\.mark\.synapse\b", re.MULTILINE
)
_TEST: Final = re.compile(r"^(?:async )?def test_", re.MULTILINE)


def bundles(root: Path, tests: Path) -> dict[str, str]:
    """Each test file under ``tests`` marked ``synapse`` (relative to ``root``, as in a
    test id) with the bundle it goes in: ``synapse-1`` … ``synapse-N``."""
    weights: dict[str, int] = {}
    for path in sorted(tests.rglob("test_*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if _MARKED.search(text):
            weights[path.relative_to(root).as_posix()] = len(_TEST.findall(text))
    load = [0] * BUNDLES
    dealt: dict[str, str] = {}
    for name in sorted(weights, key=lambda n: (-weights[n], n)):
        lightest = load.index(min(load))
        load[lightest] += weights[name]
        dealt[name] = f"synapse-{lightest + 1}"
    return dealt


class SynapseBundles(LoadFileScheduling):
    """xdist's ``loadfile`` with the Synapse files in :data:`BUNDLES` work units."""

    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self._root = Path(config.rootpath)

    @cached_property
    def _bundles(self) -> dict[str, str]:
        return bundles(self._root, self._root / "tests")

    def _split_scope(self, nodeid: str) -> str:
        file = nodeid.split("::", 1)[0]
        return self._bundles.get(file, file)
