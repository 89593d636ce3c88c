"""One request on its way to the provider: the headers that go, the account's credential
in place of the agent's, and what the provider's answer says about the account.

A ChatGPT login is refreshed here — never by an agent — when its access token is about to
expire, and once more, with the request sent again, when the provider refuses it. Whatever
the provider answers, its quota headers become the account's quota windows, and a refused
credential or a spent window marks the account (:class:`~fleet.accounts.book.AccountBook`);
the agent is then moved to the next account of its pool and the same request is sent
there, so the agent never sees the refusal (Claude Code, told its session limit is hit,
gives up rather than retry). Only the model APIs' paths (:func:`path_rule`) carry an
account's credential; for an agent whose credentials the proxy holds, every other request
goes upstream with none.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, NamedTuple

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from fleet.accounts.book import AccountBook
from fleet.accounts.chatgpt_keeper import LoginRevoked
from fleet.accounts.inject import Credential, inject, strip_credentials
from fleet.accounts.model import AccountKind
from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.accounts.quota import from_headers
from fleet.metering.wire.endpoints import Kind, decide
from fleet.timing.clock import Clock

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_SLICE: Final = 256 * 1024  # bytes of a request body written upstream at a time
# Request bodies go upstream decoded (:mod:`fleet.metering.wire.body`): no Content-Encoding.
_NOT_FORWARDED: Final = HOP_BY_HOP | {
    "host",
    "content-length",
    "accept-encoding",
    "content-encoding",
}


class PathRule(NamedTuple):
    """What a request's path is: whether an account's credential may go with it, and
    whether it is a model request (whose 401 says the credential was refused)."""

    credentialed: bool
    model: bool


def path_rule(route: ProviderRoute, method: str, tail: str) -> PathRule:
    """How the proxy treats ``method tail`` on ``route``: only the known endpoints of
    :mod:`fleet.metering.wire.endpoints` carry a held credential. Anything else an agent the
    proxy holds credentials for asks for (a path the operator let through) goes upstream
    with no credential at all: it cannot spend, read or mint anything with the account."""
    decision = decide(route, method, tail)
    return PathRule(decision.credentialed, decision.kind is Kind.METERED)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One agent request as it is to go upstream: the agent's request and its body, the
    route and full URL, the time limits; whose it is, whether it is a model request, and
    whether the agent's own credential headers are dropped when none is injected."""

    request: web.Request
    route: ProviderRoute
    url: str
    body: bytes | bytearray
    limits: aiohttp.ClientTimeout
    agent: str = ""
    model_request: bool = False
    strip: bool = False


@dataclass(frozen=True, slots=True)
class Send:
    """How a request goes upstream: the credential to inject (if any), whether it is a
    model request, and whether the agent's own credential headers are to be dropped."""

    credential: Credential | None
    model: bool
    strip: bool


