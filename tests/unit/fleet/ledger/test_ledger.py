"""The ledger: opening, migrating and every repository method against a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from fleet.errors import LedgerError, UnknownAgent
from fleet.ledger import LATEST_VERSION, MIGRATIONS, Ledger, Migration, migrate
from fleet.ledger.database.engine import Database, SqliteDatabase
from fleet.ledger.database.location import LedgerLocation
from fleet.model import (
    AgentSpec,
    AgentState,
    DesiredState,
    ExitInfo,
    RestartMode,
    RestartPolicy,
    RunHandle,
)
from fleet.names import AgentName
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0  # where the shared `clock` fixture stands
from tests.unit.conftest import raw_database


def spec(name: str = "coder-1", **changes: object) -> AgentSpec:
    fields: dict[str, object] = {
        "name": AgentName(name),
        "runtime": "claude",
        "backend": "tmux",
        "model": "opus",
        "prompt": "fix the tests",
        "workdir": Path("/srv/repo"),
        "env": {"LOG": "debug"},
        "secret_env": ("ANTHROPIC_API_KEY",),
    }
    fields.update(changes)
    return AgentSpec(**fields)  # type: ignore[arg-type]


def handle(pid: int = 4242) -> RunHandle:
    return RunHandle(
        backend="tmux",
        pid=pid,
        pgid=pid,
        run_dir=Path("/run/fw/coder-1"),
        log_path=Path("/run/fw/coder-1/log"),
        start_ticks=123456,
        session="fw-coder-1",
    )


async def connect(path: Path) -> SqliteDatabase:
    return await SqliteDatabase.connect(path)


async def tables(path: Path) -> set[str]:
    async with aiosqlite.connect(path) as conn:
        rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(row[0]) for row in rows}


# -- opening and migrating ----------------------------------------------------------------


async def test_fresh_ledger_is_at_latest_version_with_safe_pragmas(ledger: Ledger) -> None:
    """A new ledger is migrated to the latest version; SQLite's connection runs WAL with FKs
    on, PostgreSQL's at read committed (each write transaction takes the ledger's lock)."""
    assert await ledger.schema_version() == LATEST_VERSION == MIGRATIONS[-1].version
    if ledger.engine == "sqlite":
        assert await ledger.pragmas() == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 5000,
            "synchronous": 1,
        }
    else:
        settings = await ledger.pragmas()
        assert settings["transaction_isolation"] == "read committed"
        assert str(settings["server_version"]).startswith("15")


async def test_open_creates_parent_directories(tmp_path: Path, clock: ManualClock) -> None:
    """Opening a ledger in a directory that does not exist yet creates it."""
    path = tmp_path / "state" / "deep" / "ledger.db"
    opened = await Ledger.open(path, clock)
    await opened.close()
    assert path.is_file()


async def test_reopen_is_idempotent(ledger_location: LedgerLocation, clock: ManualClock) -> None:
    """Re-opening an up-to-date ledger applies nothing and keeps the data."""
    first = await Ledger.connect(ledger_location, clock)
    await first.agents.upsert_agent(spec(), DesiredState.RUNNING)
    await first.close()
    second = await Ledger.connect(ledger_location, clock)
    try:
        assert await second.schema_version() == LATEST_VERSION
        assert [a.name for a in await second.agents.list_agents()] == ["coder-1"]
        assert len(await second.agents.agent_events("coder-1")) == 1
    finally:
        await second.close()


async def test_upgrade_from_version_1_keeps_data(
    ledger_location: LedgerLocation, clock: ManualClock
) -> None:
    """A version-1 ledger with data is upgraded to the latest version without losing rows."""
    conn = await raw_database(ledger_location)
    try:
        assert await migrate(conn, MIGRATIONS[:1]) == 1
        await conn.execute(
            "INSERT INTO processed_events (connector, event_id, at) VALUES ('matrix', '$e1', 1.0)"
        )
    finally:
        await conn.close()
    conn = await raw_database(ledger_location)
    try:
        assert "connector_state" not in await conn.table_names()
    finally:
        await conn.close()
    upgraded = await Ledger.connect(ledger_location, clock)
    try:
        assert await upgraded.schema_version() == LATEST_VERSION
        assert not await upgraded.chat.claim_event("matrix", "$e1")
        await upgraded.chat.set_connector_state("matrix", "since", "s1")
        assert await upgraded.chat.get_connector_state("matrix", "since") == "s1"
    finally:
        await upgraded.close()


async def test_newer_schema_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    """A ledger written by a newer Fleetwarden is refused with an upgrade hint naming the file."""
    path = tmp_path / "ledger.db"
    future = (
        *MIGRATIONS,
        Migration(LATEST_VERSION + 1, "from the future", ("CREATE TABLE f (x)",)),
    )
    conn = await connect(path)
    try:
        await migrate(conn, future)
    finally:
        await conn.close()
    with pytest.raises(LedgerError) as caught:
        await Ledger.open(path, clock)
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version {LATEST_VERSION + 1}" in message
    assert "upgrade Fleetwarden" in message


async def test_garbage_file_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    """A file that is not SQLite raises LedgerError naming the file."""
    path = tmp_path / "ledger.db"
    path.write_bytes(b"this is not a database, just some text " * 100)
    with pytest.raises(LedgerError, match="not a database") as caught:
        await Ledger.open(path, clock)
    assert str(path) in str(caught.value)


async def test_foreign_database_is_refused(tmp_path: Path, clock: ManualClock) -> None:
    """Some other application's SQLite file is not adopted as a ledger."""
    path = tmp_path / "other.db"
    async with aiosqlite.connect(path) as conn:
        await conn.execute("CREATE TABLE photos (id INTEGER)")
        await conn.commit()
    with pytest.raises(LedgerError, match="not a Fleetwarden ledger"):
        await Ledger.open(path, clock)
    assert await tables(path) == {"photos"}


