"""Who is who on a GitLab, for :class:`~fleet.forge.api.gitlab.GitLabApi`: the token's own
user and scopes, a user's id by username, their access level on a project (its members
and the groups above it: ``members/all``) and in a group or its subgroup (Fleetwarden's
org and team), and the no-reply address GitLab credits their commits to.

GitLab's access levels become Fleetwarden's permissions: Owner (50) and Maintainer (40)
are ``admin``, Developer (30) ``write``, Reporter (20), Guest (10) and Minimal (5)
``read``; no member is ``none``. The calls and the reading of answers every part of the
client shares live here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar
from urllib.parse import quote

from fleet.forge.api.fields import Malformed, field_int, field_str
from fleet.forge.api.no_reply import gitlab_no_reply_address
from fleet.forge.api.rest import ForgeHttp, Params
from fleet.forge.model import ForgeApiError, Permission
from fleet.ledger.records.forge import Slug

DEVELOPER: Final = 30
MAINTAINER: Final = 40
T = TypeVar("T")


def permission_of(level: int) -> Permission:
    """Fleetwarden's word for a GitLab access level."""
    if level >= MAINTAINER:
        return "admin"
    if level >= DEVELOPER:
        return "write"
    return "read" if level > 0 else "none"


class GitLabPeople:
    """The calls of a GitLab client, and its questions about people."""

    def __init__(self, http: ForgeHttp, auth: str, name: str) -> None:
        self._http = http
        self._auth = auth
        self._name = name
        self._me: tuple[int, str] | None = None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> tuple[int, Any, Mapping[str, str]]:
        answer = await self._http.call(
            method, path, auth=self._auth, params=params, body=body, expect=expect
        )
        return answer.status, answer.data, answer.headers

    def _shape(self, what: str, exc: Malformed) -> ForgeApiError:
        return ForgeApiError(f"{self._name} answered {what} without a valid {exc.args[0]!r}", 200)

    def _read(self, what: str, reader: Callable[[Any], T], data: Any) -> T:
        """``reader(data)``, a wrong shape a :class:`ForgeApiError` naming ``what``."""
        try:
            return reader(data)
        except Malformed as exc:
            raise self._shape(what, exc) from None

    async def _me_now(self) -> tuple[int, str]:
        if self._me is None:
            _, data, _ = await self._call("GET", "/user")
            self._me = self._read("GET /user", _id_and_name, data)
        return self._me

    async def whoami(self) -> str:
        return (await self._me_now())[1]

    async def token_scopes(self) -> tuple[str, ...]:
        """The scopes of the client's own token (``api``, ``write_repository``, …)."""
        path = "/personal_access_tokens/self"
        _, data, _ = await self._call("GET", path)
        scopes = data.get("scopes") if isinstance(data, Mapping) else None
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ForgeApiError(f"{self._name} answered GET {path} without valid 'scopes'", 200)
        return tuple(scopes)

    async def user(self, login: str) -> tuple[int, str] | None:
        """The id and username of the user named ``login`` (None: no such user)."""
        path = "/users"
        _, data, _ = await self._call("GET", path, params={"username": login})
        if not isinstance(data, list):
            raise ForgeApiError(f"{self._name} answered GET {path} with no list", 200)
        for item in data:
            found = self._read(f"GET {path}", _id_and_name, item)
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
        status, data, _ = await self._call("GET", path, expect=(200, 404))
        if status == 404:
            return 0
        return self._read(f"GET {path}", lambda d: field_int(d, "access_level"), data)

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
        return gitlab_no_reply_address(found[0], found[1], self._http.api_url)


def _id_and_name(data: Any) -> tuple[int, str]:
    if not isinstance(data, Mapping):
        raise Malformed("user")
    return field_int(data, "id"), field_str(data, "username")
