"""Where the redactor learns the secrets Fleetwarden makes at run time: the heartbeat
endpoint's tokens, the metering proxy's keys, the ChatGPT logins' tokens."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fleet.accounts.book import AccountBook
from fleet.accounts.model import Account, AccountKind, AccountSet, login_path
from fleet.accounts.providers import ProviderRoute
from fleet.metering.proxy import MeteringProxy
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor
from fleet.timing.clock import ManualClock
from fleet.watchdog.heartbeat import HeartbeatServer
from tests.fakes.provider.chatgpt import make_jwt

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def _nowhere(events: object) -> None:
    return None


async def test_heartbeat_tokens_are_known_as_soon_as_issued(tmp_path: Path) -> None:
    """A token issued after the redactor was made is redacted; a revoked one (its run over)
    still is — its old run's output may show it — for the agent's last four runs."""
    server = HeartbeatServer(tmp_path, lambda agent, kind: _nowhere(None))
    await server.start()
    try:
        redactor = Redactor([server])
        token = server.token_for("c1")
        assert server.known_secrets() == [Secret(token, "heartbeat token")]
        assert redactor.redact(f"T={token}") == "T=[redacted: heartbeat token]"
        server.revoke("c1")
        assert server.known_secrets() == [Secret(token, "heartbeat token")]
        assert redactor.redact(f"T={token}") == "T=[redacted: heartbeat token]"
        for _ in range(4):  # four more runs: the first one's token is let go
            server.token_for("c1")
            server.revoke("c1")
        assert Secret(token, "heartbeat token") not in server.known_secrets()
        assert len(server.known_secrets()) == 4
    finally:
        await server.stop()


async def test_metering_keys_are_known_and_taken_out_of_the_urls(tmp_path: Path) -> None:
    """An agent's base URL is shown without its key."""
    route = ProviderRoute("anthropic", "http://127.0.0.1:9")
    proxy = MeteringProxy(tmp_path, routes={"anthropic": route}, sink=_nowhere)
    await proxy.start()
    try:
        url = proxy.urls_for("c1")["anthropic"]
        key = url.rsplit("/", 1)[1]
        assert proxy.known_secrets() == [Secret(key, "metering key")]
        shown = Redactor([proxy]).redact(f"ANTHROPIC_BASE_URL={url}")
        assert shown == f"ANTHROPIC_BASE_URL={url.removesuffix(key)}[redacted: metering key]"
    finally:
        await proxy.stop()


async def test_chatgpt_login_tokens_are_known(tmp_path: Path) -> None:
    """The access, refresh and id tokens of each ChatGPT login the book read are secrets."""
    claims = {"https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}, "exp": 2**31}
    access, ident = make_jwt({**claims, "kind": "access"}), make_jwt({**claims, "kind": "id"})
    refresh = "rt-" + "x1y2z3" * 6
    path = login_path(tmp_path, "gpt")
    path.parent.mkdir(parents=True)
    tokens = {"access_token": access, "refresh_token": refresh, "id_token": ident}
    path.write_text(json.dumps({"auth_mode": "chatgpt", "tokens": tokens}))
    account = Account("gpt", "chatgpt", AccountKind.CHATGPT_SUBSCRIPTION, None)
    book = AccountBook(
        AccountSet({"gpt": account}, {}), environ={}, state_dir=tmp_path, clock=ManualClock(T0)
    )
    assert book.known_secrets() == []
    await book.start()
    try:
        assert {s.value for s in book.known_secrets()} == {access, refresh, ident}
        assert Redactor([book]).redact(refresh) == "[redacted: ChatGPT login]"
    finally:
        await book.stop()
