"""The dashboard's HTTP rules on a real aiohttp server on loopback, with fixed page data:
who may read what, form posts only from its own page, the CSV, and a stream that ends
when its session does; the hosts it answers to, the headers on every answer, and what one
client or one session may hold."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection, DashboardSettings
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.task_board import TaskGauges
from bot.dashboard.pages.views import UnknownPage, Views
from bot.dashboard.serving.server import DashboardServer, DashboardUnavailable
from fleet.ledger import Ledger
from fleet.ledger.records.tasks import TASK_STATES
from fleet.timing.clock import ManualClock
from tests.postgres_server import free_port

ALICE = "@alice:example.org"
FLEET: dict[str, Any] = {
    "generated_at": None,
    "orchestrator": "o",
    "agents": [],
    "totals": {
        "agents": 0,
        "by_state": {},
        "with_problems": 0,
        "tokens_today": 0,
        "cost_today_usd": 0.0,
    },
}


class FixedBoard:
    """A register without tasks."""

    async def gauges(self) -> TaskGauges:
        return TaskGauges(dict.fromkeys(TASK_STATES, 0), 0.0, 0.0, 0.0, 0)


class FixedMessages:
    """No message between agents."""

    async def counts(self) -> dict[tuple[str, str], int]:
        return {}

    async def page(self, agent: str | None, limit: int) -> dict[str, Any]:
        return {"agent": agent, "messages": []}


class FixedViews:
    """Page data that never changes (the views' own tests read a real fleet)."""

    version = 0
    failing = False  # the fleet's view raises, as a bug would
    models: list[str]  # a usage row for each
    asked: list[int]  # the entries each agent page asked for

    def __init__(self) -> None:
        self.models = ['=HYPERLINK("http://evil")']
        self.asked = []
        self.board = FixedBoard()
        self.messages = FixedMessages()

    async def fleet(self) -> dict[str, Any]:
        if self.failing:
            raise RuntimeError("a view failed with /home/op/secret-path in its message")
        return {**FLEET, "orchestrator": f"v{self.version}"}

    async def usage(self) -> dict[str, Any]:
        row = {
            "day": "2025-03-01",
            "agent": "coder-1",
            "host": "local",
            "provider": "x",
            "account": "",
            "requests": 1,
            "input_tokens": 1,
            "output_tokens": 1,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "tokens": 2,
            "cost_usd": 0.0,
        }
        return {
            "generated_at": None,
            "orchestrator": "o",
            "days": 7,
            "timezone": "UTC",
            "rows": [{**row, "model": model} for model in self.models],
            "by": {k: {} for k in ("agent", "model", "account", "host", "day")},
        }

    async def budgets(self) -> dict[str, Any]:
        return {"generated_at": None, "orchestrator": "o", "budgets": []}

    async def usage_after(self, after: int) -> tuple[list[Any], int]:
        return [], after

    async def changes_ended(self) -> list[Any]:
        return []

    async def check_agent(self, name: str) -> None:
        raise UnknownPage(name)

    async def agent(self, name: str, entries: int) -> dict[str, Any]:
        self.asked.append(entries)
        raise UnknownPage(name)


def made(
    settings: DashboardSettings,
    ledger: Ledger,
    signins: SignIns,
    tmp_path: Path,
    environ: dict[str, str],
) -> DashboardServer:
    return DashboardServer(
        settings,
        views=cast(Views, FixedViews()),
        signins=signins,
        metrics=Metrics(),
        state_dir=tmp_path,
        environ=environ,
    )


async def serve(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, environ: dict[str, str], **section: Any
) -> tuple[DashboardServer, SignIns, Acl]:
    acl = Acl([Grant(ALICE, Role.VIEWER)])
    signins = SignIns(ledger.dashboard, acl, clock)
    section.setdefault("listen", f"127.0.0.1:{free_port()}")
    server = made(DashboardSection(**section).settings(), ledger, signins, tmp_path, environ)
    await server.start()
    return server, signins, acl


async def signed_in(http: aiohttp.ClientSession, base: str, signins: SignIns) -> None:
    secret = await signins.issue("matrix", ALICE, ())
    assert secret is not None
    async with http.post(
        f"{base}/signin", data={"link": secret}, headers={"Sec-Fetch-Site": "same-origin"}
    ) as reply:
        assert reply.status == 200 and str(reply.url) == f"{base}/"


async def test_metrics_need_a_token_or_a_session_from_loopback_too(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """A loopback client is anyone on this machine (or a web page rebound to it): without a
    token configured, `/metrics` answers a signed-in session only; with one, the token."""
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with http.get(f"{base}/metrics") as reply:
            assert reply.status == 401
            assert "metrics_token_env" in await reply.text()
        await signed_in(http, base, signins)
        async with http.get(f"{base}/metrics") as reply:
            assert reply.status == 200
    finally:
        await server.stop()
    server, _, _ = await serve(
        ledger, clock, tmp_path, {"FW_TOKEN": "s3cret-token"}, metrics_token_env="FW_TOKEN"
    )
    base = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as stranger:
        try:
            async with stranger.get(f"{base}/metrics") as reply:
                assert reply.status == 401
            async with stranger.get(
                f"{base}/metrics", headers={"Authorization": "Bearer x"}
            ) as reply:
                assert reply.status == 401
            auth = {"Authorization": "Bearer s3cret-token"}
            async with stranger.get(f"{base}/metrics", headers=auth) as reply:
                assert reply.status == 200
            async with stranger.get(f"{base}/api/fleet", headers=auth) as reply:
                assert reply.status == 200 and (await reply.json())["agents"] == []
        finally:
            await server.stop()


async def test_a_form_post_from_another_site_is_refused_and_a_get_never_signs_in(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Only the link's own page may use it: a cross-site post and a link preview's GET
    leave it unused."""
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    base = f"http://127.0.0.1:{server.port}"
    try:
        secret = await signins.issue("matrix", ALICE, ())
        assert secret is not None
        async with http.get(f"{base}/signin/{secret}") as reply:  # a preview fetches it
            assert reply.status == 200 and "Sign in" in await reply.text()
        crossed = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
        async with http.post(f"{base}/signin", data={"link": secret}, headers=crossed) as reply:
            assert reply.status == 403
        await signed_in_with(http, base, secret)
    finally:
        await server.stop()


async def test_no_log_line_carries_a_sign_in_links_secret(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A browser opening a sign-in link writes no line naming its path (the secret) to any
    logger, aiohttp's access log included, at any level."""
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    base = f"http://127.0.0.1:{server.port}"
    caplog.set_level(logging.DEBUG)
    try:
        secret = await signins.issue("matrix", ALICE, ())
        assert secret is not None
        async with http.get(f"{base}/signin/{secret}") as reply:
            assert reply.status == 200
        async with http.get(f"{base}/signin/{secret}x") as reply:
            assert reply.status in (200, 404)
        await signed_in_with(http, base, secret)
    finally:
        await server.stop()
    assert not [r for r in caplog.records if r.name.startswith("aiohttp.access")]
    assert secret[:16] not in caplog.text


async def signed_in_with(http: aiohttp.ClientSession, base: str, secret: str) -> None:
    async with http.post(
        f"{base}/signin", data={"link": secret}, headers={"Sec-Fetch-Site": "same-origin"}
    ) as reply:
        assert reply.status == 200 and str(reply.url) == f"{base}/"
        assert reply.history[0].status == 303
        cookie = reply.history[0].headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie


async def test_the_csv_has_every_row_and_no_formula(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """`/usage.csv` is a download; a cell that would start a formula is quoted."""
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    base = f"http://127.0.0.1:{server.port}"
    try:
        await signed_in(http, base, signins)
        async with http.get(f"{base}/usage.csv") as reply:
            assert reply.headers["Content-Disposition"].startswith("attachment")
            lines = (await reply.text()).splitlines()
        assert lines[0].startswith("day,agent,host,provider,model,account,requests")
        assert "'=HYPERLINK" in lines[1]
    finally:
        await server.stop()


async def test_an_open_stream_ends_when_its_session_is_revoked(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`/events` sends the page's fragment, then `signedout` once the session ends."""
    monkeypatch.setattr("bot.dashboard.serving.server._STREAM_CHECK", 0.1)
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    base = f"http://127.0.0.1:{server.port}"
    try:
        await signed_in(http, base, signins)
        async with http.get(f"{base}/events?topic=nope") as reply:
            assert reply.status == 404
        async with http.get(f"{base}/events?topic=agent:ghost") as reply:
            assert reply.status == 404
        async with http.get(f"{base}/events?topic=fleet") as reply:
            assert reply.headers["Content-Type"] == "text/event-stream"
            seen = ""
            while "event: fragment" not in seen:
                seen += (await reply.content.readline()).decode()
            await signins.revoke("matrix", ALICE)
            await server.hub.refresh_sessions()  # the scheduler's job, run here
            while "event: signedout" not in seen:
                seen += (await reply.content.readline()).decode()
        async with http.get(f"{base}/") as reply:
            assert reply.status == 401
    finally:
        await server.stop()


async def test_a_session_opened_after_the_hubs_last_look_keeps_its_stream(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hub's set of live sessions is read every few seconds; a newer session is asked
    of the ledger, not signed out."""
    monkeypatch.setattr("bot.dashboard.serving.server._STREAM_CHECK", 0.05)
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    base = f"http://127.0.0.1:{server.port}"
    jar = aiohttp.CookieJar(unsafe=True)
    async with (
        aiohttp.ClientSession(cookie_jar=jar) as first,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as second,
    ):
        try:
            await signed_in(first, base, signins)
            async with first.get(f"{base}/events?topic=fleet") as opened:
                await opened.content.readline()
                await server.hub.refresh_sessions()  # the scheduler's job: the first only
                assert server.hub.live_sessions is not None
                await signed_in(second, base, signins)
                async with second.get(f"{base}/events?topic=fleet") as stream:
                    seen = ""
                    for _ in range(30):  # a few checks of the session go by
                        seen += (await stream.content.readline()).decode()
                    assert "signedout" not in seen and "event: fragment" in seen
        finally:
            await server.stop()


async def test_a_taken_port_or_a_missing_certificate_is_said_plainly(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The orchestrator stops at start saying what to change, not with a traceback."""
    server, _, _ = await serve(ledger, clock, tmp_path, {})
    try:
        taken = replace(server.settings, port=server.port or 0)
        nobody = SignIns(ledger.dashboard, Acl([]), clock)
        with pytest.raises(DashboardUnavailable, match=r"cannot listen on 127\.0\.0\.1:\d+"):
            await made(taken, ledger, nobody, tmp_path, {}).start()
        missing = replace(taken, port=0, tls=(tmp_path / "no.pem", tmp_path / "no.key"))
        with pytest.raises(DashboardUnavailable, match="cannot load its tls_cert and tls_key"):
            await made(missing, ledger, nobody, tmp_path, {}).start()
    finally:
        await server.stop()
