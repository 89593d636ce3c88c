"""Tests for fleet.watchdog.decisions: the pure sweep, at fixed times (no clock anywhere)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.model import AgentSpec, AgentState, DesiredState, RestartMode, RestartPolicy
from fleet.names import AgentName
from fleet.watchdog.decisions import AgentView, WatchdogDefaults, ended_state, restart_delay, sweep
from fleet.watchdog.verdicts import (
    Action,
    CancelRestart,
    GiveUp,
    KillForTimeout,
    MarkEnded,
    MarkIdle,
    MarkRunning,
    MarkStalled,
    ResetRestarts,
    Restart,
    ScheduleRestart,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
DEFAULTS = WatchdogDefaults(heartbeat_timeout=120)
A = AgentName("a")
ON_FAILURE = RestartPolicy(
    RestartMode.ON_FAILURE, max_restarts=3, backoff_initial=5, backoff_max=60
)
ALWAYS = dataclasses.replace(ON_FAILURE, mode=RestartMode.ALWAYS)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def spec(**fields: Any) -> AgentSpec:
    return AgentSpec(name=A, runtime="stub", **fields)


def view(**fields: Any) -> AgentView:
    """A running agent whose run started at T0 and has given no sign yet."""
    values: dict[str, Any] = {
        "name": A,
        "spec": spec(),
        "state": AgentState.RUNNING,
        "desired": DesiredState.RUNNING,
        "process_alive": True,
        "run_started_at": T0,
    }
    values.update(fields)
    return AgentView(**values)


def ended(policy: RestartPolicy = ON_FAILURE, **fields: Any) -> AgentView:
    """An agent whose run failed with status 1, its process gone."""
    values: dict[str, Any] = {
        "spec": spec(restart=policy),
        "state": AgentState.FAILED,
        "process_alive": False,
        "exit_code": 1,
    }
    values.update(fields)
    return view(**values)


def run(*views: AgentView, now: float) -> list[Action]:
    return sweep(views, at(now), DEFAULTS)


def kinds(actions: Sequence[Action]) -> list[str]:
    return [type(action).__name__ for action in actions]


# --- Stalls ------------------------------------------------------------------------------------


def test_recent_heartbeat_is_not_a_stall() -> None:
    """A heartbeat within heartbeat_timeout keeps a running agent as it is."""
    assert run(view(last_heartbeat=at(100), last_heartbeat_kind="beat"), now=219) == []


def test_silence_longer_than_heartbeat_timeout_stalls() -> None:
    """Liveness older than the heartbeat timeout marks the agent stalled, saying how long."""
    actions = run(view(last_heartbeat=at(10), last_heartbeat_kind="beat"), now=131)
    assert actions == [
        MarkStalled(A, "no heartbeat or output for 121s (timeout 120s)"),
    ]


def test_silence_of_exactly_the_timeout_is_not_yet_a_stall() -> None:
    """Stalled means older than the timeout, not equal to it."""
    assert run(view(last_heartbeat=at(10), last_heartbeat_kind="beat"), now=130) == []


def test_the_agents_own_heartbeat_timeout_wins_over_the_default() -> None:
    """spec.heartbeat_timeout replaces the fleet default for that agent."""
    agent = view(spec=spec(heartbeat_timeout=30.0), last_heartbeat=at(0))
    assert kinds(run(agent, now=31)) == ["MarkStalled"]
    assert run(agent, now=30) == []


def test_agent_that_never_beat_stalls_only_after_the_timeout_from_its_start() -> None:
    """With no signal at all, the run start is the reference: stalled only past it + timeout."""
    assert run(view(), now=120) == []
    assert run(view(), now=121) == [
        MarkStalled(A, "no heartbeat or output since the run started 121s ago (timeout 120s)")
    ]


def test_agent_without_a_start_time_or_signal_is_not_judged() -> None:
    """No run start and no signal: nothing to measure silence from, so no stall."""
    assert run(view(run_started_at=None), now=100_000) == []


def test_signals_from_an_earlier_run_do_not_count() -> None:
    """A heartbeat or output before this run started is ignored: the run start counts."""
    agent = view(
        run_started_at=at(1000),
        last_heartbeat=at(990),
        last_output_at=at(999),
        state=AgentState.STARTING,
    )
    assert run(agent, now=1100) == []
    assert kinds(run(agent, now=1121)) == ["MarkStalled"]
    assert "since the run started" in run(agent, now=1121)[0].reason


def test_output_counts_as_liveness() -> None:
    """Output newer than the last heartbeat keeps the agent alive; its silence counts from it."""
    agent = view(last_heartbeat=at(0), last_heartbeat_kind="working", last_output_at=at(100))
    assert run(agent, now=200) == []
    assert kinds(run(agent, now=221)) == ["MarkStalled"]


def test_output_alone_counts_as_liveness() -> None:
    """An agent that never beats but writes output is alive."""
    assert run(view(last_output_at=at(500)), now=600) == []


def test_stalled_agent_is_not_marked_again() -> None:
    """A stall is reported once: an agent already stalled gets no second MarkStalled."""
    assert run(view(state=AgentState.STALLED, last_heartbeat=at(0)), now=5000) == []


# --- Idle and running -----------------------------------------------------------------------------


def test_waiting_beat_marks_the_agent_idle() -> None:
    """A heartbeat saying 'waiting' turns a running agent idle."""
    agent = view(last_heartbeat=at(50), last_heartbeat_kind="waiting")
    assert run(agent, now=60) == [MarkIdle(A, "waiting for input (said so 10s ago)")]


def test_agent_waiting_for_input_never_stalls() -> None:
    """An agent whose last heartbeat said 'waiting' is idle however long it stays silent."""
    agent = view(state=AgentState.IDLE, last_heartbeat=at(50), last_heartbeat_kind="waiting")
    assert run(agent, now=86_400) == []


def test_working_beat_marks_an_idle_agent_running() -> None:
    """A heartbeat saying 'working' turns an idle agent running."""
    agent = view(state=AgentState.IDLE, last_heartbeat=at(100), last_heartbeat_kind="working")
    assert run(agent, now=103) == [MarkRunning(A, "working (3s ago)")]


def test_working_agent_that_goes_silent_stalls() -> None:
    """'working' is no exemption: silence past the timeout is a stall."""
    agent = view(last_heartbeat=at(0), last_heartbeat_kind="working")
    assert kinds(run(agent, now=121)) == ["MarkStalled"]


def test_plain_beat_leaves_idle_or_running_as_it_is() -> None:
    """A heartbeat without a state says 'alive' only: idle stays idle, running stays running."""
    for state in (AgentState.IDLE, AgentState.RUNNING):
        assert (
            run(view(state=state, last_heartbeat=at(10), last_heartbeat_kind="beat"), now=20) == []
        )


def test_stalled_agent_showing_life_again_recovers() -> None:
    """A stalled agent with fresh output is running again; with a 'waiting' beat, idle."""
    stalled = view(state=AgentState.STALLED, last_heartbeat=at(0), last_output_at=at(300))
    assert run(stalled, now=310) == [MarkRunning(A, "signs of life again (10s ago)")]
    waiting = dataclasses.replace(stalled, last_heartbeat=at(305), last_heartbeat_kind="waiting")
    assert kinds(run(waiting, now=310)) == ["MarkIdle"]


def test_starting_agent_with_a_first_sign_is_running() -> None:
    """An agent still marked starting that gives a sign of life is running."""
    agent = view(state=AgentState.STARTING, last_output_at=at(2))
    assert run(agent, now=3) == [MarkRunning(A, "first sign of life (1s ago)")]


# --- Ends -----------------------------------------------------------------------------------------


def test_dead_process_of_a_live_agent_is_marked_ended() -> None:
    """process_alive False while the state is live: MarkEnded with the exit code."""
    assert run(view(process_alive=False, exit_code=3), now=10) == [
        MarkEnded(A, 3, "the process is gone (ended with exit status 3)")
    ]


@pytest.mark.parametrize(
    ("exit_code", "words"),
    [
        (None, "ended, exit status unknown"),
        (-9, "ended, killed by signal 9"),
        (0, "ended with exit status 0"),
    ],
)
def test_ended_reason_says_how_it_ended(exit_code: int | None, words: str) -> None:
    """The reason says the exit status, a signal, or that it is unknown."""
    (action,) = run(view(process_alive=False, exit_code=exit_code), now=10)
    assert action == MarkEnded(A, exit_code, f"the process is gone ({words})")


def test_unknown_process_status_is_not_an_end() -> None:
    """process_alive None (could not check) never marks the agent ended."""
    assert run(view(process_alive=None, last_output_at=at(5)), now=10) == []


def test_agent_already_ended_is_not_marked_again() -> None:
    """A dead process of an agent already recorded ended needs nothing (mode never)."""
    agent = view(state=AgentState.EXITED, process_alive=False, exit_code=0)
    assert run(agent, now=10) == []


@pytest.mark.parametrize(
    ("exit_code", "by_operator", "state"),
    [
        (0, False, AgentState.EXITED),
        (1, False, AgentState.FAILED),
        (-15, False, AgentState.FAILED),
        (None, False, AgentState.FAILED),
        (0, True, AgentState.STOPPED),
        (1, True, AgentState.STOPPED),
    ],
)
def test_ended_state(exit_code: int | None, by_operator: bool, state: AgentState) -> None:
    """An end is stopped if an operator asked, exited on status 0, failed otherwise."""
    assert ended_state(exit_code, by_operator) is state


# --- Timeouts -------------------------------------------------------------------------------------


def test_run_past_its_timeout_is_killed() -> None:
    """A run older than spec.timeout gets KillForTimeout; at exactly the limit, not yet."""
    agent = view(spec=spec(timeout=600.0), last_output_at=at(599))
    assert run(agent, now=600) == []
    assert run(agent, now=601) == [
        KillForTimeout(A, "run went on for 601s, past its timeout of 600s")
    ]


def test_timeout_kill_is_the_only_action_that_sweep() -> None:
    """A run to be killed is not also marked stalled or restarted: its end decides later."""
    agent = view(
        spec=spec(timeout=600.0, restart=ALWAYS),
        state=AgentState.STALLED,
        next_restart_at=at(0),
    )
    assert kinds(run(agent, now=700)) == ["KillForTimeout"]


def test_end_after_a_timeout_kill_is_restarted_as_a_failure() -> None:
    """The killed run (signal) is a failure: on-failure schedules a restart."""
    agent = ended(exit_code=-15, spec=spec(timeout=600.0, restart=ON_FAILURE))
    (action,) = run(agent, now=700)
    assert action == ScheduleRestart(
        A, at(705), 1, "failed, killed by signal 15; restart 1 of at most 3 in 5s"
    )


def test_agent_without_a_timeout_runs_forever() -> None:
    """No spec.timeout: no kill however long the run, as long as it is alive."""
    assert run(view(last_output_at=at(10**6)), now=10**6 + 1) == []


# --- Restarts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "state", "exit_code", "restarts"),
    [
        (RestartMode.NEVER, AgentState.FAILED, 1, False),
        (RestartMode.NEVER, AgentState.STALLED, None, False),
        (RestartMode.ON_FAILURE, AgentState.FAILED, 1, True),
        (RestartMode.ON_FAILURE, AgentState.FAILED, None, True),
        (RestartMode.ON_FAILURE, AgentState.EXITED, 0, False),
        (RestartMode.ON_FAILURE, AgentState.STALLED, None, True),
        (RestartMode.ALWAYS, AgentState.EXITED, 0, True),
        (RestartMode.ALWAYS, AgentState.FAILED, 2, True),
        (RestartMode.ALWAYS, AgentState.STALLED, None, True),
        (RestartMode.ALWAYS, AgentState.STOPPED, 0, False),
        (RestartMode.ALWAYS, AgentState.PENDING, None, False),
        (RestartMode.ALWAYS, AgentState.RUNNING, None, False),
        (RestartMode.ALWAYS, AgentState.IDLE, None, False),
    ],
)
def test_restart_is_scheduled_per_mode(
    mode: RestartMode, state: AgentState, exit_code: int | None, restarts: bool
) -> None:
    """on-failure: after a non-zero exit or a stall; always: after any end; never: never."""
    policy = dataclasses.replace(ON_FAILURE, mode=mode)
    agent = view(
        spec=spec(restart=policy),
        state=state,
        process_alive=None if state.is_live else False,
        exit_code=exit_code,
        last_output_at=at(0) if state is AgentState.STALLED else at(999),
    )
    assert kinds(run(agent, now=1000)) == (["ScheduleRestart"] if restarts else [])


def test_end_and_restart_are_decided_in_one_sweep() -> None:
    """A dead process is marked ended and, under on-failure, its restart scheduled at once."""
    agent = view(spec=spec(restart=ON_FAILURE), process_alive=False, exit_code=1)
    assert run(agent, now=100) == [
        MarkEnded(A, 1, "the process is gone (ended with exit status 1)"),
        ScheduleRestart(A, at(105), 1, "failed with exit status 1; restart 1 of at most 3 in 5s"),
    ]


def test_clean_exit_of_a_live_agent_is_not_restarted_on_failure() -> None:
    """Exit status 0 under on-failure: marked ended, no restart."""
    agent = view(spec=spec(restart=ON_FAILURE), process_alive=False, exit_code=0)
    assert kinds(run(agent, now=100)) == ["MarkEnded"]


def test_stall_and_restart_are_decided_in_one_sweep() -> None:
    """A new stall under on-failure is marked and its restart scheduled in the same sweep."""
    agent = view(spec=spec(restart=ON_FAILURE), last_heartbeat=at(0))
    assert kinds(run(agent, now=200)) == ["MarkStalled", "ScheduleRestart"]


@pytest.mark.parametrize(
    ("done", "delay"), [(0, 5), (1, 10), (2, 20), (3, 40), (4, 60), (5, 60), (9, 60)]
)
def test_backoff_doubles_per_restart_up_to_the_cap(done: int, delay: float) -> None:
    """Restart n waits min(backoff_initial * 2**(n-1), backoff_max) seconds."""
    policy = dataclasses.replace(ON_FAILURE, max_restarts=10)
    (action,) = run(ended(policy, restarts_in_a_row=done), now=1000)
    assert isinstance(action, ScheduleRestart)
    assert (action.at, action.attempt) == (at(1000 + delay), done + 1)


def test_restart_delay_formula_and_huge_counts() -> None:
    """restart_delay is the capped doubling, and does not overflow for absurd counts."""
    assert [restart_delay(n, 1.5, 10) for n in (1, 2, 3, 4, 5)] == [1.5, 3, 6, 10, 10]
    assert restart_delay(10**9, 5, 300) == 300
    assert restart_delay(3, 5, 2) == 2  # a cap below the initial delay caps every delay


def test_pending_restart_waits_until_due_then_restarts() -> None:
    """Nothing while next_restart_at is in the future; Restart once it is due (<= now)."""
    agent = ended(restarts_in_a_row=1, next_restart_at=at(110))
    assert run(agent, now=109) == []
    assert run(agent, now=110) == [Restart(A, 2, "failed with exit status 1; restart 2 of 3")]
    assert kinds(run(agent, now=500)) == ["Restart"]


def test_due_restart_of_a_stalled_agent_restarts_it() -> None:
    """A stalled live agent with a due restart is restarted (the supervisor stops it first)."""
    agent = view(spec=spec(restart=ON_FAILURE), state=AgentState.STALLED, next_restart_at=at(300))
    assert run(agent, now=300) == [Restart(A, 1, "stalled; restart 1 of 3")]


def test_storm_gives_up_exactly_at_max_restarts() -> None:
    """Below max_restarts a restart is scheduled; at it, GiveUp instead, even if one is due."""
    assert kinds(run(ended(restarts_in_a_row=2), now=100)) == ["ScheduleRestart"]
    assert run(ended(restarts_in_a_row=3), now=100) == [
        GiveUp(
            A,
            "failed with exit status 1; giving up after 3 restart(s) in a row "
            "(max_restarts 3): restart storm",
        )
    ]
    assert kinds(run(ended(restarts_in_a_row=3, next_restart_at=at(50)), now=100)) == ["GiveUp"]


def test_zero_max_restarts_gives_up_at_the_first_failure() -> None:
    """max_restarts 0 with on-failure: the first failure is already a storm."""
    policy = dataclasses.replace(ON_FAILURE, max_restarts=0)
    assert kinds(run(ended(policy), now=100)) == ["GiveUp"]


def test_operator_stopped_agents_are_never_restarted() -> None:
    """An end an operator asked for is never restarted, even under always."""
    stopped = ended(ALWAYS, state=AgentState.STOPPED, exit_code=0, ended_by_operator=True)
    assert run(stopped, now=100) == []
    # Recorded failed, but the operator ended it: still no restart.
    assert run(ended(ALWAYS, ended_by_operator=True), now=100) == []
    dying = view(
        spec=spec(restart=ALWAYS), process_alive=False, exit_code=-15, ended_by_operator=True
    )
    assert run(dying, now=100) == [
        MarkEnded(A, -15, "the process is gone (stopped by an operator)")
    ]


def test_desired_stopped_is_never_restarted_and_a_pending_restart_is_cancelled() -> None:
    """desired=stopped: no restart whatever the mode; a pending one is cancelled."""
    assert run(ended(ALWAYS, desired=DesiredState.STOPPED), now=100) == []
    pending = ended(ALWAYS, desired=DesiredState.STOPPED, next_restart_at=at(90))
    assert run(pending, now=100) == [CancelRestart(A, "no longer wanted running")]


def test_give_up_is_reported_once() -> None:
    """Once the supervisor applies GiveUp (desired stopped, nothing pending), sweeps are quiet."""
    storm = ended(restarts_in_a_row=3, next_restart_at=at(50))
    assert kinds(run(storm, now=100)) == ["GiveUp"]
    after = dataclasses.replace(storm, desired=DesiredState.STOPPED, next_restart_at=None)
    assert run(after, now=130) == []


def test_pending_restart_is_cancelled_when_the_agent_recovers() -> None:
    """A stalled agent that shows life before its restart is due: running, restart cancelled."""
    agent = view(
        spec=spec(restart=ON_FAILURE),
        state=AgentState.STALLED,
        last_output_at=at(295),
        next_restart_at=at(400),
    )
    assert run(agent, now=300) == [
        MarkRunning(A, "signs of life again (5s ago)"),
        CancelRestart(A, "no restart needed: it is running"),
    ]


# --- Resetting the count --------------------------------------------------------------------------


def test_run_healthy_for_backoff_max_resets_the_restart_count() -> None:
    """restarts_in_a_row goes back to 0 once a run has been healthy for backoff_max seconds."""
    agent = view(spec=spec(restart=ON_FAILURE), restarts_in_a_row=2, last_output_at=at(55))
    assert run(agent, now=59) == []
    assert run(agent, now=60) == [
        ResetRestarts(A, "healthy for 60s (at least 60s) after 2 restart(s) in a row")
    ]


def test_no_reset_without_restarts_or_when_not_healthy() -> None:
    """No reset at zero restarts, nor for a run that is stalled or only starting."""
    assert run(view(spec=spec(restart=ON_FAILURE), last_output_at=at(99)), now=100) == []
    stalled = view(spec=spec(restart=ON_FAILURE), restarts_in_a_row=2, last_output_at=at(0))
    assert ResetRestarts not in map(type, run(stalled, now=500))
    starting = view(state=AgentState.STARTING, restarts_in_a_row=2, run_started_at=at(0))
    assert ResetRestarts not in map(type, run(starting, now=100))


# --- The whole sweep ------------------------------------------------------------------------------


def test_actions_are_ordered_by_agent_then_by_kind() -> None:
    """Agents by name whatever the snapshot order; each agent's actions in the table's order."""
    b = view(name=AgentName("b"), spec=spec(restart=ON_FAILURE), process_alive=False, exit_code=1)
    c = view(name=AgentName("c"), last_heartbeat=at(0))
    a = view(last_heartbeat=at(95), last_heartbeat_kind="waiting")
    actions = run(c, b, a, now=200)
    assert [(action.name, type(action).__name__) for action in actions] == [
        ("a", "MarkIdle"),
        ("b", "MarkEnded"),
        ("b", "ScheduleRestart"),
        ("c", "MarkStalled"),
    ]
    assert run(a, b, c, now=200) == actions


def test_an_agent_twice_in_the_snapshot_is_refused() -> None:
    """Two views of one agent would give contradictory actions: ValueError."""
    with pytest.raises(ValueError, match="appears twice"):
        run(view(), view(), now=0)


def test_watchdog_defaults_need_a_positive_heartbeat_timeout() -> None:
    """WatchdogDefaults refuses a heartbeat timeout of 0 or less."""
    with pytest.raises(ValueError, match="heartbeat_timeout"):
        WatchdogDefaults(heartbeat_timeout=0)


def _apply(agent: AgentView, actions: Sequence[Action], now: datetime) -> AgentView:
    """The supervisor's half of the contract, for an agent that fails right after launch."""
    for action in actions:
        match action:
            case MarkEnded():
                agent = dataclasses.replace(agent, state=ended_state(action.exit_code, False))
            case ScheduleRestart():
                agent = dataclasses.replace(agent, next_restart_at=action.at)
            case Restart():
                agent = dataclasses.replace(
                    agent,
                    state=AgentState.FAILED,  # it fails again at once
                    restarts_in_a_row=action.attempt,
                    last_restart_at=now,
                    next_restart_at=None,
                    run_started_at=now,
                )
            case GiveUp():
                agent = dataclasses.replace(
                    agent, desired=DesiredState.STOPPED, next_restart_at=None
                )
            case _:
                raise AssertionError(f"unexpected {action}")
    return agent


