"""The ledger's agents: the ``agents`` row of each (its settings, what operators want it
doing, its state), the ``agent_events`` history of its states, and ``agent_token_digests``.

Roster marks (migration 10) say which agents the roster defines,
which it dropped and when, and which an operator forgot.

An agent dropped from the roster keeps its row (and keeps running, if it runs); the mark
is what tells the watchdog not to restart it, so it lives here rather than in the memory
of one Fleetwarden process. A forgotten agent keeps its row too: its runs reference it and
stay for reports, and its usage is kept by name anyway. Every query that lists agents
leaves forgotten ones out; a ``spawn`` of the name clears the mark
(:meth:`AgentsStore.upsert_agent`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime

from fleet.errors import UnknownAgent
from fleet.ledger.database.access import Access, Store
from fleet.ledger.database.engine import Database
from fleet.ledger.records.epoch import to_epoch
from fleet.ledger.records.rows import AgentEvent, AgentOrigin, AgentRecord, Parsed
from fleet.ledger.records.specs import spec_extra_json
from fleet.model import AgentSpec, AgentState, DesiredState
from fleet.names import AgentName

_NAMES_PER_QUERY = 500  # below SQLite's bound-parameter limit


class AgentsStore(Store):
    """Agents: their settings, desired and current state with its history, the roster's
    marks and the digests of the tokens each was given."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self._agent_rows = Parsed(AgentRecord.from_row)  # by agent name

    async def upsert_agent(
        self, spec: AgentSpec, desired: DesiredState, *, origin: AgentOrigin | None = None
    ) -> AgentRecord:
        """Save ``spec`` and ``desired``; a new agent starts ``pending``, an existing one keeps
        its state. With ``origin`` (a spawn: where its settings came from), a removal from the
        roster is cleared; so is a ``forget``, with the restart count of the forgotten run."""
        now = to_epoch(self._clock.now())
        fields = (
            spec.runtime,
            spec.backend,
            spec.model,
            spec.prompt,
            None if spec.workdir is None else str(spec.workdir),
            json.dumps(dict(spec.env), sort_keys=True),
            json.dumps(list(spec.secret_env)),
            spec_extra_json(spec),
            desired.value,
            spec.host,
        )
        async with self._transaction(f"save agent {spec.name}") as conn:
            cursor = await conn.execute(
                "UPDATE agents SET runtime = ?, backend = ?, model = ?, prompt = ?, workdir = ?,"
                " env_json = ?, secret_env_json = ?, spec_extra_json = ?, desired_state = ?,"
                " host = ?,"
                " updated_at = ?, origin = coalesce(?, origin),"
                " removed_at = CASE WHEN ? IS NULL THEN removed_at END,"
                # Every right-hand side sees the row as it was: forgotten_at is still set here.
                " restarts_in_a_row = CASE WHEN forgotten_at IS NULL THEN restarts_in_a_row"
                " ELSE 0 END,"
                " last_restart_at = CASE WHEN forgotten_at IS NULL THEN last_restart_at END,"
                " next_restart_at = CASE WHEN forgotten_at IS NULL THEN next_restart_at END,"
                " forgotten_at = NULL"
                " WHERE name = ?",
                (*fields, now, origin, origin, spec.name),
            )
            if cursor.rowcount == 0:
                await conn.execute(
                    "INSERT INTO agents (runtime, backend, model, prompt, workdir, env_json,"
                    " secret_env_json, spec_extra_json, desired_state, host, name, state,"
                    " state_reason, state_changed_at, created_at, updated_at, origin)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        *fields,
                        spec.name,
                        AgentState.PENDING.value,
                        "created",
                        now,
                        now,
                        now,
                        origin or "spawn",
                    ),
                )
                await append_event(conn, spec.name, now, None, AgentState.PENDING, "created")
            record = await agent_in(conn, spec.name)
        if record.host != "local":
            self._hosts[record.name] = record.host
        else:
            self._hosts.pop(record.name, None)
        return record

    async def get_agent(self, name: str) -> AgentRecord | None:
        """The agent called ``name``, if any (a forgotten one is none)."""
        row = await self._one(
            "SELECT * FROM agents WHERE name = ? AND forgotten_at IS NULL", (name,)
        )
        return None if row is None else AgentRecord.from_row(row)

    async def list_agents(self) -> list[AgentRecord]:
        """Every agent, by name, but the forgotten ones."""
        rows = await self._all("SELECT * FROM agents WHERE forgotten_at IS NULL ORDER BY name", ())
        records = [self._agent_rows(str(row["name"]), row) for row in rows]
        self._agent_rows.keep_only([record.name for record in records])
        self._hosts.clear()
        self._hosts.update({r.name: r.host for r in records if r.host != "local"})
        return records

    def host_of(self, agent: str) -> str:
        """The host ``agent`` runs on, as last read or saved (``local`` when unknown)."""
        return self._hosts.get(agent, "local")

    async def delete_agent(self, name: str) -> bool:
        """Forget an agent with its events, runs and heartbeats; whether it existed."""
        async with self._transaction(f"delete agent {name}") as conn:
            cursor = await conn.execute("DELETE FROM agents WHERE name = ?", (name,))
            return cursor.rowcount > 0

    async def set_desired(self, name: str, desired: DesiredState) -> AgentRecord:
        """Record what operators want ``name`` to be doing."""
        now = to_epoch(self._clock.now())
        async with self._transaction(f"set desired state of {name}") as conn:
            await conn.execute(
                "UPDATE agents SET desired_state = ?, updated_at = ? WHERE name = ?",
                (desired.value, now, name),
            )
            return await agent_in(conn, name)

    async def set_restarts(
        self,
        name: str,
        *,
        in_a_row: int,
        last_at: datetime | None,
        next_at: datetime | None,
    ) -> AgentRecord:
        """Record the watchdog's restart bookkeeping for ``name``."""
        async with self._transaction(f"set restarts of {name}") as conn:
            await conn.execute(
                "UPDATE agents SET restarts_in_a_row = ?, last_restart_at = ?,"
                " next_restart_at = ? WHERE name = ?",
                (
                    in_a_row,
                    None if last_at is None else to_epoch(last_at),
                    None if next_at is None else to_epoch(next_at),
                    name,
                ),
            )
            return await agent_in(conn, name)

    async def set_state(
        self, name: str, state: AgentState, reason: str, at: datetime | None = None
    ) -> AgentRecord:
        """Move ``name`` to ``state`` and append the change to its events; a repeat of the
        current state and reason changes nothing."""
        when = self._epoch(at)
        async with self._transaction(f"set state of {name}") as conn:
            current = await agent_in(conn, name)
            if current.state == state and current.state_reason == reason:
                return current
            await conn.execute(
                "UPDATE agents SET state = ?, state_reason = ?, updated_at = ?,"
                " state_changed_at = CASE WHEN state = ? THEN state_changed_at ELSE ? END"
                " WHERE name = ?",
                (state.value, reason, when, state.value, when, name),
            )
            await append_event(conn, name, when, current.state, state, reason)
            return await agent_in(conn, name)

    async def set_states(
        self, changes: Sequence[tuple[str, AgentState, str]], at: datetime | None = None
    ) -> list[str]:
        """:meth:`set_state` for many agents — ``(name, state, reason)`` each, in order — in
        one transaction, their rows read in one query (a sweep after a thousand agents
        started marks them all idle); the names no agent has, left out."""
        when = self._epoch(at)
        names = list(dict.fromkeys(name for name, _, _ in changes))
        async with self._transaction(f"set the state of {len(names)} agent(s)") as conn:
            current: dict[str, tuple[AgentState, str]] = {}
            for start in range(0, len(names), _NAMES_PER_QUERY):
                chunk = names[start : start + _NAMES_PER_QUERY]
                rows = await conn.execute_fetchall(
                    "SELECT name, state, state_reason FROM agents WHERE name IN"
                    f" ({', '.join('?' * len(chunk))})",
                    chunk,
                )
                current.update((str(r[0]), (AgentState(r[1]), str(r[2]))) for r in rows)
            updates: list[tuple[object, ...]] = []
            events: list[tuple[object, ...]] = []
            for name, state, reason in changes:
                was = current.get(name)
                if was is None or was == (state, reason):
                    continue
                current[name] = (state, reason)
                updates.append((state.value, reason, when, state.value, when, name))
                events.append((name, when, was[0].value, state.value, reason))
            if updates:
                await conn.executemany(
                    "UPDATE agents SET state = ?, state_reason = ?, updated_at = ?,"
                    " state_changed_at = CASE WHEN state = ? THEN state_changed_at ELSE ? END"
                    " WHERE name = ?",
                    updates,
                )
                await conn.executemany(
                    "INSERT INTO agent_events (agent, at, from_state, to_state, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    events,
                )
        return [name for name in names if name not in current]

    async def agent_events(self, name: str, limit: int = 50) -> list[AgentEvent]:
        """The latest ``limit`` state changes of ``name``, newest first."""
        rows = await self._all(
            "SELECT * FROM agent_events WHERE agent = ? ORDER BY id DESC LIMIT ?", (name, limit)
        )
        return [AgentEvent.from_row(row) for row in rows]

    # -- roster marks ---------------------------------------------------------------------

    async def sync_roster(self, names: Collection[str]) -> list[AgentName]:
        """Mark the agents called ``names`` as the roster's (an earlier removal undone), and
        the roster's agents not among them as removed now; return the newly removed ones,
        by name. Forgotten agents are left as they are."""
        now = self._epoch(None)
        wanted = set(names)
        removed: list[AgentName] = []
        async with self._transaction("record the roster") as conn:
            rows = await conn.execute_fetchall(
                "SELECT name, origin, removed_at FROM agents WHERE forgotten_at IS NULL"
                " ORDER BY name"
            )
            for name, origin, removed_at in rows:
                if name in wanted and (origin != "roster" or removed_at is not None):
                    await conn.execute(
                        "UPDATE agents SET origin = 'roster', removed_at = NULL, updated_at = ?"
                        " WHERE name = ?",
                        (now, name),
                    )
                elif name not in wanted and origin == "roster" and removed_at is None:
                    await conn.execute(
                        "UPDATE agents SET removed_at = ?, updated_at = ? WHERE name = ?",
                        (now, now, name),
                    )
                    removed.append(AgentName(name))
        return removed

    async def forget_agent(self, name: str) -> bool:
        """Leave ``name`` out of every list of agents from now on (``ps``, the watchdog); its
        runs, usage and audit stay. Whether there was such an agent to forget."""
        now = self._epoch(None)
        async with self._transaction(f"forget agent {name}") as conn:
            cursor = await conn.execute(
                "UPDATE agents SET forgotten_at = ?, desired_state = 'stopped',"
                " next_restart_at = NULL, updated_at = ? WHERE name = ? AND forgotten_at IS NULL",
                (now, now, name),
            )
            return cursor.rowcount > 0

    # -- token digests --------------------------------------------------------------------

    async def save_token_digests(
        self, purpose: str, changes: Sequence[tuple[str, str | None]]
    ) -> None:
        """Record each ``(agent, digest)`` of ``purpose``; a ``None`` digest forgets the
        agent's (its token was revoked). One transaction."""
        if not changes:
            return
        async with self._transaction(f"record {len(changes)} {purpose} token digests") as conn:
            for agent, digest in changes:
                if digest is None:
                    await conn.execute(
                        "DELETE FROM agent_token_digests WHERE agent = ? AND purpose = ?",
                        (agent, purpose),
                    )
                else:
                    await conn.execute(
                        "INSERT INTO agent_token_digests (agent, purpose, digest) VALUES (?, ?, ?)"
                        " ON CONFLICT (agent, purpose) DO UPDATE SET digest = excluded.digest",
                        (agent, purpose, digest),
                    )

    async def token_digests(self, purpose: str) -> dict[str, str]:
        """Every agent's token digest of ``purpose``."""
        rows = await self._all(
            "SELECT agent, digest FROM agent_token_digests WHERE purpose = ?", (purpose,)
        )
        return {str(row["agent"]): str(row["digest"]) for row in rows}


async def agent_in(conn: Database, name: str) -> AgentRecord:
    rows = list(await conn.execute_fetchall("SELECT * FROM agents WHERE name = ?", (name,)))
    if not rows:
        raise UnknownAgent(f"no agent is called {name!r}")
    return AgentRecord.from_row(rows[0])


async def append_event(
    conn: Database,
    name: str,
    at: float,
    from_state: AgentState | None,
    to_state: AgentState,
    reason: str,
) -> None:
    await conn.execute(
        "INSERT INTO agent_events (agent, at, from_state, to_state, reason) VALUES (?, ?, ?, ?, ?)",
        (name, at, None if from_state is None else from_state.value, to_state.value, reason),
    )