async def test_failed_migration_rolls_back_entirely(tmp_path: Path) -> None:
    """A migration with a bad statement leaves neither its tables nor a version bump."""
    path = tmp_path / "ledger.db"
    bad = (*MIGRATIONS, Migration(LATEST_VERSION + 1, "broken", ("CREATE TABLE half (x)", "NOPE")))
    conn = await connect(path)
    try:
        with pytest.raises(LedgerError, match=f"migration {LATEST_VERSION + 1} \\(broken\\)"):
            await migrate(conn, bad)
        assert not conn.in_transaction
        assert await migrate(conn) == LATEST_VERSION
    finally:
        await conn.close()
    assert "half" not in await tables(path)


async def test_migrations_must_be_numbered_in_order(tmp_path: Path) -> None:
    """A migrations tuple with a gap is a programming error caught before touching the file."""
    conn = await connect(tmp_path / "ledger.db")
    try:
        with pytest.raises(ValueError, match="1, 2, 3"):
            await migrate(conn, (MIGRATIONS[0], Migration(3, "gap", ())))
    finally:
        await conn.close()


# -- agents ---------------------------------------------------------------------------------


async def test_new_agent_starts_pending_and_round_trips_its_spec(ledger: Ledger) -> None:
    """Upserting a new agent stores its spec, starts it pending and records its creation."""
    record = await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    assert record.spec == spec()
    assert record.state is AgentState.PENDING
    assert record.desired is DesiredState.RUNNING
    assert record.created_at == record.state_changed_at == T0
    assert await ledger.agents.get_agent("coder-1") == record
    [event] = await ledger.agents.agent_events("coder-1")
    assert (event.from_state, event.to_state, event.at) == (None, AgentState.PENDING, T0)