def test_a_crash_loop_backs_off_then_gives_up_once() -> None:
    """Sweeping a crash-looping agent every 30s: restarts at growing delays, then one GiveUp."""
    agent = view(spec=spec(restart=ON_FAILURE), process_alive=False, exit_code=1)
    seen: list[tuple[float, str]] = []
    for tick in range(0, 3600, 30):
        now = at(tick)
        actions = sweep([agent], now, DEFAULTS)
        seen.extend((tick, type(action).__name__) for action in actions)
        agent = _apply(agent, actions, now)
    assert seen == [
        (0, "MarkEnded"),
        (0, "ScheduleRestart"),  # restart 1 in 5s: due at the next sweep
        (30, "Restart"),
        (60, "ScheduleRestart"),  # its failure seen: restart 2 in 10s
        (90, "Restart"),
        (120, "ScheduleRestart"),  # restart 3 in 20s
        (150, "Restart"),
        (180, "GiveUp"),  # the third restart failed too: left down, reported once
    ]


# --- Removed from the roster ---------------------------------------------------------------------


@pytest.mark.parametrize(("state", "exit_code"), [(AgentState.FAILED, 1), (AgentState.EXITED, 0)])
def test_an_agent_removed_from_the_roster_is_never_restarted(
    state: AgentState, exit_code: int
) -> None:
    """A removed agent's stored `always` counts for nothing: its end schedules no restart,
    where the same agent in the roster gets one."""
    agent = ended(ALWAYS, state=state, exit_code=exit_code, removed_from_roster=True)
    assert run(agent, now=10) == []
    kept = dataclasses.replace(agent, removed_from_roster=False)
    assert kinds(run(kept, now=10)) == ["ScheduleRestart"]


