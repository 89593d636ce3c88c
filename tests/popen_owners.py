"""Which test started a process that was dropped while still running.

Python warns ``subprocess N is still running`` when a :class:`subprocess.Popen` is
collected before its process ended, and the suite takes that warning for an error — but it
comes at the garbage collector's moment, inside whatever test runs then, naming only a pid.
Each ``Popen`` made in a test process is marked with the test running when it was made
(and its program), and the warning of one dropped still running names both, so the test
that leaked it is the one to mend.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

_running = ["(no test: collection or a session fixture)"]
_init = subprocess.Popen.__init__
_del = subprocess.Popen.__del__


def _marked_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
    self._fw_started_by = _running[-1]  # type: ignore[attr-defined]
    program = args if isinstance(args, str | bytes) else next(iter(args), "")
    self._fw_program = str(program)[-80:]  # type: ignore[attr-defined]
    _init(self, args, *rest, **options)


def _named_del(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
    alive = (
        getattr(self, "_child_created", False)
        and self.returncode is None
        and self._internal_poll(_deadstate=sys.maxsize) is None  # type: ignore[attr-defined]
    )
    if not alive:
        _del(self, *args, **kwargs)
        return
    # As Popen's own: kept to be reaped when the next one is made, then said.
    subprocess._active.append(self)  # type: ignore[attr-defined]
    warnings.warn(
        f"subprocess {self.pid} ({getattr(self, '_fw_program', '?')}) was dropped still "
        f"running; it was started by {getattr(self, '_fw_started_by', '?')}",
        ResourceWarning,
        stacklevel=1,
    )


def install() -> None:
    subprocess.Popen.__init__ = _marked_init  # type: ignore[method-assign]
    subprocess.Popen.__del__ = _named_del  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _running.append(item.nodeid)
    try:
        return (yield)
    finally:
        _running.pop()
