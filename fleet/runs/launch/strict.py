"""``enforce: strict`` at launch: a spec with no sandbox or open egress is refused at the
one place every launch passes (:meth:`fleet.runs.keeper.RunKeeper.launch` — a spawn, a
restart, the watchdog's restart, a follow-up), whether its settings came from the roster or
from the ledger (an agent the roster no longer names, or one spawned ad hoc, launches with
the settings it was last launched with). The config's own settings are refused when it is
read; this catches what the ledger remembers. The app says whether it holds
(:attr:`~fleet.runs.launch.launch_kit.FleetSettings.strict`)."""

from __future__ import annotations

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec

UNRULED = (("sandbox", "none"), ("egress", "open"))


def strict_refusal(spec: AgentSpec, strict: bool) -> str | None:
    """Why ``enforce: strict`` refuses ``spec``'s launch; ``None`` when it does not (or
    enforcement is ``warn``)."""
    if not strict:
        return None
    bad = [f"{key}: {value}" for key, value in UNRULED if getattr(spec, key) == value]
    if not bad:
        return None
    return (
        f"agent {spec.name} would launch with {' and '.join(bad)}, which `enforce: strict` "
        "refuses; add it to the roster with a sandbox (`sandbox: bwrap`, `egress: locked`), "
        "or set `enforce: warn` and restart"
    )


def check_strict(spec: AgentSpec, strict: bool) -> None:
    """Raise :class:`LaunchFailed` with :func:`strict_refusal`'s reason, if any."""
    why = strict_refusal(spec, strict)
    if why is not None:
        raise LaunchFailed(why)