def test_a_removed_agent_whose_process_ended_is_closed_and_left_down() -> None:
    """Its process gone while it is recorded running: the end is recorded, nothing more."""
    agent = view(
        spec=spec(restart=ALWAYS), process_alive=False, exit_code=0, removed_from_roster=True
    )
    assert kinds(run(agent, now=10)) == ["MarkEnded"]


def test_a_restart_pending_when_the_agent_was_removed_is_cancelled() -> None:
    """A restart scheduled before the reload is called off, saying why."""
    agent = ended(ALWAYS, next_restart_at=at(5), restarts_in_a_row=1, removed_from_roster=True)
    assert run(agent, now=10) == [CancelRestart(A, "it was removed from the roster")]


def test_a_stalled_removed_agent_is_reported_but_not_restarted() -> None:
    """A removed agent that goes silent is marked stalled, saying it will not be restarted,
    and no restart follows on the next sweeps."""
    agent = view(spec=spec(restart=ALWAYS), last_heartbeat=at(0), removed_from_roster=True)
    assert run(agent, now=200) == [
        MarkStalled(
            A,
            "no heartbeat or output for 200s (timeout 120s); not restarted: it is no longer "
            "in the roster",
        )
    ]
    stalled = dataclasses.replace(agent, state=AgentState.STALLED)
    assert run(stalled, now=300) == []
    assert run(stalled, now=3000) == []