async def test_upsert_updates_spec_but_not_state(ledger: Ledger, clock: ManualClock) -> None:
    """Upserting a known agent changes its spec and desired state, never its observed state."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    await ledger.agents.set_state("coder-1", AgentState.RUNNING, "launched")
    clock.advance(60)
    changed = spec(model=None, workdir=None, env={}, secret_env=())
    record = await ledger.agents.upsert_agent(changed, DesiredState.STOPPED)
    assert record.spec == changed
    assert record.desired is DesiredState.STOPPED
    assert record.state is AgentState.RUNNING
    assert (record.created_at, record.updated_at) == (T0, T0 + timedelta(seconds=60))


async def test_list_agents_is_sorted_by_name(ledger: Ledger) -> None:
    """Agents are listed in name order whatever order they were added."""
    for name in ("zeta", "alpha", "mid-1"):
        await ledger.agents.upsert_agent(spec(name), DesiredState.STOPPED)
    assert [a.name for a in await ledger.agents.list_agents()] == ["alpha", "mid-1", "zeta"]
    assert await ledger.agents.get_agent("nobody") is None


async def test_set_desired(ledger: Ledger) -> None:
    """Setting the desired state persists it; an unknown agent raises UnknownAgent."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    assert (
        await ledger.agents.set_desired("coder-1", DesiredState.STOPPED)
    ).desired is DesiredState.STOPPED
    with pytest.raises(UnknownAgent):
        await ledger.agents.set_desired("nobody", DesiredState.STOPPED)


async def test_state_changes_append_events(ledger: Ledger, clock: ManualClock) -> None:
    """Each state change appends an event with from/to; repeating state and reason adds none."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    clock.advance(1)
    await ledger.agents.set_state("coder-1", AgentState.STARTING, "launching")
    clock.advance(1)
    await ledger.agents.set_state("coder-1", AgentState.RUNNING, "output seen")
    await ledger.agents.set_state("coder-1", AgentState.RUNNING, "output seen")
    clock.advance(1)
    record = await ledger.agents.set_state("coder-1", AgentState.RUNNING, "tool call")
    assert record.state_reason == "tool call"
    assert record.state_changed_at == T0 + timedelta(seconds=2)
    events = await ledger.agents.agent_events("coder-1")
    assert [(e.from_state, e.to_state, e.reason) for e in events] == [
        (AgentState.RUNNING, AgentState.RUNNING, "tool call"),
        (AgentState.STARTING, AgentState.RUNNING, "output seen"),
        (AgentState.PENDING, AgentState.STARTING, "launching"),
        (None, AgentState.PENDING, "created"),
    ]
    assert len(await ledger.agents.agent_events("coder-1", limit=2)) == 2


async def test_set_state_uses_given_time(ledger: Ledger) -> None:
    """An explicit ``at`` is stored instead of the clock's time; naive times are refused."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    at = T0 - timedelta(hours=1)
    record = await ledger.agents.set_state("coder-1", AgentState.FAILED, "exit 1", at=at)
    assert record.state_changed_at == at
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.agents.set_state("coder-1", AgentState.IDLE, "quiet", at=datetime(2025, 1, 1))


async def test_set_state_of_unknown_agent(ledger: Ledger) -> None:
    """Setting the state of an agent the ledger does not know raises UnknownAgent."""
    with pytest.raises(UnknownAgent, match="nobody"):
        await ledger.agents.set_state("nobody", AgentState.RUNNING, "x")


async def test_delete_agent_cascades(ledger: Ledger) -> None:
    """Deleting an agent removes its events, runs and heartbeats with it."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    await ledger.runs.start_run("coder-1", handle())
    await ledger.heartbeats.record_heartbeat("coder-1", "log")
    assert await ledger.agents.delete_agent("coder-1")
    assert not await ledger.agents.delete_agent("coder-1")
    assert await ledger.agents.agent_events("coder-1") == []
    assert await ledger.runs.open_runs() == []
    assert await ledger.heartbeats.last_heartbeat("coder-1") is None


# -- runs -----------------------------------------------------------------------------------


async def test_run_lifecycle(ledger: Ledger, clock: ManualClock) -> None:
    """A started run is open with its handle; ending it records the exit and closes it."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    run = await ledger.runs.start_run("coder-1", handle())
    assert run.handle == handle()
    assert (run.started_at, run.ended_at, run.exit) == (T0, None, None)
    assert await ledger.runs.open_runs() == [run]
    assert await ledger.runs.last_run("coder-1") == run
    clock.advance(30)
    ended = await ledger.runs.end_run(run.id, ExitInfo(exit_code=-9, reason="killed"))
    assert ended.ended_at == T0 + timedelta(seconds=30)
    assert ended.exit == ExitInfo(exit_code=-9, reason="killed")
    assert await ledger.runs.open_runs() == []
    second = await ledger.runs.start_run("coder-1", handle(pid=5000))
    assert await ledger.runs.last_run("coder-1") == second
    assert await ledger.runs.last_run("nobody") is None


