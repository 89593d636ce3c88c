"""The metering proxy holds the accounts' credentials: whatever an agent sends is dropped
and the account's own goes upstream, against fakes that refuse any other credential.

A ChatGPT login is refreshed in one place (eight requests finding it expired make one
refresh), a revoked login or a refused key marks the account with one notice and no
request reaches the provider after, a `rejected` window moves a pooled agent to the next
account, and every quota header becomes the account's window in the ledger.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from fleet.accounts.book import AccountBook
from fleet.accounts.chatgpt import read_login
from fleet.accounts.model import Account, AccountKind, AccountSet, login_path
from fleet.accounts.state import Health
from fleet.ledger import Ledger
from fleet.metering.counting.events import Outcome
from fleet.metering.proxy import MeteringProxy
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.job_context import RecordingBoard
from tests.fakes.provider.chatgpt import CODEX_RESPONSES, FakeChatGpt, codex_headers
from tests.fakes.provider.server import Accepted, FakeProvider, unified_headers
from tests.integration.accounts.accounts_rig import holding_proxy
from tests.polling import eventually

pytestmark = pytest.mark.integration

MAX_TOKEN = "oauth-token-of-claude-max-0001"
TEAM_TOKEN = "oauth-token-of-claude-team-002"
API_KEY = "anthropic-key-of-the-team-0003"
ENV = {"MAX_TOKEN": MAX_TOKEN, "TEAM_TOKEN": TEAM_TOKEN, "TEAM_KEY": API_KEY}
SECRETS = (MAX_TOKEN, TEAM_TOKEN, API_KEY)
ACCOUNTS = AccountSet(
    {
        "claude-max": Account(
            "claude-max", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "MAX_TOKEN"
        ),
        "claude-team": Account(
            "claude-team", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "TEAM_TOKEN"
        ),
        "team-key": Account("team-key", "anthropic", AccountKind.API_KEY, "TEAM_KEY"),
        "codex-pro": Account("codex-pro", "chatgpt", AccountKind.CHATGPT_SUBSCRIPTION),
    },
    {"claude": ("claude-max", "claude-team")},
)
MESSAGES = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 64,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}
RESPONSES = {  # as Codex sends it: its input is a list
    "model": "gpt-5-codex",
    "stream": True,
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    ],
}


@dataclass
class Rig:
    proxy: MeteringProxy
    book: AccountBook
    ledger: Ledger
    anthropic: FakeProvider
    chatgpt: FakeChatGpt
    board: RecordingBoard
    state_dir: Path
    http: aiohttp.ClientSession
    chatgpt_time: list[float]  # the ChatGPT fake's clock, to let its tokens expire

    async def ask_anthropic(self, agent: str, **headers: str) -> tuple[int, str]:
        """A Messages request as Claude Code sends it, with a placeholder credential."""
        url = self.proxy.urls_for(agent)["anthropic"] + "/v1/messages?beta=true"
        sent = {"x-api-key": "fleetwarden-placeholder", "anthropic-version": "2023-06-01"}
        async with self.http.post(url, json=MESSAGES, headers={**sent, **headers}) as answer:
            return answer.status, await answer.text()

    async def ask_codex(self, agent: str) -> tuple[int, str]:
        """A Responses request as Codex on a ChatGPT login sends it (no /v1)."""
        url = self.proxy.urls_for(agent)["chatgpt"] + CODEX_RESPONSES
        headers = {
            "Authorization": "Bearer fleetwarden-placeholder",
            "chatgpt-account-id": "fleetwarden-placeholder",
        }
        async with self.http.post(url, json=RESPONSES, headers=headers) as answer:
            return answer.status, await answer.text()


@pytest.fixture
async def accounts_proxy_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    accept = Accepted(
        api_keys=frozenset({API_KEY}), oauth_tokens=frozenset({MAX_TOKEN, TEAM_TOKEN})
    )
    clock = SystemClock()
    chatgpt_time = [time.time()]
    fake_chatgpt = FakeChatGpt(clock=lambda: chatgpt_time[0])
    async with FakeProvider(accept=accept) as anthropic, fake_chatgpt as chatgpt:
        state_dir = tmp_path / "state"
        login = chatgpt.add_login("acct-1")
        path = login_path(state_dir, "codex-pro")
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(login))
        ledger = await Ledger.open(tmp_path / "ledger.db", clock)
        board = RecordingBoard()
        try:
            async with (
                holding_proxy(
                    ACCOUNTS,
                    environ=ENV,
                    state_dir=state_dir,
                    ledger=ledger,
                    clock=clock,
                    notices=board,
                    anthropic=anthropic,
                    chatgpt=chatgpt,
                ) as (book, proxy),
                aiohttp.ClientSession() as http,
            ):
                yield Rig(
                    proxy, book, ledger, anthropic, chatgpt, board, state_dir, http, chatgpt_time
                )
        finally:
            await ledger.close()


def no_secret_left(rig: Rig, *texts: str) -> None:
    for text in texts:
        assert not any(secret in text for secret in SECRETS), text


async def test_a_subscription_token_is_injected_for_a_placeholder(accounts_proxy_rig: Rig) -> None:
    """The agent's placeholder never reaches the provider; the account's OAuth token and
    the beta flag do, and the usage row names the account."""
    accounts_proxy_rig.book.assign("c1", "claude", "claude-max")
    status, text = await accounts_proxy_rig.ask_anthropic("c1")
    assert status == 200, text
    [request] = accounts_proxy_rig.anthropic.requests
    assert request.credential == MAX_TOKEN
    assert "x-api-key" not in request.headers
    assert "oauth-2025-04-20" in request.headers["anthropic-beta"]
    await accounts_proxy_rig.proxy.recorder.flush()
    [event] = await accounts_proxy_rig.ledger.metering.usage_events()
    assert event.account == "claude-max" and event.outcome is Outcome.OK
    no_secret_left(accounts_proxy_rig, text)


async def test_an_api_key_is_injected_as_x_api_key(accounts_proxy_rig: Rig) -> None:
    """An api_key account: x-api-key with the real key, whatever Bearer the agent sent."""
    accounts_proxy_rig.book.assign("c1", "claude", "team-key")
    status, text = await accounts_proxy_rig.ask_anthropic(
        "c1", Authorization="Bearer stolen-looking-token"
    )
    assert status == 200, text
    [request] = accounts_proxy_rig.anthropic.requests
    assert request.credential == API_KEY and "authorization" not in request.headers


async def test_without_the_proxy_a_placeholder_is_refused(accounts_proxy_rig: Rig) -> None:
    """The fake is strict: the placeholder an agent holds is worth nothing upstream."""
    url = accounts_proxy_rig.anthropic.base_url + "/v1/messages"
    headers = {"x-api-key": "fleetwarden-placeholder", "anthropic-version": "2023-06-01"}
    async with accounts_proxy_rig.http.post(url, json=MESSAGES, headers=headers) as answer:
        assert answer.status == 401


async def test_quota_headers_become_the_accounts_windows(accounts_proxy_rig: Rig) -> None:
    """Unified headers of a subscription land as 5h and 7d windows of that account, in
    the book and in the ledger; Codex's as primary and secondary."""
    now = int(time.time())
    accounts_proxy_rig.anthropic.quota_headers[MAX_TOKEN] = unified_headers(
        five_hour=0.42, seven_day=0.1, reset_5h=now + 3600, reset_7d=now + 86400
    )
    accounts_proxy_rig.chatgpt.codex_headers["acct-1"] = codex_headers(
        primary=12.5, secondary=40.0, primary_reset_after=3600, secondary_reset_after=86400
    )
    accounts_proxy_rig.book.assign("c1", "claude", "claude-max")
    accounts_proxy_rig.book.assign("x1", "codex", "codex-pro")
    assert (await accounts_proxy_rig.ask_anthropic("c1"))[0] == 200
    assert (await accounts_proxy_rig.ask_codex("x1"))[0] == 200
    await accounts_proxy_rig.book.flush()
    windows = {
        (w.account, w.window): w for w in await accounts_proxy_rig.ledger.accounts.quota_windows()
    }
    assert windows["claude-max", "5h"].used == pytest.approx(0.42)
    assert windows["claude-max", "7d"].used == pytest.approx(0.1)
    assert windows["codex-pro", "primary"].used == pytest.approx(0.125)
    assert windows["codex-pro", "secondary"].used == pytest.approx(0.4)
    assert windows["codex-pro", "primary"].resets_at is not None
    signals = await accounts_proxy_rig.ledger.metering.latest_quota_signals()
    assert not any(s.name == "x-codex-turn-state" for s in signals)