# --- Properties -----------------------------------------------------------------------------------

_NAMES = [AgentName(n) for n in ("a", "b", "coder-1", "z")]
_TIMES = st.none() | st.integers(-300, 4000).map(at)
_POLICIES = st.builds(
    RestartPolicy,
    mode=st.sampled_from(RestartMode),
    max_restarts=st.integers(0, 6),
    backoff_initial=st.sampled_from([0.5, 5.0, 30.0]),
    backoff_max=st.sampled_from([1.0, 60.0, 300.0]),
)
_SPECS = st.builds(
    lambda policy, heartbeat, timeout: spec(
        restart=policy, heartbeat_timeout=heartbeat, timeout=timeout
    ),
    _POLICIES,
    st.none() | st.sampled_from([10.0, 120.0, 900.0]),
    st.none() | st.sampled_from([60.0, 1800.0]),
)
_VIEWS = st.builds(
    AgentView,
    name=st.sampled_from(_NAMES),
    spec=_SPECS,
    state=st.sampled_from(AgentState),
    desired=st.sampled_from(DesiredState),
    process_alive=st.sampled_from([True, False, None]),
    run_started_at=_TIMES,
    last_heartbeat=_TIMES,
    last_heartbeat_kind=st.sampled_from([None, "working", "waiting", "beat"]),
    last_output_at=_TIMES,
    exit_code=st.none() | st.integers(-15, 3),
    ended_by_operator=st.booleans(),
    restarts_in_a_row=st.integers(0, 8),
    last_restart_at=_TIMES,
    next_restart_at=_TIMES,
    removed_from_roster=st.booleans(),
)
_RESTARTS = (ScheduleRestart, Restart)
_EXCLUSIVE = (
    {MarkEnded, KillForTimeout, MarkStalled, MarkIdle, MarkRunning},
    {CancelRestart, GiveUp, ScheduleRestart, Restart},
)


