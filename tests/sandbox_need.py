"""Tests that need the sandbox's parts (bubblewrap, root, control groups, …).

Where one is missing they skip, naming it; when ``FLEETWARDEN_REQUIRE_SANDBOX`` is set
(``tests/run.sh`` sets it: it installs them and runs as root, as CI does) they fail
instead, so a suite that never ran the sandbox cannot pass. A mark, :func:`needs`, is
checked at setup (``tests/conftest.py``); :func:`missing` is for a check made in a test.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

__all__ = ["BWRAP", "REQUIRE_ENV_VAR", "check", "missing", "needs", "root"]

REQUIRE_ENV_VAR = "FLEETWARDEN_REQUIRE_SANDBOX"
MARK = "sandbox"  # registered in pyproject.toml


def required() -> bool:
    """Whether a missing sandbox part fails the test instead of skipping it."""
    return os.environ.get(REQUIRE_ENV_VAR, "") not in ("", "0")


def missing(what: str) -> NoReturn:
    """Skip the running test for want of ``what``, or fail it when the sandbox is required."""
    if required():
        pytest.fail(f"{REQUIRE_ENV_VAR} is set, and {what}", pytrace=False)
    pytest.skip(what)


def needs(problem: str | None) -> pytest.MarkDecorator:
    """Mark a test that cannot run while ``problem`` (what is missing; None: nothing is)."""
    mark: pytest.MarkDecorator = getattr(pytest.mark, MARK)
    return mark(problem)


def check(item: pytest.Item) -> None:
    """At setup: skip or fail a test whose ``sandbox`` marks name something missing."""
    for mark in item.iter_markers(MARK):
        problem = mark.args[0] if mark.args else None
        if problem is not None:
            missing(problem)


def root(why: str) -> pytest.MarkDecorator:
    """Mark a test that needs root, saying what for."""
    return needs(None if os.geteuid() == 0 else f"not root: {why}")


BWRAP = needs(None if shutil.which("bwrap") else "needs bubblewrap (bwrap)")
