"""The forge door: where an agent on a forge run reads its repository, comments, opens and
describes its pull request and says it is done, over the heartbeat endpoint.

The agent never holds a forge credential. Its ``fw-forge`` command
(:mod:`fleet.forge.door.fw_forge`) posts one JSON call with the agent's heartbeat token
(``X-Fleetwarden-Token``)::

    POST /forge/<agent>
      {"op": "read", "what": "issue"|"pull"|"comments", "number": N}
      {"op": "read", "what": "file", "path": "src/a.py", "ref": "main"}   (ref optional)
      {"op": "comment", "number": N|null, "body": TEXT}     (null: its own issue)
      {"op": "describe", "body": TEXT}                      (its pull request's description)
      {"op": "pr", "title": T, "body": B, "draft": bool}    (open its pull request)
      {"op": "done", "status": "ok"|"failed", "summary": TEXT}

    200  {"ok": true, "text": …}   a read's text, rendered plainly; what a write did
    400  {"error": …}  a body that is not one of the calls above, saying what is wrong
    403  {"error": "refused: …"}  outside the run's scope; no body: a wrong token
    408  a body not all there within 5 seconds;  413  a body over :data:`MAX_BODY`
    409  {"error": …}  the agent has no forge run, or its run refuses the call now
    502  {"error": "the forge answered 404: Not Found"}  the forge's API failed

The scope (:class:`DoorScope`) is the run's: reads reach anything in its repository, a
comment only its issue or its pull request, ``describe`` only an open pull request and
``pr`` only when there is none. Every call with a right token, allowed or refused, is
audited with one plain line ("read issue #3 comments", "refused: comment on #3, not
assigned"). What the forge's API is, and its credential, are never said to the agent.
"""

from __future__ import annotations

import asyncio
import http
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

from aiohttp import web

from fleet.capped_body import OverCap, read_capped
from fleet.connections.loopback import AgentSecrets
from fleet.connections.token import TOKEN_HEADER
from fleet.errors import FleetwardenError
from fleet.forge.door.door_calls import (
    MAX_TITLE,
    BadCall,
    Call,
    Comment,
    Describe,
    OpenPull,
    Read,
    parse_call,
)
from fleet.forge.model import (
    ForgeApi,
    ForgeApiError,
    ForgeComment,
    ForgeFile,
    ForgeIssue,
    ForgePull,
)
from fleet.forge.posts.footer import when
from fleet.ledger.records.forge import Slug

log = logging.getLogger(__name__)

MAX_BODY: Final = 64 * 1024
BODY_SECONDS: Final = 5.0
MAX_ANSWER: Final = 256 * 1024
AUDIT_CHARS: Final = 200
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CUT_NOTE: Final = "\n… (cut here: the answer is over 256 KiB)"


@dataclass(frozen=True, slots=True)
class DoorScope:
    """What an agent's forge run may touch: its repository ``repo`` on forge ``forge``,
    its ``issue``, its pull request (``pull``, once open) and its ``branch``."""

    run_key: int
    forge: str
    repo: Slug
    issue: int
    pull: int | None
    branch: str


ScopeOf = Callable[[str], Awaitable[DoorScope | None]]
"""The scope of an agent's forge run now, by agent name; ``None``: it has none."""


class DoorActions(Protocol):
    """What the door does for an allowed call: reads through :meth:`api`, writes through
    the run (which posts, records and answers with a line for the agent, a URL say)."""

    def api(self, forge: str) -> ForgeApi: ...

    async def comment(
        self, scope: DoorScope, number: int, body: str, *, pull: bool = False
    ) -> str: ...

    async def describe(self, scope: DoorScope, body: str) -> str: ...

    async def open_pull(self, scope: DoorScope, title: str, body: str, draft: bool) -> str: ...

    async def done(self, scope: DoorScope, status: str, summary: str) -> str: ...

    async def audit(
        self, scope: DoorScope | None, agent: str, op: str, allowed: bool, detail: str
    ) -> None: ...


class DoorDesk(DoorActions, Protocol):
    """What the door reaches once forge work is up: each agent's scope, and the actions."""

    async def scope_of(self, agent: str) -> DoorScope | None: ...


class DoorRefusal(FleetwardenError):
    """The run refuses a call the scope allows (say, a pull request with no pushed
    branch); the message is said to the agent."""


def refusal(scope: DoorScope, call: Call) -> str | None:
    """Why ``scope`` does not allow ``call`` (a line for the agent), or ``None``."""
    if isinstance(call, Comment):
        if call.pull:
            if scope.pull is None:
                return "refused: no pull request yet: `fw-forge pr` opens it"
            if call.number not in (None, scope.pull):
                return f"refused: comment on pull request {call.number}, not yours"
            return None
        number = scope.issue if call.number is None else call.number
        if number not in (scope.issue, scope.pull):
            return f"refused: comment on #{number}, not assigned"
    elif isinstance(call, Describe) and scope.pull is None:
        return "refused: no pull request yet: `fw-forge pr` opens it"
    elif isinstance(call, OpenPull) and scope.pull is not None:
        return (
            f"refused: pull request #{scope.pull} is already open: "
            "`fw-forge describe` changes its description"
        )
    return None