@settings(max_examples=500, deadline=None)
@given(
    snapshot=st.lists(_VIEWS, max_size=4, unique_by=lambda v: v.name),
    now=st.integers(0, 5000).map(at),
)
def test_sweep_invariants(snapshot: list[AgentView], now: datetime) -> None:
    """Per agent: no kind twice, no two exclusive actions, no restart of an agent that must
    stay down; the result does not depend on the snapshot's order."""
    actions = sweep(snapshot, now, DEFAULTS)
    by_name = {v.name: v for v in snapshot}
    assert [a.name for a in actions] == sorted(a.name for a in actions)
    for name, agent in by_name.items():
        mine = [type(a) for a in actions if a.name == name]
        assert len(mine) == len(set(mine)), mine
        for group in _EXCLUSIVE:
            assert len(group & set(mine)) <= 1, mine
        restarts = [a for a in actions if a.name == name and isinstance(a, _RESTARTS)]
        if agent.desired is DesiredState.STOPPED or agent.state is AgentState.STOPPED:
            assert restarts == []
        if agent.spec.restart.mode is RestartMode.NEVER or agent.removed_from_roster:
            assert restarts == []
        if agent.removed_from_roster:
            assert GiveUp not in mine
        for action in restarts:
            assert action.attempt == agent.restarts_in_a_row + 1
            assert action.attempt <= agent.spec.restart.max_restarts
            if isinstance(action, ScheduleRestart):
                assert action.at > now
    assert set(a.name for a in actions) <= set(by_name)
    assert sweep(list(reversed(snapshot)), now, DEFAULTS) == actions
