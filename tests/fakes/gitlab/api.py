"""A strict fake GitLab REST server on 127.0.0.1, for Fleetwarden's GitLab client.

It serves the operations ``gitlab_openapi.json`` describes (GitLab's own description, cut,
and a few written from GitLab's REST docs; see ``gitlab_openapi.md``) under ``/api/v4``,
from state a test seeds and inspects (:class:`FakeGitLab`'s helpers), answering as GitLab
does (:mod:`tests.fakes.gitlab.ops`).

As strict as the service: a token is taken from ``PRIVATE-TOKEN`` or from
``Authorization: Bearer``, and none or an unknown one is ``401 {"message": "401
Unauthorized"}``; a project the token's user cannot see is ``404 Project Not Found``; a
token without the ``api`` scope writes nothing (``read_api``: reads only). Every request
is checked against the description (path, parameters, body; :mod:`tests.fakes.gitlab.spec`)
and every answer too: what is off is recorded in :attr:`FakeGitLab.violations` (a bad
request is also answered 400), which a test asserts empty. A project may be linked to a
real bare git repository (:meth:`FakeGitLab.link_git`): its branches, their tips and its
files are then read from there, as a client pushed them.

Use it as ``async with FakeGitLab() as gitlab:`` in a test's loop, or from a thread for
tests that drive a process synchronously: ``with fake_gitlab_thread() as gitlab:``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote

from aiohttp import web

from fleet.timing.clock import Clock, SystemClock
from tests.fakes.gitea.git import GitBranches, GitFiles
from tests.fakes.gitlab.ops import OPERATIONS, Call, Refused, Reply
from tests.fakes.gitlab.spec import GitLabSpec, Operation
from tests.fakes.gitlab.state import (
    DEVELOPER,
    DRAFT,
    Issue,
    MergeRequest,
    Note,
    Project,
    World,
    fake_sha,
)
from tests.fakes.loopback import LoopbackServer

__all__ = [
    "BOT_LOGIN",
    "GITLAB_TOKEN",
    "FakeGitLab",
    "Seen",
    "Token",
    "fake_gitlab_thread",
]

BOT_LOGIN: Final = "fleetwarden-bot"  # whose the default token is
# Built here, never a literal shaped like a real token (``glpat-…``).
GITLAB_TOKEN: Final = "fake-gitlab-" + hashlib.sha256(b"fleetwarden fake gitlab").hexdigest()[:24]
_UNAUTHORIZED: Final = {"message": "401 Unauthorized"}


@dataclass(frozen=True)
class Token:
    """A token the fake takes: whose it is and its scopes."""

    username: str
    scopes: tuple[str, ...] = ("api",)


@dataclass(frozen=True)
class Seen:
    """A request the fake took: method, raw path and query, whose token it bore, and the
    status it was answered with."""

    method: str
    path: str
    query: str
    login: str | None
    status: int


class FakeGitLab(LoopbackServer):
    """The fake server and its state. ``tokens`` maps each token it takes to its
    :class:`Token` (by default :data:`GITLAB_TOKEN` → :data:`BOT_LOGIN`, scope ``api``)."""

    def __init__(
        self, tokens: Mapping[str, Token] | None = None, *, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self._clock = clock or SystemClock()
        self.world = World(self._clock.now)
        self.tokens = dict(tokens if tokens is not None else {GITLAB_TOKEN: Token(BOT_LOGIN)})
        for token in self.tokens.values():
            self.world.add_user(token.username, bot=token.username == BOT_LOGIN)
        self.violations: list[str] = []
        self.requests: list[Seen] = []
        self._spec = GitLabSpec.load()
        self._lock = threading.RLock()

    # -- serving ----------------------------------------------------------------------

    @property
    def site(self) -> str:
        """``http://127.0.0.1:PORT``, the server's root."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """The API root a client is given: ``http://127.0.0.1:PORT/api/v4``."""
        return self.base_url + "/api/v4"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path, _, _ = request.raw_path.partition("?")
        raw = await request.read()
        token = self._token(request)
        with self._lock:
            reply = self._answer(request, raw_path, raw, token)
            login = token.username if token else None
            self.requests.append(
                Seen(request.method, raw_path, request.query_string, login, reply.status)
            )
        body = b"" if reply.data is None else json.dumps(reply.data).encode()
        headers = {"Content-Type": "application/json", **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers)

    def _token(self, request: web.Request) -> Token | None:
        private = request.headers.get("PRIVATE-TOKEN")
        scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
        given = private if private is not None else (bearer if scheme == "Bearer" else None)
        return self.tokens.get(given) if given else None

    def _answer(
        self, request: web.Request, raw_path: str, raw: bytes, token: Token | None
    ) -> Reply:
        matched = self._spec.match(request.method, raw_path)
        if matched is None:
            self.violations.append(f"undescribed operation: {request.method} {raw_path}")
            return Reply(404, {"error": "404 Not Found"})
        op, params = matched
        if token is None:
            return self._checked(op, Reply(401, _UNAUTHORIZED))
        problems = self._spec.check_parameters(op, params, request.query.items())
        body, body_problems = self._spec.check_body(op, request.content_type, raw)
        problems += body_problems
        if problems:
            self.violations.extend(problems)
            return self._checked(op, Reply(400, {"error": problems[0]}))
        if not self._scoped(request.method, token):
            return self._checked(op, Reply(403, {"error": "insufficient_scope"}))
        call = Call(self.world, self.site, token.username, params, dict(request.query), body,
                    None, request.path, token.scopes)  # fmt: skip
        try:
            if op.template.startswith("/api/v4/projects/{id}"):
                call.project = self._visible(params["id"], token.username)
            reply = OPERATIONS[op.operation_id](call)
        except Refused as refused:
            reply = Reply(refused.status, refused.data)
        return self._checked(op, reply)

    @staticmethod
    def _scoped(method: str, token: Token) -> bool:
        if "api" in token.scopes:
            return True
        return method in ("GET", "HEAD") and "read_api" in token.scopes

    def _checked(self, op: Operation, reply: Reply) -> Reply:
        raw = b"" if reply.data is None else json.dumps(reply.data).encode()
        self.violations.extend(self._spec.check_answer(op, reply.status, reply.data, raw))
        return reply

    def _visible(self, ident: str, username: str) -> Project:
        project = self.world.project_by_id(unquote(ident))
        if project is None or not self.world.can_see(project, username):
            raise Refused(404, "404 Project Not Found")
        return project

    # -- seeding ----------------------------------------------------------------------

    def add_user(self, username: str, *, bot: bool = False) -> int:
        """An account; its id."""
        with self._lock:
            return self.world.add_user(username, bot=bot).id

    def add_group(self, full_path: str, *, members: Mapping[str, int] | None = None) -> int:
        """A group (its parents made too) with ``members`` (username → access level)."""
        with self._lock:
            group = self.world.add_group(full_path)
            for username, level in (members or {}).items():
                self.add_group_member(full_path, username, level)
            return group.id

    def add_group_member(self, full_path: str, username: str, level: int) -> None:
        with self._lock:
            self.world.add_user(username)
            self.world.add_group(full_path).members[username.lower()] = level

    def add_project(
        self,
        full_path: str,
        *,
        default_branch: str = "main",
        files: Mapping[str, str | bytes] | None = None,
        visibility: str = "private",
    ) -> int:
        """A project in group ``full_path``'s namespace (made if missing), its default
        branch holding ``files``; its id."""
        with self._lock:
            namespace, _, path = full_path.rpartition("/")
            self.world.add_group(namespace)
            project = Project(self.world.next_id(), namespace, path, self.world.now(),
                              default_branch, visibility)  # type: ignore[arg-type]  # fmt: skip
            self.world.projects[full_path.lower()] = project
            self.add_branch(full_path, default_branch, files=files)
            return project.id

    def add_member(self, project: str, username: str, level: int = DEVELOPER) -> None:
        """``username`` a member of ``project`` at ``level`` (10 Guest … 50 Owner)."""
        with self._lock:
            self.world.add_user(username)
            self.world.project(project).members[username.lower()] = level

    def add_branch(
        self, project: str, name: str, *, files: Mapping[str, str | bytes] | None = None
    ) -> str:
        """A branch (its files: the default branch's, updated by ``files``); its sha."""
        with self._lock:
            found = self.world.project(project)
            base = dict(found.files.get(found.default_branch, {}))
            for path, data in (files or {}).items():
                base[path] = data.encode() if isinstance(data, str) else data
            found.files[name] = base
            found.branches[name] = fake_sha(project, name, str(self.world.next_id()))
            return found.branches[name]

    def link_git(self, project: str, git_dir: Path) -> None:
        """Serve ``project``'s branches, their tips and files from the bare repository
        ``git_dir`` from now on (read with ``git`` at each request)."""
        with self._lock:
            found = self.world.project(project)
            branches = GitBranches(git_dir)
            if found.default_branch not in branches:
                raise ValueError(f"{git_dir} has no branch {found.default_branch!r}")
            found.branches, found.files = branches, GitFiles(branches)
            found.linked = True
            self.world.sync_heads(found)

    def open_issue(
        self,
        project: str,
        title: str,
        body: str = "",
        *,
        author: str = "alice",
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
    ) -> int:
        """An open issue (its labels and assignees given by its author); its iid."""
        with self._lock:
            found = self.world.project(project)
            self.world.add_user(author)
            now = self.world.now()
            issue = Issue(self.world.next_id(), max(found.issues, default=0) + 1, title, body,
                          author, now, now)  # fmt: skip
            found.issues[issue.iid] = issue
            for label in labels:
                self.world.label(found, issue, label, author, removed=False)
            if assignees:
                self.world.assign(found, issue, list(assignees), author)
            return issue.iid

    def add_note(
        self, project: str, iid: int, body: str, *, author: str = "alice", pull: bool = False
    ) -> int:
        """A comment on issue ``iid`` (``pull``: on merge request ``iid``); its id."""
        with self._lock:
            found = self.world.project(project)
            target = self.mr(project, iid) if pull else self.issue(project, iid)
            return self.world.note(found, target, author, body).id

    def label(
        self, project: str, iid: int, label: str, *, by: str | None = None, removed: bool = False
    ) -> None:
        """Label ``label`` given to (``removed``: taken from) issue ``iid`` by ``by`` (its
        author by default), recorded as a resource label event."""
        with self._lock:
            issue = self.issue(project, iid)
            self.world.label(self.world.project(project), issue, label, by or issue.author,
                             removed=removed)  # fmt: skip

    def assign(self, project: str, iid: int, *logins: str, by: str | None = None) -> None:
        """``logins`` added to issue ``iid``'s assignees by ``by``: GitLab's system note
        ("assigned to @x") records it."""
        with self._lock:
            issue = self.issue(project, iid)
            wanted = issue.assignees + [x for x in logins if x not in issue.assignees]
            self.world.assign(self.world.project(project), issue, wanted, by or issue.author)

    def unassign(self, project: str, iid: int, *logins: str, by: str | None = None) -> None:
        with self._lock:
            issue = self.issue(project, iid)
            wanted = [x for x in issue.assignees if x not in logins]
            self.world.assign(self.world.project(project), issue, wanted, by or issue.author)

    def close_issue(self, project: str, iid: int) -> None:
        with self._lock:
            issue = self.issue(project, iid)
            issue.state, issue.closed_at = "closed", self.world.now()
            issue.updated = issue.closed_at

    def open_mr(
        self,
        project: str,
        source_branch: str,
        *,
        author: str = "alice",
        target: str | None = None,
        title: str = "A change",
        description: str = "",
    ) -> int:
        """An open merge request from ``source_branch`` (made if missing); its iid."""
        with self._lock:
            found = self.world.project(project)
            self.world.add_user(author)
            if source_branch not in found.branches:
                self.add_branch(project, source_branch)
            now = self.world.now()
            mr = MergeRequest(self.world.next_id(), max(found.mrs, default=0) + 1, title,
                              description, author, source_branch,
                              target or found.default_branch, found.branches[source_branch],
                              now, now)  # fmt: skip
            found.mrs[mr.iid] = mr
            return mr.iid

    def approve(self, project: str, iid: int, *, by: str) -> None:
        """``by`` approves merge request ``iid`` (GitLab writes its system note too)."""
        with self._lock:
            mr = self.mr(project, iid)
            self.world.add_user(by)
            mr.approvals.append((by, self.world.now()))
            self.world.note(self.world.project(project), mr, by, "approved this merge request",
                            system=True)  # fmt: skip

    def merge_mr(self, project: str, iid: int, *, by: str = "olga") -> None:
        with self._lock:
            mr = self.mr(project, iid)
            self.world.add_user(by)
            if mr.state != "opened":
                raise ValueError(f"!{iid} is not open")
            now = self.world.now()
            mr.state, mr.merged_by, mr.merged_at, mr.updated = "merged", by, now, now

    def close_mr(self, project: str, iid: int) -> None:
        with self._lock:
            mr = self.mr(project, iid)
            mr.state, mr.closed_at = "closed", self.world.now()
            mr.updated = mr.closed_at

    # -- inspecting -------------------------------------------------------------------

    def issue(self, project: str, iid: int) -> Issue:
        """Issue ``iid`` as the fake holds it (live)."""
        with self._lock:
            found = self.world.project(project).issues.get(iid)
            if found is None:
                raise KeyError(f"no issue #{iid} in {project!r}")
            return found

    def mr(self, project: str, iid: int) -> MergeRequest:
        """Merge request ``iid`` as the fake holds it (live, its head synced)."""
        with self._lock:
            found = self.world.project(project)
            self.world.sync_heads(found)
            mr = found.mrs.get(iid)
            if mr is None:
                raise KeyError(f"no merge request !{iid} in {project!r}")
            return mr

    def notes_on(self, project: str, iid: int, *, pull: bool = False) -> list[Note]:
        with self._lock:
            target = self.mr(project, iid) if pull else self.issue(project, iid)
            return list(target.notes)

    def mrs(self, project: str) -> list[MergeRequest]:
        with self._lock:
            found = self.world.project(project)
            self.world.sync_heads(found)
            return [mr for _, mr in sorted(found.mrs.items())]

    def is_draft(self, project: str, iid: int) -> bool:
        """Whether GitLab takes merge request ``iid`` for a draft (its title's prefix)."""
        with self._lock:
            return DRAFT.match(self.mr(project, iid).title) is not None

    def branches(self, project: str) -> dict[str, str]:
        with self._lock:
            return dict(self.world.project(project).branches)

    def statuses(self, project: str) -> list[dict[str, Any]]:
        with self._lock:
            return [vars(s).copy() for s in self.world.project(project).statuses]


@contextmanager
def fake_gitlab_thread(
    tokens: Mapping[str, Token] | None = None, *, clock: Clock | None = None
) -> Iterator[FakeGitLab]:
    """A started :class:`FakeGitLab` served from a daemon thread; stopped on exit. Its
    helpers may be called from the test's thread while it serves."""
    loop = asyncio.new_event_loop()
    fake = FakeGitLab(tokens, clock=clock)
    thread = threading.Thread(target=loop.run_forever, name="fake-gitlab", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