def audit_line(scope: DoorScope, call: Call) -> str:
    """What an allowed call does, in one plain line for the audit."""
    if isinstance(call, Read):
        if call.what == "file":
            at = f"@{call.ref}" if call.ref else ""
            return one_line(f"read file {call.path}{at}")
        if call.what == "pull":
            return f"read PR #{call.number} description"
        if call.what == "comments":
            return f"read {'PR' if call.pull else 'issue'} #{call.number} comments"
        return f"read issue #{call.number}"
    if isinstance(call, Comment):
        if call.pull:
            return f"commented on PR #{scope.pull}"
        return f"commented on #{scope.issue if call.number is None else call.number}"
    if isinstance(call, Describe):
        return f"described PR #{scope.pull}"
    if isinstance(call, OpenPull):
        return "opened the draft pull request" if call.draft else "opened the pull request"
    return f"done {call.status}"


def one_line(text: str, limit: int = AUDIT_CHARS) -> str:
    """``text`` on one line of at most ``limit`` characters (hostile text, for the audit)."""
    flat = " ".join(_CONTROL.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def forge_failure(exc: ForgeApiError) -> str:
    """What the agent is told of a failed forge call: the status only, never the API's
    address or anything the client said of it."""
    try:
        phrase = http.HTTPStatus(exc.status).phrase
    except ValueError:
        phrase = ""
    if exc.status <= 0:
        return "the forge did not answer"
    return (
        f"the forge answered {exc.status}: {phrase}"
        if phrase
        else f"the forge answered {exc.status}"
    )


class ForgeDoor:
    """The ``/forge`` route of the heartbeat endpoint (:meth:`mount`). ``clean`` is applied
    to what people wrote on the forge before an agent reads it (titles, bodies, comments).
    The endpoint listens before forge work exists: until ``desk`` gives the desk of forge
    work, every call is answered "no forge run"."""

    def __init__(
        self,
        desk: Callable[[], DoorDesk | None] = lambda: None,
        *,
        clean: Callable[[str], str] | None = None,
        body_seconds: float = BODY_SECONDS,
    ) -> None:
        self._desk = desk
        self._clean = clean or _as_is
        self._body_seconds = body_seconds
        self._secrets: AgentSecrets | None = None

    @property
    def _acts(self) -> DoorActions:
        desk = self._desk()
        assert desk is not None  # a door without forge work answers before any action
        return desk

    def mount(self, app: web.Application, secrets: AgentSecrets) -> None:
        """Add the route to ``app``; tokens are checked against ``secrets``."""
        self._secrets = secrets
        app.router.add_post("/forge/{agent}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        agent = self._agent(request)
        if agent is None:
            return web.Response(status=403)
        desk = self._desk()
        if desk is None:
            return web.json_response({"error": "no forge run"}, status=409)
        scope = await desk.scope_of(agent)
        try:
            body = await read_capped(request, MAX_BODY, within=self._body_seconds)
        except TimeoutError:
            await self._acts.audit(scope, agent, "?", False, "refused: the call came too slowly")
            return web.Response(status=408)
        except OverCap:
            await self._acts.audit(scope, agent, "?", False, "refused: a call over 64 KiB")
            return web.Response(status=413)
        try:
            call = parse_call(body)
        except BadCall as exc:
            why = one_line(f"{exc}")
            log.warning("forge door: refused a call of %s: %s", agent, why)
            await self._acts.audit(scope, agent, exc.op, False, f"refused: {why}")
            return web.json_response({"error": f"{exc}"}, status=400)
        if scope is None:
            await self._acts.audit(None, agent, call.op, False, "refused: no forge run")
            return web.json_response({"error": "no forge run"}, status=409)
        why_not = refusal(scope, call)
        if why_not is not None:
            log.warning("forge door: %s %s", agent, why_not)
            await self._acts.audit(scope, agent, call.op, False, why_not)
            return web.json_response({"error": why_not}, status=403)
        line = audit_line(scope, call)
        try:
            text = await self._do(scope, call)
        except ForgeApiError as exc:
            failure = forge_failure(exc)
            log.warning("forge door: %s: %s failed: %s", agent, line, exc)
            await self._acts.audit(scope, agent, call.op, True, f"{line}: {failure}")
            return web.json_response({"error": failure}, status=502)
        except DoorRefusal as exc:
            why = one_line(f"{exc}")
            why = why if why.startswith("refused") else f"refused: {why}"
            await self._acts.audit(scope, agent, call.op, False, why)
            return web.json_response({"error": f"{exc}"}, status=409)
        await self._acts.audit(scope, agent, call.op, True, line)
        return web.json_response({"ok": True, "text": cap_answer(text)})

    async def _do(self, scope: DoorScope, call: Call) -> str:
        if isinstance(call, Read):
            return await self._read(scope, call)
        if isinstance(call, Comment):
            number, pull = _target(scope, call)
            return await self._acts.comment(scope, number, call.body, pull=pull)
        if isinstance(call, Describe):
            return await self._acts.describe(scope, call.body)
        if isinstance(call, OpenPull):
            return await self._acts.open_pull(scope, call.title, call.body, call.draft)
        return await self._acts.done(scope, call.status, call.summary)

    async def _read(self, scope: DoorScope, call: Read) -> str:
        api = self._acts.api(scope.forge)
        if call.what == "file" and call.path is not None:
            return render_file(await api.file(scope.repo, call.path, call.ref), call.ref)
        number = call.number or scope.issue
        # Reading hostile HTML is work for a thread, never the event loop's.
        if call.what == "pull":
            pull = await api.pull(scope.repo, number)
            return await asyncio.to_thread(render_pull, pull, self._clean)
        if call.what == "comments":
            comments = await api.comments(scope.repo, number, pull=call.pull)
            return await asyncio.to_thread(render_comments, number, comments, self._clean)
        issue = await api.issue(scope.repo, number)
        return await asyncio.to_thread(render_issue, issue, self._clean)

    def _agent(self, request: web.Request) -> str | None:
        if self._secrets is None:
            return None
        return self._secrets.matches(request.match_info["agent"], request.headers.get(TOKEN_HEADER))


def _target(scope: DoorScope, call: Comment) -> tuple[int, bool]:
    """The number a comment goes on, and whether it is the run's pull request's: the
    issue's unless the call names the pull request (by ``pull``, or by its number where that
    is not also the issue's)."""
    if call.pull and scope.pull is not None:
        return scope.pull, True
    number = scope.issue if call.number is None else call.number
    return number, number != scope.issue and number == scope.pull


def _as_is(text: str) -> str:
    return text


def plain(text: str) -> str:
    """``text`` with line ends made ``\\n`` and control characters (but tabs) dropped."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _people(logins: tuple[str, ...]) -> str:
    return ", ".join(f"@{plain(login)}" for login in logins)


def render_issue(issue: ForgeIssue, clean: Callable[[str], str] = _as_is) -> str:
    """``#N title``, then state, labels and author, then the body."""
    facts = [issue.state + (" (a pull request)" if issue.is_pull else "")]
    facts.append(
        f"labels: {', '.join(plain(x) for x in issue.labels)}" if issue.labels else "no labels"
    )
    facts.append(f"by @{plain(issue.author)}")
    if issue.assignees:
        facts.append(f"assigned to {_people(issue.assignees)}")
    head = f"#{issue.number} {one_line(plain(clean(issue.title)), MAX_TITLE)}"
    return f"{head}\n{', '.join(facts)}\n\n{plain(clean(issue.body))}"


def render_pull(pull: ForgePull, clean: Callable[[str], str] = _as_is) -> str:
    """``#N title``, then state and author, then head, base and merged, then the body."""
    state = pull.state + (", draft" if pull.draft else "")
    head = f"#{pull.number} {one_line(plain(clean(pull.title)), MAX_TITLE)}"
    branches = (
        f"head {plain(pull.head)} ({pull.head_sha[:12]}) into base {plain(pull.base)}, "
        f"merged: {'yes' if pull.merged else 'no'}"
    )
    return f"{head}\n{state}, by @{plain(pull.author)}\n{branches}\n\n{plain(clean(pull.body))}"


def render_comments(
    number: int, comments: list[ForgeComment], clean: Callable[[str], str] = _as_is
) -> str:
    """Each comment as ``@login at TIME:`` and its body, oldest first."""
    if not comments:
        return f"no comments on #{number}"
    blocks = [
        f"@{plain(c.author)} at {when(c.created_at)}:\n{plain(clean(c.body))}" for c in comments
    ]
    return "\n\n".join(blocks)


def render_file(found: ForgeFile, ref: str | None) -> str:
    """A ``path@ref`` line, then the file's text."""
    note = " (truncated)" if found.truncated else ""
    header = f"{plain(found.path)}@{ref or 'the default branch'}{note}"
    return f"{header}\n{plain(found.text)}"


def cap_answer(text: str, limit: int = MAX_ANSWER) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, saying where it was cut."""
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= limit:
        return text
    room = limit - len(_CUT_NOTE.encode())
    return encoded[:room].decode("utf-8", "ignore") + _CUT_NOTE
