"""Which test started a process that was dropped while still running.

Python warns ``subprocess N is still running`` when a :class:`subprocess.Popen` is
collected before its process ended, and the suite takes that warning for an error — but it
comes at the garbage collector's moment, inside whatever test runs then, naming only a pid.
Each ``Popen`` made in a test process is marked with the test running when it was made
(and its program), and the warning of one dropped still running names both, so the test
that leaked it is the one to mend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import pytest

_running = ["(no test: collection, or after the last test)"]
_init = subprocess.Popen.__init__
_del = subprocess.Popen.__del__


def program(args: Any) -> str:
    """The program ``args`` runs, read without consuming them (an iterator is left whole:
    Popen reads it once, after this)."""
    if isinstance(args, str | bytes | os.PathLike):
        return os.fsdecode(args)
    if isinstance(args, Sequence) and args:
        first = args[0]
        return os.fsdecode(first) if isinstance(first, str | bytes | os.PathLike) else "?"
    return "?"


def _marked_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
    self._fw_started_by = _running[-1]  # type: ignore[attr-defined]
    self._fw_program = program(args)[-80:]  # type: ignore[attr-defined]
    _init(self, args, *rest, **options)


def _named_del(
    self: subprocess.Popen[Any],
    _maxsize: int = sys.maxsize,
    _warn: Any = warnings.warn,
    _active: list[Any] | None = subprocess._active,  # type: ignore[attr-defined]
) -> None:
    """Popen's own ``__del__`` (Python 3.11's), its warning naming the program and the
    test: said of every child never waited for, running or not; one still running is kept
    to be reaped when the next Popen is made. (Bound as defaults, as Popen's own are: at
    the interpreter's exit the module globals may be gone.)"""
    if not self._child_created:  # type: ignore[attr-defined]
        return
    unwaited = self.returncode is None
    self._internal_poll(_deadstate=_maxsize)  # type: ignore[attr-defined]
    running = self.returncode is None
    if running and _active is not None:
        _active.append(self)
    if unwaited:
        state = "still running" if running else "ended, never waited for"
        _warn(
            f"subprocess {self.pid} ({getattr(self, '_fw_program', '?')}) was dropped {state}; "
            f"it was started by {getattr(self, '_fw_started_by', '?')}",
            ResourceWarning,
            source=self,
        )


def install() -> None:
    subprocess.Popen.__init__ = _marked_init  # type: ignore[method-assign]
    subprocess.Popen.__del__ = _named_del  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """A fixture wider than a test is named as the starter, not the test that set it up."""
    if fixturedef.scope == "function":
        return (yield)
    _running.append(f"the {fixturedef.scope} fixture {fixturedef.argname}")
    try:
        return (yield)
    finally:
        _running.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _running.append(item.nodeid)
    try:
        return (yield)
    finally:
        _running.pop()
