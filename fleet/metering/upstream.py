"""One request on its way to the provider: the headers that go, the account's credential
in place of the agent's, and what the provider's answer says about the account.

A ChatGPT login is refreshed here — never by an agent — when its access token is about to
expire, and once more, with the request sent again, when the provider refuses it. Whatever
the provider answers, its quota headers become the account's quota windows, and a refused
credential or a spent window marks the account (:class:`~fleet.accounts.book.AccountBook`);
the agent is then moved to the next account of its pool and the same request is sent
there, so the agent never sees the refusal (Claude Code, told its session limit is hit,
gives up rather than retry).
"""

from __future__ import annotations

from typing import Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from fleet.accounts.book import AccountBook, Credential
from fleet.accounts.chatgpt import LoginRevoked
from fleet.accounts.inject import inject
from fleet.accounts.model import AccountKind
from fleet.accounts.quota import from_headers
from fleet.clock import Clock
from fleet.metering.config import ProviderApi, ProviderRoute

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
_NOT_FORWARDED: Final = HOP_BY_HOP | {"host", "content-length", "accept-encoding"}


class Upstream:
    """Sends requests upstream on the proxy's pooled session (``session``, set at start)."""

    def __init__(self, accounts: AccountBook | None, clock: Clock) -> None:
        self.accounts = accounts
        self._clock = clock
        self.session: aiohttp.ClientSession | None = None

    async def open(
        self,
        request: web.Request,
        route: ProviderRoute,
        url: str,
        body: bytes,
        limits: aiohttp.ClientTimeout,
        credential: Credential | None,
        *,
        agent: str = "",
        model_request: bool = True,
    ) -> tuple[aiohttp.ClientResponse, Credential | None]:
        """The provider's answer to ``request`` (its body not read yet). A 401 to a model
        request marks the account (a preflight or a side call is no proof either way).
        Raises :class:`~fleet.accounts.model.AccountError` when a login cannot be
        refreshed."""
        credential = await self._fresh(credential, stale=None)
        upstream = await self._send(request, route, url, body, limits, credential)
        if upstream.status == 401 and _is_chatgpt(credential):
            assert credential is not None
            renewed = await self._fresh(credential, stale=credential.secret)
            if renewed is not None and renewed.secret != credential.secret:
                upstream.release()
                credential = renewed
                upstream = await self._send(request, route, url, body, limits, credential)
        if credential is None or self.accounts is None:
            return upstream, credential
        self._judge(upstream, credential, model_request)
        if model_request and not self.accounts.usable(credential.account.name):
            moved = self.accounts.resolve(agent, route.name)
            if isinstance(moved, Credential) and moved.account != credential.account:
                upstream.release()
                credential = await self._fresh(moved, stale=None)
                assert credential is not None
                upstream = await self._send(request, route, url, body, limits, credential)
                self._judge(upstream, credential, model_request)
        return upstream, credential

    def _judge(
        self, upstream: aiohttp.ClientResponse, credential: Credential, model_request: bool
    ) -> None:
        """What the answer says about the account: its windows, a refused credential."""
        assert self.accounts is not None
        account = credential.account.name
        now = self._clock.now()
        self.accounts.observe(from_headers(upstream.headers, account=account, at=now))
        if upstream.status == 401 and model_request:  # the credential was refused
            self.accounts.refused(account, upstream.status)

    async def _send(
        self,
        request: web.Request,
        route: ProviderRoute,
        url: str,
        body: bytes,
        limits: aiohttp.ClientTimeout,
        credential: Credential | None,
    ) -> aiohttp.ClientResponse:
        assert self.session is not None
        headers = request_headers(request.headers)
        if credential is not None:
            inject(headers, credential, anthropic_api=route.api is ProviderApi.ANTHROPIC)
        return await self.session.request(
            request.method,
            url,
            headers=headers,
            data=body if body or request.can_read_body else None,
            timeout=limits,
            allow_redirects=False,
        )

    async def _fresh(
        self, credential: Credential | None, *, stale: str | None
    ) -> Credential | None:
        """``credential`` with a ChatGPT login refreshed when it is about to expire, or
        when ``stale`` (its access token) was just refused. Raises ``AccountError`` when
        the login cannot be refreshed (the account is then marked)."""
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


def _is_chatgpt(credential: Credential | None) -> bool:
    return credential is not None and credential.account.kind is AccountKind.CHATGPT_SUBSCRIPTION