async def test_codex_chatgpt_requests_get_the_login_and_are_metered(
    accounts_proxy_rig: Rig,
) -> None:
    """POST …/responses (no /v1) on the chatgpt route: the real access token and account
    id go upstream, and the request is metered as a Responses call."""
    accounts_proxy_rig.book.assign("x1", "codex", "codex-pro")
    status, text = await accounts_proxy_rig.ask_codex("x1")
    assert status == 200, text
    [request] = [r for r in accounts_proxy_rig.chatgpt.requests if r.api is not None]
    assert request.headers["chatgpt-account-id"] == "acct-1"
    assert request.credential == accounts_proxy_rig.chatgpt.login("acct-1").access_token
    await accounts_proxy_rig.proxy.recorder.flush()
    [event] = await accounts_proxy_rig.ledger.metering.usage_events()
    assert (event.api, event.account, event.outcome) == ("responses", "codex-pro", Outcome.OK)


async def test_an_agents_refresh_gets_placeholders_only(accounts_proxy_rig: Rig) -> None:
    """Codex's refresh URL points at the proxy: it answers placeholders and never spends
    the real refresh token."""
    url = accounts_proxy_rig.proxy.urls_for("x1")["chatgpt"] + "/oauth/token"
    body = {"client_id": "app", "grant_type": "refresh_token", "refresh_token": "placeholder"}
    async with accounts_proxy_rig.http.post(url, json=body) as answer:
        tokens = await answer.json()
    assert answer.status == 200
    assert tokens["refresh_token"].startswith("fleetwarden-placeholder")
    assert accounts_proxy_rig.chatgpt.refreshes == 0
    assert read_login(login_path(accounts_proxy_rig.state_dir, "codex-pro")).refresh_token in {
        accounts_proxy_rig.chatgpt.login("acct-1").refresh_token
    }