async def test_end_run_is_idempotent(ledger: Ledger, clock: ManualClock) -> None:
    """Ending an already ended run keeps the first result."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    run = await ledger.runs.start_run("coder-1", handle())
    first = await ledger.runs.end_run(run.id, ExitInfo(exit_code=0, reason="done"))
    clock.advance(5)
    again = await ledger.runs.end_run(run.id, ExitInfo(exit_code=None, reason="reaped"))
    assert again == first


async def test_runs_need_a_known_agent(ledger: Ledger) -> None:
    """Starting a run for an unknown agent raises UnknownAgent; ending an unknown run fails."""
    with pytest.raises(UnknownAgent):
        await ledger.runs.start_run("nobody", handle())
    with pytest.raises(LedgerError, match="no run"):
        await ledger.runs.end_run(999, ExitInfo(exit_code=0, reason="done"))


# -- audit, heartbeats, threads, events, connector state ---------------------------------------


async def test_audit_entries_newest_first(ledger: Ledger, clock: ManualClock) -> None:
    """Audit entries come back newest first with every field kept."""
    first = await ledger.audit.record_audit(
        "matrix", "@ann:hs", "!ops:hs", None, "!start coder-1", "start", "ok"
    )
    clock.advance(1)
    second = await ledger.audit.record_audit(
        "discord", "bob", "123", "456", "!rm x", "rm", "denied", detail="not an admin"
    )
    entries = await ledger.audit.audit_entries()
    assert [e.id for e in entries] == [second, first]
    assert entries[0].thread == "456"
    assert (entries[0].outcome, entries[0].detail) == ("denied", "not an admin")
    assert (entries[1].at, entries[1].text, entries[1].command) == (T0, "!start coder-1", "start")
    assert len(await ledger.audit.audit_entries(limit=1)) == 1


async def test_heartbeats_keep_latest(ledger: Ledger) -> None:
    """The last heartbeat is the newest over all sources; stale news never moves it back."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    assert await ledger.heartbeats.last_heartbeat("coder-1") is None
    await ledger.heartbeats.record_heartbeat("coder-1", "log", at=T0 + timedelta(seconds=10))
    await ledger.heartbeats.record_heartbeat("coder-1", "log", at=T0 + timedelta(seconds=5))
    assert await ledger.heartbeats.last_heartbeat("coder-1") == T0 + timedelta(seconds=10)
    await ledger.heartbeats.record_heartbeat("coder-1", "hook", at=T0 + timedelta(seconds=20))
    assert await ledger.heartbeats.last_heartbeat("coder-1") == T0 + timedelta(seconds=20)


