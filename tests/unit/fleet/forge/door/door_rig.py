"""A forge door served on 127.0.0.1 for tests, with fake reads and actions that record
every call: what the door's own tests and the fw-forge command's tests run against."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from fleet.connections.loopback import AgentSecrets
from fleet.forge.door.door import DoorRefusal, DoorScope, ForgeDoor
from fleet.forge.model import (
    ForgeApi,
    ForgeApiError,
    ForgeComment,
    ForgeFile,
    ForgeIssue,
    ForgePull,
)
from fleet.ledger.records.forge import Slug

AGENT = "coder-1"
OTHER = "coder-2"
REPO = Slug("acme", "app")
SCOPE = DoorScope(run_key=11, forge="hub", repo=REPO, issue=7, pull=None, branch="fw/issue-7")
API_URL = "https://forge-api.internal.example/api/v3"
"""The forge API's address, which no answer to an agent may name."""
WHEN = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def issue(number: int, **changes: Any) -> ForgeIssue:
    made = ForgeIssue(
        number=number,
        title=f"Issue {number}",
        body=f"The body of issue {number}.",
        author="alice",
        labels=("bug", "fleetwarden"),
        assignees=(),
        state="open",
        url=f"https://forge.example/acme/app/issues/{number}",
        updated_at=WHEN,
    )
    return replace(made, **changes)


def pull(number: int, **changes: Any) -> ForgePull:
    made = ForgePull(
        number=number,
        title=f"Pull {number}",
        body=f"The description of pull {number}.",
        author="fleetwarden-bot",
        head="fw/issue-7",
        base="main",
        head_sha="0123456789abcdef0123456789abcdef01234567",
        state="open",
        merged=False,
        draft=False,
        url=f"https://forge.example/acme/app/pull/{number}",
        updated_at=WHEN,
    )
    return replace(made, **changes)


@dataclass
class FakeReads:
    """The reads of a forge API: issues, pulls, comments and files seeded by the test;
    ``failure`` raised by every call when set."""

    kind: str = "github"
    issues: dict[int, ForgeIssue] = field(default_factory=dict)
    pulls: dict[int, ForgePull] = field(default_factory=dict)
    comment_lists: dict[int, list[ForgeComment]] = field(default_factory=dict)
    files: dict[tuple[str, str | None], ForgeFile] = field(default_factory=dict)
    failure: ForgeApiError | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def _answer(self, call: tuple[Any, ...]) -> None:
        self.calls.append(call)
        if self.failure is not None:
            raise self.failure

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        self._answer(("issue", repo, number))
        return self.issues.get(number) or issue(number)

    async def pull(self, repo: Slug, number: int) -> ForgePull:
        self._answer(("pull", repo, number))
        return self.pulls.get(number) or pull(number)

    async def comments(self, repo: Slug, number: int, *, pull: bool = False) -> list[ForgeComment]:
        self._answer(("comments", repo, number, *((True,) if pull else ())))
        return self.comment_lists.get(number, [])

    async def file(self, repo: Slug, path: str, ref: str | None = None) -> ForgeFile:
        self._answer(("file", repo, path, ref))
        found = self.files.get((path, ref))
        if found is None:
            raise ForgeApiError(f"GitHub refused GET {API_URL}/repos/{repo}/contents: 404", 404)
        return found


@dataclass(frozen=True)
class Audit:
    scope: DoorScope | None
    agent: str
    op: str
    allowed: bool
    detail: str


@dataclass
class FakeActions:
    """Records what the door asks of the run; ``refuse`` makes a write raise
    :class:`DoorRefusal` with that message."""

    reads: FakeReads = field(default_factory=FakeReads)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    audits: list[Audit] = field(default_factory=list)
    refuse: str | None = None
    scopes: dict[str, DoorScope] = field(default_factory=dict)

    async def scope_of(self, agent: str) -> DoorScope | None:
        return self.scopes.get(agent)

    def api(self, forge: str) -> ForgeApi:
        self.calls.append(("api", forge))
        return cast(ForgeApi, self.reads)

    def _write(self, call: tuple[Any, ...]) -> None:
        self.calls.append(call)
        if self.refuse is not None:
            raise DoorRefusal(self.refuse)
        if self.reads.failure is not None:
            raise self.reads.failure

    async def comment(self, scope: DoorScope, number: int, body: str, *, pull: bool = False) -> str:
        self._write(("comment", scope, number, body, *(("pull",) if pull else ())))
        return f"https://forge.example/acme/app/issues/{number}#issuecomment-1"

    async def describe(self, scope: DoorScope, body: str) -> str:
        self._write(("describe", scope, body))
        return f"described https://forge.example/acme/app/pull/{scope.pull}"

    async def open_pull(self, scope: DoorScope, title: str, body: str, draft: bool) -> str:
        self._write(("open_pull", scope, title, body, draft))
        return "https://forge.example/acme/app/pull/18"

    async def done(self, scope: DoorScope, status: str, summary: str) -> str:
        self._write(("done", scope, status, summary))
        return f"done {status}: Fleetwarden takes it from here"

    async def audit(
        self, scope: DoorScope | None, agent: str, op: str, allowed: bool, detail: str
    ) -> None:
        self.audits.append(Audit(scope, agent, op, allowed, detail))

    def writes(self) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] != "api"]


@dataclass
class DoorRig:
    """A door listening on ``port``; ``scopes`` is what its scope lookup answers."""

    port: int
    tokens: dict[str, str]
    actions: FakeActions
    scopes: dict[str, DoorScope]
    bind: Callable[[], None] = lambda: None  # an unbound door's binding to the actions

    def url(self, agent: str = AGENT) -> str:
        return f"http://127.0.0.1:{self.port}/forge/{agent}"

    def heartbeat_url(self, agent: str = AGENT) -> str:
        return f"http://127.0.0.1:{self.port}/heartbeat/{agent}"

    @property
    def reads(self) -> FakeReads:
        return self.actions.reads


@asynccontextmanager
async def serve_door(
    state_dir: Path, *, port: int = 0, body_seconds: float = 5.0, bound: bool = True
) -> AsyncIterator[DoorRig]:
    """The door for :data:`AGENT` (scope :data:`SCOPE`) and :data:`OTHER` (no forge run),
    served on 127.0.0.1 (on ``port``; 0: any free one) until the block ends; not
    ``bound``: served before forge work is up, bound by the rig's ``bind``."""
    secrets = AgentSecrets(state_dir / "heartbeat.json", "heartbeat endpoint")
    secrets.load()  # the tokens of a door served before from ``state_dir``, as on a restart
    tokens = {name: secrets.issue(name) for name in (AGENT, OTHER)}
    actions = FakeActions(scopes={AGENT: SCOPE})
    up = [bound]  # whether forge work is up: the door reaches the actions from then on
    app = web.Application()
    door = ForgeDoor(lambda: actions if up[0] else None, body_seconds=body_seconds)
    door.mount(app, secrets)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound_port = cast(tuple[str, int], runner.addresses[0])[1]
        yield DoorRig(bound_port, tokens, actions, actions.scopes, lambda: up.__setitem__(0, True))
    finally:
        await runner.cleanup()