async def test_eight_agents_finding_the_token_expired_refresh_once(accounts_proxy_rig: Rig) -> None:
    """The provider refuses the expired access token to eight requests at once: one
    refresh upstream, the login rewritten once, and all eight answered."""
    for n in range(8):
        accounts_proxy_rig.book.assign(f"x{n}", "codex", "codex-pro")
    before = read_login(login_path(accounts_proxy_rig.state_dir, "codex-pro"))
    accounts_proxy_rig.chatgpt_time[0] += (
        2 * 3600
    )  # the provider's clock: the access token has expired
    answers = await asyncio.gather(*(accounts_proxy_rig.ask_codex(f"x{n}") for n in range(8)))
    assert [status for status, _ in answers] == [200] * 8, answers
    assert accounts_proxy_rig.chatgpt.refreshes == 1
    after = read_login(login_path(accounts_proxy_rig.state_dir, "codex-pro"))
    assert after.refresh_token != before.refresh_token
    assert after.access_token == accounts_proxy_rig.chatgpt.login("acct-1").access_token
    assert (login_path(accounts_proxy_rig.state_dir, "codex-pro").stat().st_mode & 0o777) == 0o600


async def test_a_revoked_login_marks_the_account_once(accounts_proxy_rig: Rig) -> None:
    """A login the provider revoked: the refresh is refused, the account is marked with
    one notice naming the fix, and later requests never reach the provider."""
    accounts_proxy_rig.book.assign("x1", "codex", "codex-pro")
    accounts_proxy_rig.chatgpt.revoke("acct-1")
    status, text = await accounts_proxy_rig.ask_codex("x1")
    assert status == 403, text
    assert "accounts login codex-pro" in text
    seen = len(accounts_proxy_rig.chatgpt.requests)
    status, text = await accounts_proxy_rig.ask_codex("x1")
    assert status == 403 and len(accounts_proxy_rig.chatgpt.requests) == seen
    notices = await eventually(
        lambda: [n.markdown for n in accounts_proxy_rig.board.posted if "codex-pro" in n.markdown],
        "a notice about codex-pro",
    )
    assert len(notices) == 1 and "fleetwarden accounts login codex-pro" in notices[0]
    mark = accounts_proxy_rig.book.mark_of("codex-pro")
    assert mark is not None and mark.health is Health.UNAUTHORIZED


async def test_a_refused_key_stops_the_requests_without_retrying_upstream(
    accounts_proxy_rig: Rig,
) -> None:
    """401 for an account: marked, one notice, and the agent's retries stop at the proxy."""
    accounts_proxy_rig.book.assign("c1", "claude", "claude-max")
    accounts_proxy_rig.anthropic.accept = Accepted(
        api_keys=frozenset({API_KEY})
    )  # the token was revoked
    status, text = await accounts_proxy_rig.ask_anthropic("c1")
    assert status == 403 and "refused its credential" in text  # our words, not the provider's
    for _ in range(3):
        status, text = await accounts_proxy_rig.ask_anthropic("c1")
        assert status == 403 and "refused its credential" in text
    assert len(accounts_proxy_rig.anthropic.requests) == 1
    await eventually(
        lambda: any("claude-max" in n.markdown for n in accounts_proxy_rig.board.posted),
        "a notice about claude-max",
    )
    assert sum("claude-max" in n.markdown for n in accounts_proxy_rig.board.posted) == 1


