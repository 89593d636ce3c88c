"""The Accounts and Hosts pages' data: the provider accounts agents run on (each one's
mark and current usage windows) and the machines they run on (this one and each remote
host: its link, load, free disk, agent CLIs and the live agents there).

Read-only, like every view; words from outside (a mark's reason, a link's error, a CLI's
version) are guarded by the app's redactor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from bot.dashboard.pages.asked import LINE_CHARS
from bot.dashboard.pages.shapes import Json, Redacted, iso
from fleet.accounts.book import AccountBook
from fleet.accounts.routing import current, even_line
from fleet.budgets.resets import window_confidence
from fleet.hosts.link.connection import LinkState
from fleet.hosts.service import Hosts
from fleet.ledger.stores.running.agents import AgentsStore
from fleet.timing.clock import Clock


@dataclass(frozen=True, slots=True)
class Places:
    """What the agents run on: the provider accounts (``None``: the config has none) and
    the hosts."""

    accounts: AccountBook | None
    hosts: Hosts


class PlaceViews:
    """The Accounts and Hosts pages, read from the account book, the hosts and the agents'
    records; ``head``: the fields every page starts with."""

    def __init__(
        self,
        accounts: AccountBook | None,
        hosts: Hosts,
        agents: AgentsStore,
        clock: Clock,
        redacted: Redacted,
        head: Callable[[], Json],
    ) -> None:
        self._accounts = accounts
        self._hosts = hosts
        self._agents = agents
        self._clock = clock
        self._redacted = redacted
        self._head = head

    async def accounts(self) -> Json:
        book, now = self._accounts, self._clock.now()
        if book is None:
            return {**self._head(), "accounts": []}
        found = []
        for name in sorted(book.accounts.accounts):
            account = book.accounts.accounts[name]
            mark = book.mark_of(name)
            windows = [w for w in book.windows_of(name) if current(w, now)]
            found.append(
                {
                    "name": name,
                    "kind": account.kind.value,
                    "provider": account.provider,
                    "usable": book.usable(name, now),
                    "problem": None
                    if mark is None
                    else self._redacted.line(mark.reason, LINE_CHARS),
                    "problem_until": iso(mark.until) if mark is not None else None,
                    "agents": book.agents_on(name),
                    "windows": [
                        {
                            "window": w.window,
                            "used": round(w.used, 4),
                            "even_line": None
                            if (line := even_line(w, now)) is None
                            else round(line, 4),
                            "resets_at": iso(w.resets_at),
                            "reset_confidence": window_confidence(w).value,
                            "status": w.status.value,
                            "observed_at": iso(w.observed_at),
                            "source": w.source,
                        }
                        for w in windows
                    ],
                }
            )
        return {**self._head(), "accounts": found}

    async def hosts(self) -> Json:
        names: dict[str, list[str]] = {}
        for record in await self._agents.list_agents():
            if record.state.is_live:
                names.setdefault(record.host, []).append(record.name)
        live = Counter({host: len(agents) for host, agents in names.items()})
        found: list[Json] = [
            {
                "name": "local",
                "state": "up",
                "since": None,
                "error": None,
                "attempts": 0,
                "address": None,
                "agents": live.get("local", 0),
                "agent_names": sorted(names.get("local", [])),
                "max_agents": None,
                "load": None,
                "free_disk_bytes": None,
                "clis": {},
                "probed_at": None,
            }
        ]
        for view in self._hosts.views():
            facts, status = view.facts, view.status
            found.append(
                {
                    "name": view.entry.name,
                    "state": "up" if status.state is LinkState.CONNECTED else status.state.value,
                    "since": iso(status.since),
                    "error": self._redacted.line(status.error or view.probe_error or "", LINE_CHARS)
                    or None,
                    "attempts": status.attempts,
                    "address": str(view.entry.target),
                    "agents": live.get(view.entry.name, 0),
                    "agent_names": sorted(names.get(view.entry.name, [])),
                    "max_agents": view.entry.max_agents,
                    "load": list(facts.load) if facts is not None and facts.load else None,
                    "free_disk_bytes": facts.disk.free_bytes
                    if facts is not None and facts.disk is not None
                    else None,
                    "clis": {
                        t.name: self._redacted.line(t.version) if t.version else t.version
                        for t in facts.tools
                    }
                    if facts is not None
                    else {},
                    "probed_at": iso(view.probed_at),
                }
            )
        found.sort(key=lambda h: (h["state"] == "up", h["name"] != "local", h["name"]))
        return {**self._head(), "hosts": found}
