"""The JSON over HTTP every forge client speaks: one call, its time limit, its size cap,
and its failures turned into :class:`~fleet.forge.model.ForgeApiError`.

A failure names the forge, the call (method and path) and what the forge said, cut to
one line; it never carries a credential — the call's own ``Authorization`` value is
blotted out of the forge's words too, should they echo it. A forge saying "not now"
(403 or 429 with ``X-RateLimit-Remaining: 0`` or ``Retry-After``) is a
:class:`ForgeRateLimited` that says when to try again. Bodies are never logged.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
from multidict import CIMultiDict

from fleet.capped_body import OverCap, read_capped
from fleet.forge.model import ForgeApiError
from fleet.hostile_json import JsonRefused, read_json
from fleet.timing.clock import Clock, SystemClock

log = logging.getLogger(__name__)

TIMEOUT_SECONDS: Final = 30.0
MAX_ANSWER_BYTES: Final = 8 * 1024 * 1024
_MESSAGE_CHARS: Final = 200

SessionMaker = Callable[[], aiohttp.ClientSession]
Params = Mapping[str, str | int]


class ForgeRateLimited(ForgeApiError):
    """The forge refused the call for its rate limit; ``retry_at`` is when it may be
    tried again (None when the forge did not say)."""

    def __init__(self, message: str, status: int, retry_at: datetime | None) -> None:
        super().__init__(message, status)
        self.retry_at = retry_at


@dataclass(frozen=True, slots=True)
class Answer:
    """A forge's answer: its status, its JSON (None for an empty body) and headers
    (looked up without regard to case)."""

    status: int
    data: Any
    headers: Mapping[str, str]


def one_line(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (forge words are hostile)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _blot(text: str, secrets: Collection[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[credential]")
    return text


def _forge_message(data: Any, raw: bytes) -> str:
    """What the forge said about an error, from its JSON ``message`` (GitHub, Gitea and
    GitLab put it there; GitLab's may be a list or an object of field errors), GitLab's
    ``error`` and GitHub's ``errors`` list."""
    if isinstance(data, dict):
        text = _said(data.get("message")) or _said(data.get("error"))
        errors = data.get("errors")
        if isinstance(errors, list):
            details = [_error_detail(item) for item in errors[:3]]
            text = "; ".join(part for part in [text, *details] if part)
        return text
    return raw[:_MESSAGE_CHARS].decode("utf-8", errors="replace")


def _said(message: Any) -> str:
    """A forge's ``message``: a string, a list of them, or field → list of them."""
    if isinstance(message, str):
        return message
    if isinstance(message, list):
        return "; ".join(item for item in message[:3] if isinstance(item, str))
    if isinstance(message, dict):
        parts = [f"{key} {_said(value)}" for key, value in list(message.items())[:3]]
        return "; ".join(part for part in parts if isinstance(part, str))
    return ""


def _error_detail(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        message = item.get("message")
        if isinstance(message, str):
            return message
        parts = [item.get(key) for key in ("resource", "field", "code")]
        return " ".join(str(part) for part in parts if isinstance(part, str))
    return ""


def retry_at(status: int, headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When a rate-limited call may be tried again, or None when ``status`` and
    ``headers`` do not say the forge is limiting this client."""
    if status not in (403, 429):
        return None
    after = headers.get("Retry-After")
    if after is not None and after.strip().isdigit():
        return now + timedelta(seconds=int(after.strip()))
    if headers.get("X-RateLimit-Remaining", "").strip() == "0":
        reset = headers.get("X-RateLimit-Reset", "").strip()
        if reset.isdigit():
            return max(now, datetime.fromtimestamp(int(reset), UTC))
        return now + timedelta(minutes=1)
    return None


class ForgeHttp:
    """JSON calls to one forge's API root. ``session`` makes the aiohttp session to use
    (its owner closes it); without one the client makes and closes its own."""

    def __init__(
        self,
        forge: str,
        api_url: str,
        *,
        session: SessionMaker | None = None,
        timeout: float = TIMEOUT_SECONDS,
        max_bytes: int = MAX_ANSWER_BYTES,
        user_agent: str = "Fleetwarden",
        headers: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.forge = forge
        self.api_url = api_url.rstrip("/")
        self._make = session
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._seconds = timeout
        self._max_bytes = max_bytes
        self._headers = {"User-Agent": user_agent, **(headers or {})}
        self._clock = clock or SystemClock()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._make() if self._make else aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the session this client made itself (a lent one stays open)."""
        if self._make is None and self._session is not None:
            await self._session.close()
        self._session = None

    async def call(
        self,
        method: str,
        path: str,
        *,
        auth: str | None,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        expect: Collection[int] = (200,),
        root: str | None = None,
    ) -> Answer:
        """``method`` ``path`` (already quoted, under the API root, or under ``root``: the
        same forge's other API, GitHub's GraphQL) with ``auth`` as the ``Authorization``
        header; the answer when its status is in ``expect``, else
        :class:`ForgeApiError`. Redirects are not followed: a forge's 3xx is an
        answer like any other."""
        what = f"{method} {path}"
        headers = dict(self._headers)
        if auth is not None:
            headers["Authorization"] = auth
        secrets = [auth.partition(" ")[2]] if auth else []
        try:
            async with self._get_session().request(
                method,
                (root or self.api_url).rstrip("/") + path,
                params=dict(params or {}),
                json=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                raw = await self._read(response, what)
                answer_headers = CIMultiDict(response.headers)
                status = response.status
        except TimeoutError:
            raise ForgeApiError(
                f"{self.forge} did not answer {what} within {self._seconds:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            reason = one_line(_blot(str(exc), secrets)) or type(exc).__name__
            raise ForgeApiError(f"could not reach {self.forge} for {what}: {reason}") from None
        data = _json(raw)
        log.debug("%s %s: %d (%d bytes)", self.forge, what, status, len(raw))
        if status in expect:
            if data is _NOT_JSON and 200 <= status < 300:
                raise ForgeApiError(f"{self.forge} answered {what} with something not JSON", status)
            return Answer(status, None if data is _NOT_JSON else data, answer_headers)
        said = one_line(_blot(_forge_message(data, raw), secrets))
        message = f"{self.forge} refused {what}: {status}" + (f" {said}" if said else "")
        now = self._clock.now()
        when = retry_at(status, answer_headers, now)
        if when is not None:
            wait = max(0, round((when - now).total_seconds()))
            raise ForgeRateLimited(
                f"{message} (rate limited: retry after {when:%H:%M:%S} UTC, in {wait} s)",
                status,
                when,
            )
        raise ForgeApiError(message, status)

    async def _read(self, response: aiohttp.ClientResponse, what: str) -> bytes:
        try:
            return await read_capped(response, self._max_bytes)
        except OverCap as exc:
            size = (
                f"{exc.declared} bytes, more than the {self._max_bytes}"
                if exc.declared is not None
                else f"more than the {self._max_bytes} bytes"
            )
            raise ForgeApiError(
                f"{self.forge} answered {what} with {size} taken", response.status
            ) from None

    async def pages(
        self,
        path: str,
        *,
        auth: str | None,
        params: Params | None = None,
        size_param: str = "per_page",
        size: int = 100,
        max_pages: int = 10,
    ) -> list[Any]:
        """Every item of a listing, page after page (``page=1…``), at most ``max_pages``
        pages, as far as the forge says there are more (:func:`next_page`)."""
        items: list[Any] = []
        page: int | None = 1
        for _ in range(max_pages):
            if page is None:
                break
            query = {**(params or {}), size_param: size, "page": page}
            answer = await self.call("GET", path, auth=auth, params=query)
            if not isinstance(answer.data, list):
                raise ForgeApiError(f"{self.forge} answered GET {path} with no list", answer.status)
            items.extend(answer.data)
            page = next_page(page, len(answer.data), len(items), size, answer.headers)
        return items


def next_page(page: int, got: int, total: int, size: int, headers: Mapping[str, str]) -> int | None:
    """The page after ``page`` (which held ``got`` items, ``total`` so far, ``size``
    asked), or None when it was the last: as GitLab's ``X-Next-Page`` says, else as far
    as Gitea's ``X-Total-Count`` (its pages may be cut shorter than asked), else while a
    ``Link`` (GitHub's, Gitea's) names a ``rel="next"``, else to an empty or short page."""
    following = headers.get("X-Next-Page")
    if following is not None:
        wanted = following.strip()
        return int(wanted) if wanted.isdigit() and int(wanted) > page else None
    counted = headers.get("X-Total-Count", "").strip()
    if counted.isdigit():
        return page + 1 if got and total < int(counted) else None
    link = headers.get("Link")
    if link is not None:
        return page + 1 if got and _NEXT.search(link) else None
    return page + 1 if got >= size else None


_NEXT: Final = re.compile(r'rel="?next"?')


class _NotJson:
    pass


_NOT_JSON: Final = _NotJson()


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return read_json(raw)
    except JsonRefused:
        return _NOT_JSON
