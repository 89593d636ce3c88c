"""Where the suite's CPU goes, test by test: with ``FLEETWARDEN_TEST_CPU=DIR`` each test
process writes ``DIR/<worker>.tsv``, a line per test — its id, the CPU seconds its own
process spent on it (setup, call and teardown), those of the child processes reaped while it
ran (its ``fleetwarden`` starts, CLIs, git — and any earlier test's leftover reaped then, with
all its CPU), its wall seconds, and how many ``fleetwarden`` processes it started (the
CLI's own starts are most of what the suite's children spend). Off by default."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import popen_owners

ENV = "FLEETWARDEN_TEST_CPU"
_starts = [0]


def _cpu(who: int) -> float:
    used = resource.getrusage(who)
    return used.ru_utime + used.ru_stime


def _count_starts() -> None:
    """Each ``Popen`` that started a program named ``fleetwarden`` is counted (around
    whatever ``__init__`` is in place, the suite's own marking included); one started
    through another program (``tmux new-session … fleetwarden run``) is not."""
    inner = subprocess.Popen.__init__

    def counted(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        inner(self, args, *rest, **options)
        if popen_owners.program(args).endswith("fleetwarden"):  # started: counted
            _starts[0] += 1

    subprocess.Popen.__init__ = counted  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    where = os.environ.get(ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        _count_starts()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    where = os.environ.get(ENV)
    if not where:
        return (yield)
    own, children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    _starts[0] = 0
    began = time.monotonic()
    try:
        return (yield)
    finally:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        line = (
            f"{item.nodeid}\t{_cpu(resource.RUSAGE_SELF) - own:.3f}\t"
            f"{_cpu(resource.RUSAGE_CHILDREN) - children:.3f}\t"
            f"{time.monotonic() - began:.3f}\t{_starts[0]}\n"
        )
        with (Path(where) / f"{worker}.tsv").open("a") as out:
            out.write(line)
