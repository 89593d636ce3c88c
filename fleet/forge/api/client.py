"""What the GitHub, Gitea and GitLab clients share, written once: :class:`Rest`, the seam
each client holds (a call signed by its :class:`Auth`, a listing paged as the forge pages
it, an answer read into a value or a :class:`~fleet.forge.model.ForgeApiError` naming the
call), and :func:`file_of`, a file's base64 content made a
:class:`~fleet.forge.model.ForgeFile`.

A client keeps only what its forge does otherwise: its paths, its field names, how it
signs a call (``token …`` on Gitea, ``Bearer …`` on GitLab, a GitHub App's token a
repository) and the words it bridges.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

from fleet.forge.api.fields import Malformed
from fleet.forge.api.rest import Answer, ForgeHttp, Params, SessionMaker
from fleet.forge.model import ForgeApiError, ForgeFile
from fleet.ledger.records.forge import Slug
from fleet.timing.clock import Clock

MAX_FILE_BYTES: Final = 1024 * 1024
T = TypeVar("T")
Scope = Slug | str | None
"""What a call is for: a repository, an org (by name), or nothing in particular."""


class Auth(Protocol):
    """How a client signs its calls."""

    async def header(self, scope: Scope) -> str:
        """The ``Authorization`` value of a call for ``scope``."""
        ...

    def refused(self, scope: Scope) -> None:
        """The forge answered a call for ``scope`` 401: forget what signed it."""
        ...


@dataclass(frozen=True, slots=True)
class Token:
    """One header for every call (``token …``, ``Bearer …``); a 401 changes nothing."""

    value: str

    async def header(self, scope: Scope) -> str:
        return self.value

    def refused(self, scope: Scope) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Paging:
    """How a forge's listings are asked for: the page size's parameter, the size, and
    how many pages are read at the most."""

    size_param: str = "per_page"
    size: int = 100
    max_pages: int = 10


class Rest:
    """One forge's REST API as a client speaks it: ``http`` signed by ``auth``, listings
    paged by ``paging``."""

    def __init__(self, http: ForgeHttp, auth: Auth, paging: Paging | None = None) -> None:
        self.http = http
        self.auth = auth
        self.paging = paging or Paging()

    @property
    def name(self) -> str:
        """How messages call the forge."""
        return self.http.forge

    async def close(self) -> None:
        await self.http.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        scope: Scope = None,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        expect: Collection[int] = (200,),
        root: str | None = None,
    ) -> Answer:
        """``method`` ``path`` signed for ``scope``: the answer when its status is in
        ``expect``, else :class:`ForgeApiError`."""
        try:
            return await self.http.call(
                method,
                path,
                auth=await self.auth.header(scope),
                params=params,
                body=body,
                expect=expect,
                root=root,
            )
        except ForgeApiError as exc:
            if exc.status == 401:
                self.auth.refused(scope)
            raise

    async def listing(
        self, path: str, params: Params | None = None, *, scope: Scope = None
    ) -> list[Any]:
        """Every item of a paged listing, as far as :attr:`paging` reads."""
        try:
            return await self.http.pages(
                path,
                auth=await self.auth.header(scope),
                params=params,
                size_param=self.paging.size_param,
                size=self.paging.size,
                max_pages=self.paging.max_pages,
            )
        except ForgeApiError as exc:
            if exc.status == 401:
                self.auth.refused(scope)
            raise

    async def send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any],
        reader: Callable[[Any], T],
        *,
        expect: Collection[int] = (200,),
    ) -> T:
        """``method path`` with ``body``, the answer read by ``reader``."""
        answer = await self.call(method, path, body=body, expect=expect)
        return self.read(f"{method} {path}", reader, answer.data)

    async def delete(self, path: str, *, scope: Scope = None) -> bool:
        """``DELETE path``: whether it was there (False: already gone, a 404)."""
        answer = await self.call("DELETE", path, scope=scope, expect=(204, 404))
        return answer.status == 204

    async def whole(
        self, path: str, params: Params | None = None, *, scope: Scope = None
    ) -> list[Any]:
        """A listing asked for in one call, unpaged."""
        answer = await self.call("GET", path, scope=scope, params=params)
        if not isinstance(answer.data, list):
            raise ForgeApiError(f"{self.name} answered GET {path} with no list", answer.status)
        return answer.data

    async def got(
        self, path: str, reader: Callable[[Any], T], *, params: Params | None = None
    ) -> T:
        """``GET path`` read by ``reader``."""
        answer = await self.call("GET", path, params=params)
        return self.read(f"GET {path}", reader, answer.data)

    def read(self, what: str, reader: Callable[[Any], T], data: Any) -> T:
        """``reader(data)``, a wrong shape a :class:`ForgeApiError` naming ``what``."""
        try:
            return reader(data)
        except Malformed as exc:
            raise self.shape(what, exc) from None

    def shape(self, what: str, exc: Malformed) -> ForgeApiError:
        """The error of an answer to ``what`` that lacked the field ``exc`` names."""
        return ForgeApiError(f"{self.name} answered {what} without a valid {exc.args[0]!r}", 200)


def token_rest(
    forge: str,
    api_url: str,
    header: str,
    *,
    session: SessionMaker | None,
    clock: Clock | None,
    paging: Paging | None = None,
) -> Rest:
    """The :class:`Rest` of a client whose every call carries one access token, as
    ``header`` (``token …``, ``Bearer …``) says; a ValueError when it holds none."""
    if not header.partition(" ")[2]:
        raise ValueError(f"a {forge} client needs an access token")
    http = ForgeHttp(forge, api_url, session=session, clock=clock)
    return Rest(http, Token(header), paging)


def utc_stamp(when: datetime) -> str:
    """``when`` as the forges' listings take it after ``since`` (``2025-01-02T03:04:05Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_of(forge: str, what: str, path: str, content: str, sha: str, status: int) -> ForgeFile:
    """The file at ``path`` from the base64 ``content`` a forge answered ``what`` with, cut
    to :data:`MAX_FILE_BYTES` (and said to be)."""
    try:
        raw = base64.b64decode(content, validate=False)
    except (binascii.Error, ValueError):
        raise ForgeApiError(f"{forge} answered {what} with bad base64", status) from None
    text = raw[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
    return ForgeFile(path=path, text=text, sha=sha, truncated=len(raw) > MAX_FILE_BYTES)
