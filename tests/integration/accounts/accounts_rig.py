"""What the account tests share: an account book and the metering proxy holding it, in
front of the Anthropic and ChatGPT fakes, on a real ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fleet.accounts.book import AccountBook
from fleet.accounts.model import AccountSet
from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.ledger import Ledger
from fleet.metering.config import MeteringSettings
from fleet.metering.proxy import MeteringProxy
from fleet.notices import NoticeBoard
from fleet.timing.clock import Clock
from tests.fakes.provider.chatgpt import FakeChatGpt
from tests.fakes.provider.server import FakeProvider


@asynccontextmanager
async def holding_proxy(
    accounts: AccountSet,
    *,
    environ: Mapping[str, str],
    state_dir: Path,
    ledger: Ledger,
    clock: Clock,
    notices: NoticeBoard,
    anthropic: FakeProvider,
    chatgpt: FakeChatGpt,
) -> AsyncIterator[tuple[AccountBook, MeteringProxy]]:
    """The book (ChatGPT logins refreshed at the fake's token endpoint) and the proxy,
    started; both stopped on exit."""
    book = AccountBook(
        accounts,
        environ=environ,
        state_dir=state_dir,
        clock=clock,
        ledger=ledger.accounts,
        notices=notices,
    )
    for name in accounts.accounts:
        book.set_token_url(name, chatgpt.base_url + "/oauth/token")
    await book.start()
    routes = {
        "anthropic": ProviderRoute("anthropic", anthropic.base_url, ProviderApi.ANTHROPIC),
        "chatgpt": ProviderRoute("chatgpt", chatgpt.base_url, ProviderApi.OPENAI),
    }
    proxy = MeteringProxy(
        state_dir,
        routes=routes,
        sink=ledger.metering.record_metering,
        settings=MeteringSettings(flush_interval=0.05),
        accounts=book,
    )
    await proxy.start()
    try:
        yield book, proxy
    finally:
        await proxy.stop()
        await book.stop()