async def test_a_rejected_window_moves_a_pooled_agent(accounts_proxy_rig: Rig) -> None:
    """`rejected` on one subscription: the request is sent again on the other account of
    the agent's pool, which it stays on; the agent never sees the refusal."""
    now = int(time.time())
    accounts_proxy_rig.book.assign("c1", "claude", "claude")
    assert accounts_proxy_rig.book.account_of("c1", "anthropic") == "claude-max"
    accounts_proxy_rig.anthropic.quota_headers[MAX_TOKEN] = unified_headers(
        five_hour=1.0, seven_day=0.5, status="rejected", reset_5h=now + 1800, reset_7d=now + 9e4
    )
    accounts_proxy_rig.anthropic.rejecting.add(MAX_TOKEN)
    status, text = await accounts_proxy_rig.ask_anthropic("c1")
    assert status == 200, text
    assert [r.credential for r in accounts_proxy_rig.anthropic.requests] == [MAX_TOKEN, TEAM_TOKEN]
    assert (await accounts_proxy_rig.ask_anthropic("c1"))[0] == 200
    assert accounts_proxy_rig.anthropic.requests[-1].credential == TEAM_TOKEN
    await accounts_proxy_rig.proxy.recorder.flush()
    assert [e.account for e in await accounts_proxy_rig.ledger.metering.usage_events()] == [
        "claude-team"
    ] * 2
    assert accounts_proxy_rig.book.account_of("c1", "anthropic") == "claude-team"
    moved = await eventually(
        lambda: [n for n in accounts_proxy_rig.board.posted if "moved from account" in n.markdown],
        "a notice that c1 moved",
    )
    assert len(moved) == 1 and moved[0].agents == ("c1",)


@pytest.mark.parametrize(
    ("provider", "method", "tail"),
    [
        ("anthropic", "POST", "v1/messages/batches"),  # spends, unmetered
        ("anthropic", "GET", "v1/files"),
        ("chatgpt", "GET", "backend-api/codex/../wham/tasks"),  # normalised outside codex/
        ("chatgpt", "GET", "backend-api/conversations"),  # the subscriber's own chats
        ("chatgpt", "POST", "backend-api/codex/responses/compact"),
    ],
)
async def test_only_model_paths_carry_the_accounts_credential(
    accounts_proxy_rig: Rig, provider: str, method: str, tail: str
) -> None:
    """A held agent's request to any other path goes upstream with no credential at all:
    neither the account's nor the agent's own."""
    accounts_proxy_rig.book.assign("c1", "claude", "claude-max")
    accounts_proxy_rig.book.assign("x1", "codex", "codex-pro")
    agent = "c1" if provider == "anthropic" else "x1"
    url = accounts_proxy_rig.proxy.urls_for(agent)[provider] + "/" + tail
    headers = {"x-api-key": "sneaky", "Authorization": "Bearer sneaky"}
    async with accounts_proxy_rig.http.request(
        method, url, json=MESSAGES, headers=headers
    ) as answer:
        await answer.read()
    fake = accounts_proxy_rig.anthropic if provider == "anthropic" else accounts_proxy_rig.chatgpt
    for request in fake.requests:
        assert request.credential is None
        assert "x-api-key" not in request.headers and "authorization" not in request.headers
        assert not any(s in str(dict(request.headers)) for s in SECRETS)


async def test_an_agent_gets_no_account_it_was_not_assigned(accounts_proxy_rig: Rig) -> None:
    """A Claude agent calling the chatgpt route is not given the ChatGPT login."""
    accounts_proxy_rig.book.assign("c1", "claude", "claude-max")
    url = accounts_proxy_rig.proxy.urls_for("c1")["chatgpt"] + CODEX_RESPONSES
    async with accounts_proxy_rig.http.post(url, json=RESPONSES) as answer:
        assert answer.status != 200
    assert all(r.credential is None for r in accounts_proxy_rig.chatgpt.requests)


async def test_a_spent_per_minute_limit_on_a_success_is_not_a_move(accounts_proxy_rig: Rig) -> None:
    """A 200 whose API-key limits say `remaining: 0` is relayed as is: nothing is sent
    twice, the account is not marked."""
    accounts_proxy_rig.book.assign("c1", "claude", "team-key")
    accounts_proxy_rig.anthropic.quota_headers[API_KEY] = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2026-11-23T12:00:00Z",
    }
    status, _ = await accounts_proxy_rig.ask_anthropic("c1")
    assert status == 200 and len(accounts_proxy_rig.anthropic.requests) == 1
    assert accounts_proxy_rig.book.usable("team-key")


async def test_a_token_endpoint_outage_is_not_a_revoked_login(accounts_proxy_rig: Rig) -> None:
    """A refresh the token endpoint fails without refusing the login (here a 404): the
    agent gets a 503 it may retry, and the account stays usable."""
    accounts_proxy_rig.book.assign("x1", "codex", "codex-pro")
    accounts_proxy_rig.chatgpt_time[0] += 2 * 3600  # the access token has expired
    accounts_proxy_rig.book.logins["codex-pro"].token_url = (
        accounts_proxy_rig.chatgpt.base_url + "/no-token-endpoint-here"
    )
    status, text = await accounts_proxy_rig.ask_codex("x1")
    assert status == 503, text
    assert "it will be tried again" in text
    assert accounts_proxy_rig.book.usable("codex-pro")