async def test_heartbeats_arriving_together_share_a_transaction(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fleet's beats are group-committed: those that arrive while one is written go in
    the next transaction together; each caller returns once its own beat is in, and an
    unknown agent's beat alone is refused."""
    names = [f"agent-{i:03d}" for i in range(200)]
    for name in names:
        await ledger.agents.upsert_agent(spec(name), DesiredState.RUNNING)
    begun: list[str] = []
    transaction = ledger.heartbeats._transaction

    def counted(what: str) -> contextlib.AbstractAsyncContextManager[Database]:
        begun.append(what)
        return transaction(what)

    monkeypatch.setattr(ledger.heartbeats, "_transaction", counted)
    results = await asyncio.gather(
        *(
            ledger.heartbeats.record_heartbeat(name, "beat", at=T0 + timedelta(seconds=i))
            for i, name in enumerate(names)
        ),
        ledger.heartbeats.record_heartbeat("nobody", "beat"),
        return_exceptions=True,
    )
    assert results[:-1] == [None] * len(names)
    assert isinstance(results[-1], UnknownAgent)
    assert len(begun) <= 3, begun  # the first beat alone, then the rest together
    beats = await ledger.heartbeats.last_heartbeats()
    assert all(beats[name][0] == T0 + timedelta(seconds=i) for i, name in enumerate(names))
    assert "nobody" not in beats


async def test_a_heartbeat_write_that_fails_fails_each_of_its_callers(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)

    def broken(what: str) -> contextlib.AbstractAsyncContextManager[Database]:
        raise LedgerError(f"cannot {what}: disk full")

    monkeypatch.setattr(ledger.heartbeats, "_transaction", broken)
    results = await asyncio.gather(
        *(ledger.heartbeats.record_heartbeat("coder-1", "beat") for _ in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, LedgerError) for r in results)
    monkeypatch.undo()
    await ledger.heartbeats.record_heartbeat("coder-1", "beat")  # the next write goes through
    assert await ledger.heartbeats.last_heartbeat("coder-1") == T0


async def test_unchanged_rows_are_not_parsed_again(ledger: Ledger) -> None:
    """``ps`` reads every agent each time: an unchanged row gives the record already
    built; a changed one is read afresh, and a forgotten agent is gone."""
    await ledger.agents.upsert_agent(spec("a1"), DesiredState.RUNNING)
    await ledger.agents.upsert_agent(spec("a2"), DesiredState.RUNNING)
    first = {r.name: r for r in await ledger.agents.list_agents()}
    again = {r.name: r for r in await ledger.agents.list_agents()}
    assert again["a1"] is first["a1"] and again["a2"] is first["a2"]
    await ledger.agents.set_desired("a2", DesiredState.STOPPED)
    changed = {r.name: r for r in await ledger.agents.list_agents()}
    assert changed["a1"] is first["a1"]
    assert changed["a2"] is not first["a2"] and changed["a2"].desired is DesiredState.STOPPED
    assert await ledger.agents.delete_agent("a1")
    assert [r.name for r in await ledger.agents.list_agents()] == ["a2"]


async def test_threads_resolve_both_ways(ledger: Ledger) -> None:
    """A bound thread is found from its topic and the topic from the thread; rebinding wins."""
    await ledger.chat.bind_thread("matrix", "!ops", "agent:coder-1", "$t1")
    assert await ledger.chat.thread_for_topic("matrix", "!ops", "agent:coder-1") == "$t1"
    assert await ledger.chat.topic_for_thread("matrix", "!ops", "$t1") == "agent:coder-1"
    assert await ledger.chat.thread_for_topic("matrix", "!other", "agent:coder-1") is None
    await ledger.chat.bind_thread("matrix", "!ops", "agent:coder-1", "$t2")
    assert await ledger.chat.thread_for_topic("matrix", "!ops", "agent:coder-1") == "$t2"
    assert await ledger.chat.topic_for_thread("matrix", "!ops", "$t1") is None
    await ledger.chat.bind_thread("matrix", "!ops", "agent:coder-2", "$t2")
    assert await ledger.chat.thread_for_topic("matrix", "!ops", "agent:coder-1") is None
    assert await ledger.chat.topic_for_thread("matrix", "!ops", "$t2") == "agent:coder-2"


async def test_claim_event_once(ledger: Ledger) -> None:
    """An event is claimed the first time only, per connector."""
    assert await ledger.chat.claim_event("matrix", "$e1")
    assert not await ledger.chat.claim_event("matrix", "$e1")
    assert await ledger.chat.claim_event("discord", "$e1")


async def test_prune_events(ledger: Ledger, clock: ManualClock) -> None:
    """Pruning forgets events older than the cutoff, which may then be claimed again."""
    await ledger.chat.claim_event("matrix", "$old")
    clock.advance(3600)
    await ledger.chat.claim_event("matrix", "$new")
    assert await ledger.chat.prune_events(T0 + timedelta(seconds=1)) == 1
    assert not await ledger.chat.claim_event("matrix", "$new")
    assert await ledger.chat.claim_event("matrix", "$old")


async def test_connector_state(ledger: Ledger) -> None:
    """Connector values are kept per connector and replaced on set."""
    assert await ledger.chat.get_connector_state("matrix", "since") is None
    await ledger.chat.set_connector_state("matrix", "since", "s1")
    await ledger.chat.set_connector_state("matrix", "since", "s2")
    await ledger.chat.set_connector_state("discord", "since", "d1")
    assert await ledger.chat.get_connector_state("matrix", "since") == "s2"
    assert await ledger.chat.get_connector_state("discord", "since") == "d1"


async def test_concurrent_writers_do_not_interleave(ledger: Ledger) -> None:
    """Many coroutines writing at once each get their own transaction on the shared connection."""
    await ledger.agents.upsert_agent(spec(), DesiredState.RUNNING)
    states = [AgentState.RUNNING, AgentState.IDLE] * 10
    await asyncio.gather(
        *(ledger.agents.set_state("coder-1", s, f"step {i}") for i, s in enumerate(states)),
        *(ledger.chat.claim_event("matrix", f"$e{i}") for i in range(20)),
    )
    assert len(await ledger.agents.agent_events("coder-1", limit=100)) == 21
    assert not any([await ledger.chat.claim_event("matrix", f"$e{i}") for i in range(20)])


async def test_roster_fields_round_trip(ledger: Ledger) -> None:
    """Role, autostart, restart policy, timeouts and argv come back as they were saved."""
    spec = AgentSpec(
        name=AgentName("coder-1"),
        runtime="command",
        role="reviewer",
        autostart=True,
        restart=RestartPolicy(RestartMode.ON_FAILURE, 3, 2.0, 60.0),
        heartbeat_timeout=45.0,
        timeout=3600.0,
        argv=("/usr/bin/env", "bash", "-c", "echo $1"),
    )
    await ledger.agents.upsert_agent(spec, DesiredState.RUNNING)
    record = await ledger.agents.get_agent("coder-1")
    assert record is not None and record.spec == spec


async def test_restart_bookkeeping_is_stored(ledger: Ledger, clock: ManualClock) -> None:
    """set_restarts keeps the watchdog's counter and times."""
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("a"), runtime="stub"), DesiredState.RUNNING
    )
    later = clock.now() + timedelta(seconds=30)
    record = await ledger.agents.set_restarts("a", in_a_row=2, last_at=clock.now(), next_at=later)
    assert (record.restarts_in_a_row, record.last_restart_at, record.next_restart_at) == (
        2,
        clock.now(),
        later,
    )


