"""The dashboard's "in trouble" is the watchdog's verdict: the state its sweep leaves, with
each agent's own timeout and signals, never a heartbeat's age alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.dashboard.pages.shapes import agent_row
from fleet.model import AgentSpec, AgentState, DesiredState, RestartMode, RestartPolicy
from fleet.names import AgentName
from fleet.supervisor.status import AgentStatus
from fleet.watchdog.decisions import AgentView, HeartbeatKind, WatchdogDefaults, in_trouble, sweep
from fleet.watchdog.verdicts import MarkIdle, MarkRunning, MarkStalled

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=20)
OLD_BEAT = NOW - timedelta(minutes=10)
NEVER = RestartPolicy(RestartMode.NEVER)


def _view(
    name: str,
    kind: HeartbeatKind,
    *,
    timeout: float | None = None,
    output: datetime | None = None,
) -> AgentView:
    return AgentView(
        name=AgentName(name),
        spec=AgentSpec(
            name=AgentName(name), runtime="command", heartbeat_timeout=timeout, restart=NEVER
        ),
        state=AgentState.RUNNING,
        desired=DesiredState.RUNNING,
        process_alive=True,
        run_started_at=T0,
        last_heartbeat=OLD_BEAT,
        last_heartbeat_kind=kind,
        last_output_at=output,
    )


def _row(name: str, state: AgentState, reason: str) -> list[str]:
    status = AgentStatus(
        name=AgentName(name),
        runtime="command",
        backend="subprocess",
        model=None,
        state=state,
        reason=reason,
        pid=4242,
        started_at=T0,
        ended_at=None,
        exit_code=None,
        last_activity=OLD_BEAT,
        last_heartbeat=OLD_BEAT,
    )
    problems: list[str] = agent_row(status, NOW, 0.0, None, {}, {}, str)["problems"]
    return problems


def test_an_old_heartbeat_is_a_problem_only_where_the_watchdog_says_stalled() -> None:
    """Beats ten minutes old: waiting for input, printing, within a one-hour timeout →
    healthy rows; silent past the default timeout → the row says stalled, with why."""
    views = [
        _view("idle", "waiting"),
        _view("printer", "beat", output=NOW - timedelta(seconds=1)),
        _view("patient", "working", timeout=3600),
        _view("staller", "working"),
    ]
    actions = sweep(views, NOW, WatchdogDefaults(heartbeat_timeout=120))
    verdicts: dict[str, tuple[AgentState, str]] = {view.name: (view.state, "") for view in views}
    for action in actions:
        match action:
            case MarkIdle(name=name, reason=reason):
                verdicts[name] = (AgentState.IDLE, reason)
            case MarkStalled(name=name, reason=reason):
                verdicts[name] = (AgentState.STALLED, reason)
            case MarkRunning(name=name, reason=reason):
                verdicts[name] = (AgentState.RUNNING, reason)
    rows = {name: _row(name, state, reason) for name, (state, reason) in verdicts.items()}
    assert rows["idle"] == rows["printer"] == rows["patient"] == []
    assert rows["staller"] == ["stalled: no heartbeat or output for 600s (timeout 120s)"]


def test_stalled_and_failed_are_trouble_every_other_state_is_not() -> None:
    """The one predicate the surfaces share."""
    troubled = {state for state in AgentState if in_trouble(state)}
    assert troubled == {AgentState.STALLED, AgentState.FAILED}
