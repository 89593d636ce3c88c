"""Who is who on a GitLab, for :class:`~fleet.forge.api.gitlab.client.GitLabApi`: the token's own
user and scopes, a user's id by username, their access level on a project (its members
and the groups above it: ``members/all``) and in a group or its subgroup (Fleetwarden's
org and team), and the no-reply address GitLab credits their commits to.

GitLab's access levels become Fleetwarden's permissions: Owner (50) and Maintainer (40)
are ``admin``, Developer (30) ``write``, Reporter (20), Guest (10) and Minimal (5)
``read``; no member is ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from fleet.forge.api.client import Rest
from fleet.forge.api.fields import Malformed, field_int, field_str
from fleet.forge.api.no_reply import gitlab_no_reply_address
from fleet.forge.model import Permission
from fleet.ledger.records.forge import Slug

DEVELOPER: Final = 30
MAINTAINER: Final = 40


def permission_of(level: int) -> Permission:
    """Fleetwarden's word for a GitLab access level."""
    if level >= MAINTAINER:
        return "admin"
    if level >= DEVELOPER:
        return "write"
    return "read" if level > 0 else "none"


class GitLabPeople:
    """A GitLab client's questions about people, asked through its ``rest``."""

    def __init__(self, rest: Rest) -> None:
        self._rest = rest
        self._me: tuple[int, str] | None = None

    async def _me_now(self) -> tuple[int, str]:
        if self._me is None:
            self._me = await self._rest.got("/user", _id_and_name)
        return self._me

    async def whoami(self) -> str:
        return (await self._me_now())[1]

    async def token_scopes(self) -> tuple[str, ...]:
        """The scopes of the client's own token (``api``, ``write_repository``, …)."""
        return await self._rest.got("/personal_access_tokens/self", _scopes)

    async def user(self, login: str) -> tuple[int, str] | None:
        """The id and username of the user named ``login`` (None: no such user)."""
        path = "/users"
        for item in await self._rest.whole(path, {"username": login}):
            found = self._rest.read(f"GET {path}", _id_and_name, item)
            if found[1].casefold() == login.casefold():
                return found
        return None

    async def access_level(self, repo: Slug, login: str) -> int:
        """``login``'s access level on ``repo`` (0: no member, or no such user)."""
        found = await self.user(login)
        if found is None:
            return 0
        path = f"/projects/{quote(str(repo), safe='')}/members/all/{found[0]}"
        return await self._level(path)

    async def _level(self, path: str) -> int:
        answer = await self._rest.call("GET", path, expect=(200, 404))
        if answer.status == 404:
            return 0
        return self._rest.read(f"GET {path}", lambda d: field_int(d, "access_level"), answer.data)

    async def permission(self, repo: Slug, login: str) -> Permission:
        return permission_of(await self.access_level(repo, login))

    async def in_org(self, org: str, login: str) -> bool:
        # A group's member who may write (Developer and above), directly or through a group
        # above it: a Guest or a Minimal Access member is no one who may start a run. A group
        # this token cannot see (404) tells nothing, so no.
        found = await self.user(login)
        if found is None:
            return False
        path = f"/groups/{quote(org, safe='')}/members/all/{found[0]}"
        return await self._level(path) >= DEVELOPER

    async def in_team(self, org: str, team: str, login: str) -> bool:
        # Fleetwarden's team on GitLab: the subgroup ``org/team``.
        return await self.in_org(f"{org}/{team}", login)

    async def commit_address(self, repo: Slug, login: str) -> str | None:
        # GitLab's private commit address, never one the API shows: asked only whether
        # the user exists, their id and username.
        found = await self.user(login)
        if found is None:
            return None
        return gitlab_no_reply_address(found[0], found[1], self._rest.http.api_url)


def _id_and_name(data: Any) -> tuple[int, str]:
    if not isinstance(data, Mapping):
        raise Malformed("user")
    return field_int(data, "id"), field_str(data, "username")


def _scopes(data: Any) -> tuple[str, ...]:
    scopes = data.get("scopes") if isinstance(data, Mapping) else None
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise Malformed("scopes")
    return tuple(scopes)