async def test_last_heartbeats_gives_each_agents_newest(ledger: Ledger, clock: ManualClock) -> None:
    """last_heartbeats maps every agent to its newest beat and that beat's source."""
    for name in ("a", "b"):
        await ledger.agents.upsert_agent(
            AgentSpec(name=AgentName(name), runtime="stub"), DesiredState.RUNNING
        )
    await ledger.heartbeats.record_heartbeat("a", "working", at=clock.now())
    await ledger.heartbeats.record_heartbeat("a", "waiting", at=clock.now() + timedelta(seconds=5))
    beats = await ledger.heartbeats.last_heartbeats()
    assert beats == {"a": (clock.now() + timedelta(seconds=5), "waiting")}


async def test_a_write_cancelled_mid_transaction_leaves_the_ledger_usable(ledger: Ledger) -> None:
    """Cancelling writers at any point never leaves the connection inside a transaction."""
    await ledger.agents.upsert_agent(
        AgentSpec(name=AgentName("a"), runtime="stub"), DesiredState.RUNNING
    )
    for delay_steps in range(12):
        task = asyncio.ensure_future(
            ledger.chat.set_connector_state("matrix", "k", str(delay_steps))
        )
        for _ in range(delay_steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ledger.chat.set_connector_state("matrix", "after", str(delay_steps))
    assert await ledger.chat.get_connector_state("matrix", "after") == "11"