class Upstream:
    """Sends requests upstream on the proxy's pooled session (``session``, set at start)."""

    def __init__(self, accounts: AccountBook | None, clock: Clock) -> None:
        self.accounts = accounts
        self._clock = clock
        self.session: aiohttp.ClientSession | None = None

    async def open(
        self, out: Outgoing, credential: Credential | None
    ) -> tuple[aiohttp.ClientResponse, Credential | None]:
        """The provider's answer to ``out`` (its body not read yet), and the credential
        that got it.

        For a model request whose answer is 401 or 429: a refused ChatGPT access token is
        refreshed once and the request sent again; an account that the answer left
        unusable (its credential refused, its window spent) is left for the next account of
        the agent's pool, and the request sent there — each account once at most. Raises
        :class:`~fleet.accounts.model.AccountError` when a login cannot be refreshed (a
        :class:`~fleet.accounts.chatgpt_keeper.LoginRevoked` one marks the account)."""
        model_request = out.model_request
        credential = await self._fresh(credential, stale=None)
        tried: set[str] = set()
        refreshed = False
        while True:
            upstream = await self._send(out, credential)
            if credential is None or self.accounts is None:
                return upstream, credential
            # A ChatGPT access token refused is first refreshed: only a refusal after that
            # (or of the refresh itself) says the account's credential is bad — and only a
            # model request's answer is taken as the provider's word on the account.
            retry_login = _is_chatgpt(credential) and not refreshed
            if model_request:
                refused = upstream.status == 401 and not retry_login
                self._judge(upstream, credential, refused=refused)
            if upstream.status not in (401, 429) or (upstream.status == 429 and not model_request):
                return upstream, credential
            try:
                if upstream.status == 401 and retry_login:
                    refreshed = True
                    renewed = await self._fresh(credential, stale=credential.secret)
                    if renewed is not None and renewed.secret != credential.secret:
                        upstream.release()
                        credential = renewed
                        continue
            except LoginRevoked:
                pass  # marked: the pool's next account, if any, below
            except BaseException:
                upstream.release()
                raise
            if not model_request or self.accounts.usable(credential.account.name):
                return upstream, credential
            tried.add(credential.account.name)
            moved = self.accounts.resolve(out.agent, out.route.name)
            if not isinstance(moved, Credential) or moved.account.name in tried:
                return upstream, credential
            upstream.release()
            credential = await self._fresh(moved, stale=None)
            refreshed = False

    def _judge(
        self, upstream: aiohttp.ClientResponse, credential: Credential, *, refused: bool
    ) -> None:
        """What a model request's answer says about the account: its quota windows, and
        (``refused``) that its credential is bad."""
        assert self.accounts is not None
        account = credential.account.name
        now = self._clock.now()
        self.accounts.observe(from_headers(upstream.headers, account=account, at=now))
        if refused:
            self.accounts.refused(account, upstream.status)

    async def _send(self, out: Outgoing, credential: Credential | None) -> aiohttp.ClientResponse:
        assert self.session is not None
        request = out.request
        headers = request_headers(request.headers)
        if credential is not None:
            inject(headers, credential, anthropic_api=out.route.api is ProviderApi.ANTHROPIC)
        elif out.strip:
            strip_credentials(headers)
        data: bytes | bytearray | AsyncIterator[memoryview] | None = None
        if len(out.body) > _SLICE:
            # In slices, each sent before the next: the transport never holds a copy.
            headers["Content-Length"] = str(len(out.body))
            data = _slices(out.body)
        elif out.body or request.can_read_body:
            data = out.body  # small: in one write with the headers
        return await self.session.request(
            request.method,
            out.url,
            headers=headers,
            data=data,
            timeout=out.limits,
            allow_redirects=False,
        )

    async def _fresh(
        self, credential: Credential | None, *, stale: str | None
    ) -> Credential | None:
        """``credential`` with a ChatGPT login refreshed when it is about to expire, or
        when ``stale`` (its access token) was just refused. Raises ``AccountError`` when
        the login cannot be refreshed (a revoked login marks the account)."""
        if credential is None or self.accounts is None or not _is_chatgpt(credential):
            return credential
        name = credential.account.name
        keeper = self.accounts.logins.get(name)
        login = keeper.login if keeper is not None else None
        if keeper is None or login is None:
            return credential
        now = self._clock.now()
        if stale is None and not login.stale(now):
            return credential
        assert self.session is not None
        try:
            login = await keeper.refresh(self.session, stale=stale or login.access_token, now=now)
        except LoginRevoked as exc:
            self.accounts.revoked(name, str(exc))
            raise
        return Credential(credential.account, login.access_token, login.account_id)


def request_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The agent's headers as they go upstream: hop-by-hop ones (and those its
    ``Connection`` names) dropped, and ``identity`` asked for, so the answer can be read."""
    named = {
        token.strip().lower()
        for value in headers.getall("connection", [])
        for token in value.split(",")
    }
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower not in _NOT_FORWARDED and lower not in named:
            out.add(name, value)
    out["Accept-Encoding"] = "identity"
    return out


async def _slices(body: bytes | bytearray) -> AsyncIterator[memoryview]:
    with memoryview(body) as view:
        for start in range(0, len(view), _SLICE):
            yield view[start : start + _SLICE]


def _is_chatgpt(credential: Credential | None) -> bool:
    return credential is not None and credential.account.kind is AccountKind.CHATGPT_SUBSCRIPTION
