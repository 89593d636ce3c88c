"""The dashboard against the machine it runs on, on a real aiohttp server on loopback: the
hosts it answers to, the headers on every answer (errors included), numbers in the query,
CSV cells, and what one address or one session may hold."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import os
from typing import Any, cast

import aiohttp
import pytest

from bot.config.dashboard import DashboardSection
from bot.dashboard.serving import listener
from bot.dashboard.serving.listener import allowed_hosts, host_allowed
from bot.dashboard.serving.live import MAX_PER_SESSION
from bot.dashboard.serving.server import DashboardServer
from fleet.connections.limits import Limits
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.polling import eventually
from tests.unit.bot.dashboard.test_dashboard_server import FixedViews, serve, signed_in

TOKEN = {"FW_TOKEN": "s3cret-token"}
AUTH = {"Authorization": "Bearer s3cret-token"}
AUTH_LINE = b"Authorization: Bearer s3cret-token\r\n"
ME = f"uid {os.geteuid()}"  # the peer this test's own connections count against
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def views(server: DashboardServer) -> FixedViews:
    return cast(FixedViews, server._views)


async def raw(port: int, request: bytes, source: str = "127.0.0.1") -> bytes:
    """``request`` sent as it is (nothing when empty); the whole answer (the server closes
    after it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        if request:
            writer.write(request)
            await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def assert_strict(headers: Any) -> None:
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def head_of(answer: bytes) -> dict[str, str]:
    lines = answer.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")[1:]
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


async def test_a_request_naming_another_host_is_refused(
    ledger: Ledger, clock: ManualClock, tmp_path: Any, http: aiohttp.ClientSession
) -> None:
    """DNS rebinding: a page on another name pointed at this machine reaches the port, but
    its requests name that host. Only the listen address (with its port) and the public
    URL's host (with any port: a tunnel may change it) are answered; the rest get a 421
    saying where the dashboard is, token or not."""
    server, _, _ = await serve(
        ledger,
        clock,
        tmp_path,
        TOKEN,
        metrics_token_env="FW_TOKEN",
        public_url="https://fleet.example.org",
    )
    port = server.port or 0
    base = f"http://127.0.0.1:{port}"
    try:
        for host in (f"rebound.example:{port}", f"127.0.0.1:{port + 1}", f"localhost:{port}"):
            for path in ("/metrics", "/api/fleet", "/", "/static/dashboard.js"):
                async with http.get(base + path, headers={**AUTH, "Host": host}) as reply:
                    text = await reply.text()
                    assert reply.status == 421, (host, path, reply.status)
                    assert "Open https://fleet.example.org;" in text
                    assert "fleetwarden_" not in text and "orchestrator" not in text
                    assert_strict(reply.headers)
        named = ("fleet.example.org", "FLEET.example.org.:443", "fleet.example.org:9443")
        for host in (f"127.0.0.1:{port}", *named):
            async with http.get(base + "/api/fleet", headers={**AUTH, "Host": host}) as reply:
                assert reply.status == 200, host
        nameless = await raw(port, b"GET /metrics HTTP/1.0\r\n" + AUTH_LINE + b"\r\n")
        assert nameless.startswith(b"HTTP/1.0 421") or nameless.startswith(b"HTTP/1.1 421")
    finally:
        await server.stop()


def test_listening_on_every_address_any_ip_address_with_the_port_is_answered() -> None:
    """On 0.0.0.0 the machine's addresses are not known in advance: any IP address with the
    port is answered (an address cannot be rebound), a name only if it is the public
    URL's."""
    settings = DashboardSection(listen="0.0.0.0:8750", allow_plain_http=True).settings()
    allowed = allowed_hosts(settings)
    for host in ("10.1.2.3:8750", "[fe80::1]:8750", "127.0.0.1:8750", "0.0.0.0:8750"):
        assert host_allowed(settings, allowed, host), host
    for refused in ("rebound.example:8750", "10.1.2.3:8751", "10.1.2.3", "a:b:c", "", None):
        assert not host_allowed(settings, allowed, refused), refused
    v6 = DashboardSection(listen="[::1]:8750").settings()
    assert host_allowed(v6, allowed_hosts(v6), "[::1]:8750")
    assert not host_allowed(v6, allowed_hosts(v6), "[::2]:8750")


async def test_every_answer_carries_the_headers_errors_included(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Any,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """aiohttp's own 404 and 405, its 400 for a request it cannot read, and a 500 from a
    failing view all carry the strict headers; the 500 and the 400 quote nothing (the
    traceback goes to the log, under the route's pattern)."""
    server, _, _ = await serve(ledger, clock, tmp_path, TOKEN, metrics_token_env="FW_TOKEN")
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with http.get(f"{base}/no/such/page") as reply:
            assert reply.status == 404
            assert_strict(reply.headers)
        async with http.post(f"{base}/api/fleet") as reply:
            assert reply.status == 405
            assert_strict(reply.headers)
        views(server).failing = True
        with caplog.at_level(logging.ERROR, logger="bot.dashboard.serving.listener"):
            async with http.get(f"{base}/api/fleet", headers=AUTH) as reply:
                assert reply.status == 500
                assert_strict(reply.headers)
                text = await reply.text()
        assert "the orchestrator's log says what" in text and "secret-path" not in text
        assert "answering /api/fleet failed" in caplog.text and "RuntimeError" in caplog.text
        caplog.clear()
        for bad in (
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header <script>\r\n\r\n",
            b"GET /\x00<script> HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
        ):
            with caplog.at_level(logging.DEBUG):
                answer = await raw(server.port or 0, bad)
            assert answer.split(b" ", 2)[1].startswith(b"4"), answer[:200]
            assert_strict(head_of(answer))
            assert b"<script>" not in answer and b"aaaa" not in answer
        assert "<script>" not in caplog.text and "aaaa" not in caplog.text
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "value", ["²", "１００", "٣", "𝟙", "1e3", "-1", " 1", "0x10", "1_000", "١٠٠"]
)
async def test_numbers_in_the_query_are_ascii_digits_only(
    ledger: Ledger, clock: ManualClock, tmp_path: Any, http: aiohttp.ClientSession, value: str
) -> None:
    """`?entries=` (the one number the dashboard reads from a query) takes ASCII digits
    only, on the page and its `/api` twin: anything else, Unicode digits included (which
    `str.isdigit()` accepts and `int()` may or may not), is a 400 saying what it takes."""
    server, signins, _ = await serve(ledger, clock, tmp_path, TOKEN, metrics_token_env="FW_TOKEN")
    base = f"http://127.0.0.1:{server.port}"
    try:
        await signed_in(http, base, signins)
        for path in ("/agents/coder-1", "/api/agents/coder-1"):
            async with http.get(base + path, params={"entries": value}, headers=AUTH) as reply:
                assert reply.status == 400, (path, reply.status)
                assert "ASCII digits, e.g. ?entries=200" in await reply.text()
                assert_strict(reply.headers)
        assert views(server).asked == []
        for given in ("200", "0200", "99999999999"):
            async with http.get(f"{base}/api/agents/coder-1?entries={given}") as reply:
                assert reply.status == 404  # read as a number: the agent is unknown
        assert views(server).asked == [200, 200, 10**7]
    finally:
        await server.stop()


HOSTILE = [
    " =1+1",
    "\n=1+1",
    "\r\n@SUM(A1)",
    "\t-1",
    "\u200b=1+1",
    "\ufeff+1",
    "\u2060\u202e=1",
    "\u3000=1",
    "\u00a0-2",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(A1)",
    "﹦1",
    "﹢1",
    "﹣1",
    "﹫x",
    "⁼1",
    "₊1",
    "⁻1",
    "\u2212" + "1",
    "=HYPERLINK(1)",
    "+1",
    "-1",
    "@x",
]
BENIGN = ["claude-haiku-4-5", "a=b", "1-2", "x @y", "", "ｍｏｄｅｌ"]


async def test_csv_cells_a_spreadsheet_could_read_as_a_formula_are_quoted(
    ledger: Ledger, clock: ManualClock, tmp_path: Any, http: aiohttp.ClientSession
) -> None:
    """A cell whose first visible character is, or looks like, `= + - @` — after spaces,
    line breaks, zero-width or bidi characters — starts with `'` in `/usage.csv`; others
    are left as they are."""
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    views(server).models = HOSTILE + BENIGN
    base = f"http://127.0.0.1:{server.port}"
    try:
        await signed_in(http, base, signins)
        async with http.get(f"{base}/usage.csv") as reply:
            rows = list(csv.DictReader(io.StringIO(await reply.text(), newline="")))
        models = [row["model"] for row in rows]
        assert models == ["'" + model for model in HOSTILE] + BENIGN
    finally:
        await server.stop()


async def test_one_session_cannot_hold_every_stream(
    ledger: Ledger, clock: ManualClock, tmp_path: Any
) -> None:
    """One session opening 600 live streams gets its cap's worth, then a 429 saying why;
    another session still gets one."""
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    base = f"http://127.0.0.1:{server.port}"
    jar, other_jar = aiohttp.CookieJar(unsafe=True), aiohttp.CookieJar(unsafe=True)
    connector = aiohttp.TCPConnector(limit=100)  # the rest wait their turn in the client
    release = asyncio.Event()
    tasks: list[asyncio.Task[tuple[int, str]]] = []
    async with (
        aiohttp.ClientSession(cookie_jar=jar, connector=connector) as greedy,
        aiohttp.ClientSession(cookie_jar=other_jar) as other,
    ):

        async def stream(http: aiohttp.ClientSession) -> tuple[int, str]:
            async with http.get(f"{base}/events?topic=fleet") as reply:
                if reply.status != 200:
                    return reply.status, await reply.text()
                await reply.content.readline()  # live
                await release.wait()
                return 200, ""

        try:
            await signed_in(greedy, base, signins)
            await signed_in(other, base, signins)
            tasks += [asyncio.create_task(stream(greedy)) for _ in range(600)]
            await eventually(
                lambda: sum(t.done() for t in tasks) == 600 - MAX_PER_SESSION,
                "every stream past the session's cap answered",
            )
            refused = [t.result() for t in tasks if t.done()]
            assert {status for status, _ in refused} == {429}
            assert f"{MAX_PER_SESSION} live pages open, the most one may" in refused[0][1]
            assert server.hub.watching == MAX_PER_SESSION
            async with other.get(f"{base}/events?topic=fleet") as reply:
                assert reply.status == 200
                assert await reply.content.readline() == b"retry: 1000\n"
                assert await reply.content.readline() == b"event: hello\n"
            release.set()
            ended = await asyncio.gather(*tasks)
            assert [status for status, _ in ended].count(200) == MAX_PER_SESSION
        finally:
            release.set()
            await server.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_one_user_cannot_take_every_connection_from_many_addresses(
    ledger: Ledger, clock: ManualClock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connections from this machine count against the local user whose sockets they are,
    whatever address of 127.0.0.0/8 each comes from: past the cap that user's new
    connection is refused when all of its own are busy (here: sign-in posts whose body
    never comes)."""
    monkeypatch.setattr(listener, "MAX_PER_PEER", 4)
    server, _, _ = await serve(ledger, clock, tmp_path, {})
    port = server.port or 0
    held: list[Conn] = []
    post = (
        f"POST /signin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    try:
        for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"):
            conn = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            conn[1].write(post)
            await conn[1].drain()
            held.append(conn)
        admission = server._listening.admission if server._listening else None
        assert admission is not None
        await eventually(lambda: admission.from_peer(ME) == 4, "four busy posts")
        assert admission.from_peer("127.0.0.1") == 0  # its addresses are not peers
        for source in ("127.0.0.1", "127.0.0.5"):
            refused = await raw(port, b"", source)  # told at once, before it sends anything
            assert refused.startswith(b"HTTP/1.1 503") and b"Too many connections" in refused
        assert admission.counts.refused_peer == 2
    finally:
        for _, writer in held:
            writer.close()
        await server.stop()


async def test_a_sign_in_post_whose_body_never_comes_is_cut_off(
    ledger: Ledger, clock: ManualClock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A form post is the one request that reads a body: one that never arrives is a 408
    after the deadline, and its connection is free again."""
    monkeypatch.setattr("bot.dashboard.access.signin_routes._BODY_TIMEOUT", 0.3)
    server, _, _ = await serve(ledger, clock, tmp_path, {})
    port = server.port or 0
    post = (
        f"POST /signin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nlink="
    ).encode()
    try:
        answer = await raw(port, post)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive in time" in answer
        assert_strict(head_of(answer))
    finally:
        await server.stop()


async def test_idle_connections_are_closed_and_never_crowd_out_a_signed_in_request(
    ledger: Ledger,
    clock: ManualClock,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    http: aiohttp.ClientSession,
) -> None:
    """1,100 connections from one address that send nothing: a signed-in request still
    gets its answer meanwhile, and every idle one is closed, to make room or at the
    deadline for its first request."""
    monkeypatch.setattr(listener, "LIMITS", Limits(idle_timeout=0.5, max_connections=1024))
    server, signins, _ = await serve(ledger, clock, tmp_path, {})
    port = server.port or 0
    base = f"http://127.0.0.1:{port}"
    held: list[Conn] = []
    try:
        await signed_in(http, base, signins)
        for start in range(0, 1100, 100):
            opened = [asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
            held += await asyncio.gather(*opened)
            async with http.get(f"{base}/api/fleet") as reply:
                assert reply.status == 200, start
        assert server._listening is not None
        assert server._listening.admission.from_peer(ME) <= listener.MAX_PER_PEER
        closed = await asyncio.gather(*(hung_up(conn, 5.0) for conn in held))
        assert all(closed), f"{closed.count(False)} idle connections still open"
    finally:
        for _, writer in held:
            writer.close()
        await server.stop()


async def hung_up(conn: Conn, seconds: float) -> bool:
    """Whether the server closed ``conn`` within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await conn[0].read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True
