"""A strict fake Gitea REST server on 127.0.0.1, for Fleetwarden's Gitea client.

It serves the operations ``gitea_swagger.json`` describes (Gitea's own description, see
``gitea_swagger.md``) under ``/api/v1``, from state a test seeds and inspects
(:class:`FakeGitea`'s ``add_…`` helpers, :meth:`~FakeGitea.comments_on`,
:meth:`~FakeGitea.pulls`, …), answering as Gitea does (:mod:`tests.fakes.gitea.ops`).

As strict as the service: only ``Authorization: token T`` with a token it knows is
taken (none: 401 "token is required"; another: Gitea's 401 for an unknown token); a
repository the token's user cannot read is 404. Every request is checked against the
description (path, parameters, body; :mod:`tests.fakes.gitea.spec`) and every answer
too: what is off is recorded in :attr:`FakeGitea.violations` (a bad request is also
answered 422), which a test asserts empty. Unlike a Gitea with anonymous access, every
call needs a token, and it holds no forks, milestones or team-limited repositories.
A repository may be linked to a real bare git repository (:meth:`FakeGitea.link_git`):
its branches, their tips and its files are then read from there, as a client pushed them.

Use it as ``async with FakeGitea() as gitea:`` in a test's loop, or from a thread for
tests that drive a process synchronously: ``with fake_gitea_thread() as gitea:``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from fleet.timing.clock import Clock, SystemClock
from tests.fakes.gitea import entities as js
from tests.fakes.gitea import reviews as gitea_reviews
from tests.fakes.gitea.git import GitBranches, GitFiles
from tests.fakes.gitea.ops import OPERATIONS, Call, Refused, Reply
from tests.fakes.gitea.spec import GiteaSpec
from tests.fakes.gitea.state import (
    Access,
    Comment,
    Issue,
    Org,
    PullInfo,
    Repo,
    Team,
    World,
    fake_sha,
)
from tests.fakes.loopback import LoopbackServer

__all__ = ["BOT_LOGIN", "GITEA_TOKEN", "SERVED", "FakeGitea", "Seen", "fake_gitea_thread"]

GITEA_TOKEN: Final = "gitea-fake-token-0123456789abcdef0123"  # the default token
BOT_LOGIN: Final = "fleetbot"  # whose the default token is
_UNKNOWN_TOKEN: Final = "user does not exist [uid: 0, name: , keyid: 0]"
SERVED: Final = {**OPERATIONS, **gitea_reviews.OPERATIONS}  # by Gitea's operationId


@dataclass(frozen=True)
class Seen:
    """A request the fake took: method, raw path and query, whose token it bore, and the
    status it was answered with."""

    method: str
    path: str
    query: str
    login: str | None
    status: int


class FakeGitea(LoopbackServer):
    """The fake server and its state. ``tokens`` maps each token it takes to its user's
    login (by default :data:`GITEA_TOKEN` → :data:`BOT_LOGIN`); ``clock`` gives times."""

    def __init__(
        self, tokens: Mapping[str, str] | None = None, *, clock: Clock | None = None
    ) -> None:
        super().__init__()
        self._clock = clock or SystemClock()
        self.world = World(self._clock.now)
        self.tokens = dict(tokens if tokens is not None else {GITEA_TOKEN: BOT_LOGIN})
        for login in self.tokens.values():
            self.world.add_user(login)
        self.violations: list[str] = []
        self.requests: list[Seen] = []
        self._spec = GiteaSpec.load()
        self._lock = threading.RLock()

    # -- serving ----------------------------------------------------------------------

    @property
    def site(self) -> str:
        """``http://127.0.0.1:PORT``, the server's root."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """The API root a client is given: ``http://127.0.0.1:PORT/api/v1``."""
        return self.base_url + "/api/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_path, _, _ = request.raw_path.partition("?")
        raw = await request.read()
        login = self._login(request.headers.get("Authorization"))
        with self._lock:
            reply = self._answer(request, raw_path, raw, login)
            self.requests.append(
                Seen(request.method, raw_path, request.query_string, login, reply.status)
            )
        body = b"" if reply.data is None else json.dumps(reply.data).encode()
        headers = {"Content-Type": "application/json;charset=utf-8", **reply.headers}
        return web.Response(status=reply.status, body=body, headers=headers)

    def _answer(self, request: web.Request, raw_path: str, raw: bytes, login: str | None) -> Reply:
        matched = self._spec.match(request.method, raw_path)
        if matched is None:
            self.violations.append(f"undescribed operation: {request.method} {raw_path}")
            return Reply(404, js.not_found(self.site))
        op, params = matched
        if login is None:
            said = "token is required" if "Authorization" not in request.headers else None
            return self._checked(op, Reply(401, js.error(self.site, said or _UNKNOWN_TOKEN)))
        problems = self._spec.check_parameters(op, params, request.query.items())
        body, body_problems = self._spec.check_body(op, request.content_type, raw)
        problems += body_problems
        if problems:
            self.violations.extend(problems)
            return self._checked(op, Reply(422, js.error(self.site, problems[0])))
        call = Call(
            self.world,
            self.site,
            login,
            params,
            dict(request.query),
            body,
            None,
            self.violations.append,
            request.path,
        )
        try:
            if "owner" in params and "repo" in params:
                call.repo = self._readable(call, params["owner"], params["repo"])
                self.world.sync_heads(call.repo)
            reply = SERVED[op.operation_id](call)
        except Refused as refused:
            reply = Reply(refused.status, refused.data)
        return self._checked(op, reply)

    def _checked(self, op: Any, reply: Reply) -> Reply:
        raw = b"" if reply.data is None else json.dumps(reply.data).encode()
        self.violations.extend(self._spec.check_answer(op, reply.status, reply.data, raw))
        return reply

    def _login(self, header: str | None) -> str | None:
        scheme, _, token = (header or "").partition(" ")
        if scheme != "token" or token not in self.tokens:
            return None
        return self.tokens[token]

    def _readable(self, call: Call, owner: str, name: str) -> Repo:
        if self.world.user(owner) is None:
            raise call.missing(errors=[f"user redirect does not exist [name: {owner.lower()}]"])
        repo = self.world.repos.get(f"{owner}/{name}".lower())
        if repo is None or not self.world.can_read(repo, call.doer):
            raise call.missing()
        return repo

    # -- seeding ----------------------------------------------------------------------

    def add_user(
        self, login: str, *, admin: bool = False, email: str = "", private: bool = True
    ) -> None:
        """A user (``admin``: a site administrator) with their own ``email``, kept
        ``private`` (shown then only to an admin and to themselves)."""
        with self._lock:
            user = self.world.add_user(login, is_admin=admin)
            user.email, user.keep_email_private = email or user.email, private

    def add_org(
        self, login: str, *, owners: Sequence[str] = (), members: Sequence[str] = ()
    ) -> None:
        """An organization with its owners and (other) members."""
        with self._lock:
            self.world.add_user(login, is_org=True)
            for person in [*owners, *members]:
                self.world.add_user(person)
            org = self.world.orgs.setdefault(login.lower(), Org(login))
            org.owners.update(owners)
            org.members.update(members)

    def add_team(
        self, org: str, name: str, *, members: Sequence[str] = (), permission: Access = "write"
    ) -> int:
        """A team of ``org`` (its members become org members); the team's id."""
        with self._lock:
            self.add_org(org, members=members)
            found = self.world.org(org)
            if found is None:
                raise KeyError(org)
            team = Team(self.world.next_id(), found.login, name, permission, set(members))
            found.teams.append(team)
            return team.id

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        private: bool = True,
        files: Mapping[str, str | bytes] | None = None,
    ) -> Repo:
        """A repository with its default branch (holding ``files``)."""
        with self._lock:
            owner, _, name = full_name.partition("/")
            if self.world.user(owner) is None:
                self.world.add_user(owner)
            repo = Repo(self.world.next_id(), owner, name, self.world.now(), default_branch)
            repo.private = private
            self.world.repos[full_name.lower()] = repo
            self.add_branch(full_name, default_branch, files=files)
            return repo

    def link_git(self, repo: str, git_dir: Path) -> None:
        """Serve ``repo``'s branches, their tips and files from the bare repository
        ``git_dir`` from now on (read with ``git`` at each request; a branch deleted through
        the API is deleted there). Its branches and files are then the repository's own:
        :meth:`add_branch` and :meth:`add_file` refuse, a test commits to ``git_dir``."""
        with self._lock:
            found = self.world.repo(repo)
            branches = GitBranches(git_dir)
            if found.default_branch not in branches:
                raise ValueError(f"{git_dir} has no branch {found.default_branch!r}")
            found.branches, found.files = branches, GitFiles(branches)
            found.linked = True
            self.world.sync_heads(found)

    def add_collaborator(self, repo: str, login: str, permission: Access = "write") -> None:
        with self._lock:
            self.world.add_user(login)
            self.world.repo(repo).collaborators[login.lower()] = permission

    def add_branch(
        self,
        repo: str,
        name: str,
        *,
        files: Mapping[str, str | bytes] | None = None,
        protected: bool = False,
    ) -> str:
        """A branch (its files: the default branch's, updated by ``files``); its sha."""
        with self._lock:
            found = self.world.repo(repo)
            base = dict(found.files.get(found.default_branch, {}))
            for path, data in (files or {}).items():
                base[path] = data.encode() if isinstance(data, str) else data
            found.files[name] = base
            found.branches[name] = fake_sha(repo, name, str(self.world.next_id()))
            if protected:
                found.protected.add(name)
            return found.branches[name]

    def add_file(
        self, repo: str, path: str, data: str | bytes, *, branch: str | None = None
    ) -> None:
        with self._lock:
            found = self.world.repo(repo)
            files = found.files.setdefault(branch or found.default_branch, {})
            files[path] = data.encode() if isinstance(data, str) else data

    def add_issue(
        self,
        repo: str,
        title: str,
        body: str = "",
        *,
        author: str = "alice",
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
    ) -> int:
        """An open issue; its number."""
        with self._lock:
            issue = self.world.new_issue(
                self.world.repo(repo),
                title=title,
                body=body,
                author=author,
                labels=list(labels),
                assignees=list(assignees),
            )
            return issue.number

    def add_comment(self, repo: str, number: int, body: str, *, author: str = "alice") -> int:
        """A comment on an issue or pull request; its id."""
        with self._lock:
            found = self.world.repo(repo)
            return self.world.new_comment(found, self.issue(repo, number), author, body).id

    def add_label(self, repo: str, number: int, label: str, *, by: str | None = None) -> None:
        """Label ``label`` given to issue ``number`` by ``by`` (its author by default),
        recorded in its timeline."""
        with self._lock:
            issue = self.issue(repo, number)
            found = self.world.repo(repo)
            self.world.change_label(found, issue, label, by or issue.author, removed=False)

    def unlabel(self, repo: str, number: int, label: str, *, by: str | None = None) -> None:
        with self._lock:
            issue = self.issue(repo, number)
            found = self.world.repo(repo)
            self.world.change_label(found, issue, label, by or issue.author, removed=True)

    def assign(self, repo: str, number: int, login: str, *, by: str | None = None) -> None:
        """Issue ``number`` assigned to ``login`` by ``by`` (its author by default),
        recorded in its timeline."""
        with self._lock:
            issue = self.issue(repo, number)
            self.world.change_assignee(issue, login, by or issue.author, removed=False)

    def unassign(self, repo: str, number: int, login: str, *, by: str | None = None) -> None:
        with self._lock:
            issue = self.issue(repo, number)
            self.world.change_assignee(issue, login, by or issue.author, removed=True)

    def add_pull(
        self,
        repo: str,
        head: str,
        *,
        base: str | None = None,
        title: str = "A change",
        body: str = "",
        author: str = "alice",
    ) -> int:
        """An open pull request from ``head`` (made if missing) into ``base``; its number."""
        with self._lock:
            found = self.world.repo(repo)
            base = base or found.default_branch
            if head not in found.branches:
                self.add_branch(repo, head)
            pull = PullInfo(
                self.world.next_id(), head, base, found.branches[head], found.branches[base]
            )
            issue = self.world.new_issue(found, title=title, body=body, author=author, pull=pull)
            return issue.number

    def submit_review(
        self, repo: str, number: int, reviewer: str, state: str, body: str = ""
    ) -> int:
        """A review of pull request ``number``: ``APPROVED``, ``REQUEST_CHANGES``,
        ``COMMENT`` (or GitHub's words for them); its id."""
        with self._lock:
            self.world.sync_heads(self.world.repo(repo))
            return self.world.new_review(self.issue(repo, number), reviewer, state, body).id

    def merge_pull(self, repo: str, number: int, *, by: str = "alice") -> None:
        with self._lock:
            self.world.sync_heads(self.world.repo(repo))
            self.world.merge(self.issue(repo, number), by)

    def close_pull(self, repo: str, number: int) -> None:
        with self._lock:
            self.world.sync_heads(self.world.repo(repo))
            self.world.close(self.issue(repo, number))

    def close_issue(self, repo: str, number: int) -> None:
        """Issue ``number`` closed (its ``updated_at`` moved, as Gitea does)."""
        with self._lock:
            issue = self.issue(repo, number)
            if issue.pull is not None:
                raise ValueError(f"#{number} is a pull request: close_pull")
            self.world.close(issue)

    # -- inspecting -------------------------------------------------------------------

    def issue(self, repo: str, number: int) -> Issue:
        """Issue or pull request ``number`` as the fake holds it (live)."""
        with self._lock:
            return self.world.issue(repo, number)

    def comments_on(self, repo: str, number: int, *, pull: bool = False) -> list[Comment]:
        """The comments on issue or pull request ``number`` (one numbering: ``pull`` says
        nothing more here)."""
        with self._lock:
            return list(self.issue(repo, number).comments)

    def pulls(self, repo: str) -> list[Issue]:
        """The pull requests of ``repo`` (issues with ``pull``), oldest first."""
        with self._lock:
            found = self.world.repo(repo)
            self.world.sync_heads(found)
            return [i for _, i in sorted(found.issues.items()) if i.pull is not None]

    def is_draft(self, repo: str, number: int) -> bool:
        """Whether Gitea takes pull request ``number`` for a draft (its title's prefix)."""
        with self._lock:
            return self.issue(repo, number).title.upper().startswith(("WIP:", "[WIP]"))

    def reviews_of(self, repo: str, number: int) -> list[tuple[str, str, str]]:
        """Each review of pull request ``number``: its author, state and body."""
        with self._lock:
            pull = self.issue(repo, number).pull
            return [(r.author, r.state, r.body) for r in (pull.reviews if pull else [])]

    def branches(self, repo: str) -> dict[str, str]:
        with self._lock:
            return dict(self.world.repo(repo).branches)


@contextmanager
def fake_gitea_thread(
    tokens: Mapping[str, str] | None = None, *, clock: Clock | None = None
) -> Iterator[FakeGitea]:
    """A started :class:`FakeGitea` served from a daemon thread; stopped on exit. Its
    helpers may be called from the test's thread while it serves."""
    loop = asyncio.new_event_loop()
    fake = FakeGitea(tokens, clock=clock)
    thread = threading.Thread(target=loop.run_forever, name="fake-gitea", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
