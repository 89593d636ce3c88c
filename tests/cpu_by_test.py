"""Where the suite's CPU goes, test by test: with ``FLEETWARDEN_TEST_CPU=DIR`` each test
process writes ``DIR/<worker>.tsv``, a line per test — its id, the CPU seconds its own
process spent on it (setup, call and teardown), those of the child processes reaped while it
ran (its ``fleetwarden`` starts, CLIs, git — and any earlier test's leftover reaped then, with
all its CPU), and its wall seconds. Off by default."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ENV = "FLEETWARDEN_TEST_CPU"


def _cpu(who: int) -> float:
    used = resource.getrusage(who)
    return used.ru_utime + used.ru_stime


def pytest_configure(config: pytest.Config) -> None:
    where = os.environ.get(ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    where = os.environ.get(ENV)
    if not where:
        return (yield)
    own, children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    began = time.monotonic()
    try:
        return (yield)
    finally:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        line = (
            f"{item.nodeid}\t{_cpu(resource.RUSAGE_SELF) - own:.3f}\t"
            f"{_cpu(resource.RUSAGE_CHILDREN) - children:.3f}\t{time.monotonic() - began:.3f}\n"
        )
        with (Path(where) / f"{worker}.tsv").open("a") as out:
            out.write(line)
