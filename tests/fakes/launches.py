"""A fake supervisor's side of a launch: what a :class:`LaunchRequest` asks of the run it
starts, as the keywords the supervisor's launch once took (``name`` and ``asked`` too), so a
fake records and a test reads the launch as before."""

from __future__ import annotations

from typing import Any

from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet

_KEPT = (
    *("runtime", "model", "prompt", "workdir", "account", "permissions", "run_budget"),
    *("host", "by", "collect", "repo", "repo_base", "resume"),
)


def given_of(request: LaunchRequest) -> dict[str, Any]:
    """``request`` as the launch's keywords: its agent as ``name``, its line's ask as
    ``asked``."""
    given = {key: getattr(request, key) for key in _KEPT}
    return {"name": request.agent, **given, "asked": request.asked()}


def unguarded(fleet: Fleet) -> Admission:
    """An admission over ``fleet`` with no budgets configured, no quotes and no caps kept:
    a test's explicit choice (the app's admission always has every stage wired)."""
    return Admission(fleet=fleet, slots=None, budgets=None)
