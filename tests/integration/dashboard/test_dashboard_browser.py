"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the real
``fleetwarden run`` (its console prints the sign-in link), stub agents metered through the
proxy by the strict fake provider, and the ledger read back to check the figures."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import re
import secrets
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.console_bot import FLEETWARDEN
from tests.integration.dashboard_rig import (
    CHROMIUM,
    PROVIDER_KEY,
    USAGE,
    Rig,
    config_text,
    need_chromium,
    running,
    sign_in,
    watch,
)

pytestmark = pytest.mark.integration

AGENTS = ["asker", "coder-1", "coder-2"]
PAGES = ["/", "/budgets", "/usage", "/changes", "/accounts", "/hosts", "/approvals", "/audit"]


@pytest.fixture(scope="module")
def spawned_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    need_chromium()
    with running(tmp_path_factory.mktemp("dashboard"), AGENTS) as spawned_rig:
        for name in AGENTS:
            spawned_rig.bot.command(f"spawn {name}", rf"{name}", timeout=30)
        spawned_rig.bot.command("send asker ask 3", r"answer 3/3: metered answer", timeout=30)
        yield spawned_rig


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """``GET url``; a ``*.localhost`` name is this machine, as a browser resolves it."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", target, headers={"Host": parts.netloc, **headers})
        reply = connection.getresponse()
        return reply.status, dict(reply.headers), reply.read()
    finally:
        connection.close()


def test_a_console_link_signs_in_and_the_fleet_page_lists_the_agents(
    spawned_rig: Rig, chromium: Any
) -> None:
    """The link `dashboard` prints signs the browser in; the fleet page lists every agent,
    loads nothing from anywhere but 127.0.0.1 and logs no error."""
    context = chromium.new_context()
    page = context.new_page()
    seen = watch(page)
    sign_in(page, spawned_rig.link())
    assert page.url == spawned_rig.base + "/"
    for name in AGENTS:
        page.wait_for_selector(f'tr[data-agent="{name}"]', timeout=5000)
    page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
    cookies = context.cookies()
    assert [c["name"] for c in cookies] == ["fw_session"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert cookies[0]["domain"] == urlsplit(spawned_rig.base).hostname  # host-only, its own name
    for path in PAGES[1:]:
        page.goto(spawned_rig.base + path)
        page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
    assert seen.requests and all(url.startswith(spawned_rig.base + "/") for url in seen.requests), (
        seen.requests
    )
    assert seen.errors == []
    context.close()


def test_an_agents_new_output_appears_on_its_page_within_two_seconds(
    spawned_rig: Rig, chromium: Any
) -> None:
    """Output an agent writes shows on its open page by server-sent events, no reload."""
    context = chromium.new_context()
    page = context.new_page()
    seen = watch(page)
    sign_in(page, spawned_rig.link())
    page.goto(spawned_rig.base + "/agents/coder-1")
    page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
    loads = []
    page.on("load", lambda _page: loads.append(1))
    word = f"hello-dashboard-{secrets.token_hex(4)}"
    spawned_rig.bot.command(f"send coder-1 {word}", rf"received: {word}", timeout=20)
    written = time.monotonic()
    page.wait_for_selector(f"#transcript >> text={word}", timeout=2000)
    assert time.monotonic() - written <= 2.0
    assert loads == []  # no reload: the fragment was swapped in
    assert seen.errors == []
    context.close()


def test_a_budget_chart_renders_with_the_even_spread_line(spawned_rig: Rig, chromium: Any) -> None:
    """The budgets page draws each budget's use and its even-spread line on a canvas."""
    context = chromium.new_context()
    page = context.new_page()
    seen = watch(page)
    sign_in(page, spawned_rig.link())
    page.goto(spawned_rig.base + "/budgets")
    page.wait_for_selector(".chart canvas", timeout=5000)
    painted = page.evaluate(
        """() => {
            const canvas = document.querySelector('.chart canvas');
            const ctx = canvas.getContext('2d');
            const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
            return n;
        }"""
    )
    assert painted > 500
    legend = page.inner_text(".chart").lower()
    assert "used" in legend and "even spread" in legend
    # The config's daily window: its midnight is the user's, said as chat says it.
    assert re.search(r"resets [\d-]+ [\d:]+ UTC \(set by you\)", page.inner_text("main"))
    status, body = spawned_rig.api("/api/budgets")
    [shown] = json.loads(body)["budgets"]
    assert status == 200
    assert (shown["reset_confidence"], shown["reset_confidence_text"]) == ("user", "set by you")
    assert shown["resets_at"] == shown["window_end"]
    assert seen.errors == []
    context.close()


def test_a_used_expired_or_forged_link_is_refused(spawned_rig: Rig, chromium: Any) -> None:
    """A link signs in once, within its ten minutes; anything else gets the plain page."""
    used = spawned_rig.link()
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, used)
    context.close()
    expired = spawned_rig.link()
    with sqlite3.connect(spawned_rig.ledger) as ledger:
        ledger.execute("UPDATE dashboard_links SET expires_at = ? WHERE used_at IS NULL", (0,))
    forged = used.rsplit("/", 1)[0] + "/" + secrets.token_urlsafe(32)
    for link in (used, expired, forged):
        context = chromium.new_context()
        page = context.new_page()
        sign_in(page, link)
        assert "this link is no longer valid — ask the bot for a new one" in (
            page.inner_text("body").lower()
        )
        assert context.cookies() == []
        status, _, _ = _get(spawned_rig.base + "/api/fleet")
        assert status == 401
        context.close()


def test_pages_say_no_to_framing_inline_script_and_referrers(spawned_rig: Rig) -> None:
    """Every answer carries the strict headers; unsigned requests are refused; an unknown
    agent is a 404 page."""
    for path in [*PAGES, "/agents/asker", "/api/fleet", "/metrics", "/static/dashboard.js"]:
        _, headers, _ = _get(spawned_rig.base + path)
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
    for path in [*PAGES, "/api/fleet", "/api/agents/asker", "/usage.csv", "/changes.csv",
                 "/events?topic=fleet"]:  # fmt: skip
        status, _, body = _get(spawned_rig.base + path)
        assert status == 401, (path, status)
        assert b"asker" not in body
    token = (spawned_rig.root / "state" / "dashboard-status-token").read_text().strip()
    status, _, body = _get(spawned_rig.base + "/api/fleet", Authorization=f"Bearer {token}")
    assert status == 401  # the status token opens the state dir's socket, not the port
    status, body = spawned_rig.api("/api/agents/nobody")
    assert status == 404 and json.loads(body) == {"error": "no agent is called 'nobody'"}
    status, _, body = _get(spawned_rig.base + "/api/fleet", Authorization="Bearer wrong")
    assert status == 401


def test_a_huge_transcript_is_paged_never_read_whole(spawned_rig: Rig, chromium: Any) -> None:
    """5,000 lines of output: the page shows the last 100 entries and a link further
    back; however far back one asks, one page reads at most 2,000."""
    spawned_rig.bot.command("send coder-2 lines 5000", r"line 5000 of 5000", timeout=30)
    status, body = spawned_rig.api("/api/agents/coder-2")
    transcript = json.loads(body)["transcript"]
    assert status == 200 and transcript["asked"] == 100 and transcript["more"] is True
    assert "line 5000 of 5000" in transcript["markdown"]
    _, body = spawned_rig.api("/api/agents/coder-2?entries=99999")
    assert json.loads(body)["transcript"]["asked"] == 2000
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, spawned_rig.link())
    page.goto(spawned_rig.base + "/agents/coder-2")
    page.wait_for_selector("text=Show older entries", timeout=5000)
    page.click("text=Show older entries")
    page.wait_for_url("**/agents/coder-2?entries=200")
    assert "line 5000 of 5000" in page.inner_text("#transcript")
    context.close()


def test_a_secret_an_agent_prints_is_redacted_on_its_page(spawned_rig: Rig) -> None:
    """What chat would not show the dashboard does not either: a provider key the agent
    echoes is redacted in its transcript, on the page and in the JSON."""
    spawned_rig.bot.command(
        f"send coder-1 the key is {PROVIDER_KEY}", r"received: the key is", timeout=20
    )
    status, body = spawned_rig.api("/api/agents/coder-1")
    assert status == 200 and b"received: the key is" in body
    assert PROVIDER_KEY.encode() not in body
    assert PROVIDER_KEY[:16].encode() not in body


def test_metrics_token_figures_equal_the_ledgers(spawned_rig: Rig, chromium: Any) -> None:
    """`/metrics` parses as Prometheus text; its token counters are the ledger's sums. It
    needs a session (or a token) from this machine too."""
    assert _get(spawned_rig.base + "/metrics")[0] == 401
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, spawned_rig.link())
    deadline = time.monotonic() + 10
    while True:
        scraped = page.goto(spawned_rig.base + "/metrics")
        assert scraped is not None and scraped.status == 200
        headers, body = {"Content-Type": scraped.headers["content-type"]}, scraped.body()
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        tokens = {
            (s.labels["agent"], s.labels["kind"]): s.value
            for s in families["fleetwarden_model_tokens"].samples
            if s.name == "fleetwarden_model_tokens_total"
        }
        if tokens.get(("asker", "input"), 0) >= 3 * USAGE.input or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    with sqlite3.connect(spawned_rig.ledger) as ledger:
        row = ledger.execute(
            "SELECT SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
            " SUM(cache_write_tokens), COUNT(*) FROM usage WHERE agent = 'asker'"
        ).fetchone()
    assert row[0] == 3 * USAGE.input
    kinds = ("input", "output", "cache_read", "cache_write")
    assert [tokens[("asker", kind)] for kind in kinds] == list(row[:4])
    requests = {
        s.labels["agent"]: s.value
        for s in families["fleetwarden_model_requests"].samples
        if s.name == "fleetwarden_model_requests_total"
    }
    assert requests["asker"] == row[4]
    agents = {
        (s.labels["state"], s.labels["host"]): s.value
        for s in families["fleetwarden_agents"].samples
    }
    assert sum(agents.values()) == len(AGENTS)
    histogram = families["fleetwarden_proxy_request_seconds"]
    count = next(s.value for s in histogram.samples if s.name.endswith("_count"))
    assert count == row[4]
    context.close()


def test_a_page_on_a_name_rebound_to_this_machine_reads_nothing(
    spawned_rig: Rig, chromium: Any
) -> None:
    """DNS rebinding: a page on an outside name, its name then pointed at 127.0.0.1, asks
    the dashboard's port for `/metrics`, the API, a page and the CSV as its own origin.
    Every answer is a 421 naming the dashboard's address, with nothing of the fleet.
    Chromium's own block of a public page's requests to loopback is off here: Firefox
    and Safari have none, and the dashboard must not rest on it."""
    attacker = f"http://rebound.example:{spawned_rig.port}"
    rebinding = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--host-resolver-rules=MAP rebound.example 127.0.0.1",
            "--disable-features=BlockInsecurePrivateNetworkRequests,"
            "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults,"
            "LocalNetworkAccessChecks",
        ],
        headless=True,
    )
    try:
        context = rebinding.new_context()
        page = context.new_page()
        # The attacker's page, as its own server gave it before the name was rebound.
        page.route(
            attacker + "/",
            lambda route: route.fulfill(content_type="text/html", body="<title>cats</title>"),
        )
        page.goto(attacker + "/")
        read = page.evaluate(
            """async (paths) => {
                const out = {};
                for (const path of paths) {
                    const answer = await fetch(path);
                    out[path] = [answer.status, await answer.text()];
                }
                return out;
            }""",
            ["/metrics", "/api/fleet", "/agents/asker", "/usage.csv", "/static/dashboard.js"],
        )
        for path, (status, body) in read.items():
            assert status == 421, (path, status)
            assert "does not answer at the name" in body
            assert urlsplit(spawned_rig.base).hostname not in body  # its own name is never told
            assert "fleetwarden_" not in body and "asker" not in body
        shown = page.goto(attacker + "/metrics")
        assert shown is not None and shown.status == 421
    finally:
        rebinding.close()


def test_an_open_page_greys_out_while_the_orchestrator_restarts_then_goes_on(
    spawned_rig: Rig, chromium: Any
) -> None:
    """While the orchestrator is down the page says it is not live and greys its data out;
    once it is back the stream reconnects by itself, with the same session."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, spawned_rig.link())
    page.goto(spawned_rig.base + "/agents/coder-2")
    page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
    before = (spawned_rig.root / "state" / "dashboard-status-token").read_text().strip()
    spawned_rig.restart()
    page.wait_for_selector('#live-state[data-state="reconnecting"]', timeout=10000)
    page.wait_for_selector("main#live.stale", timeout=5000)
    page.wait_for_selector('#live-state[data-state="live"]', timeout=30000)
    assert page.eval_on_selector("main#live", "el => el.classList.contains('stale')") is False
    word = f"after-restart-{secrets.token_hex(4)}"
    spawned_rig.bot.command(f"send coder-2 {word}", rf"received: {word}", timeout=20)
    page.wait_for_selector(f"#transcript >> text={word}", timeout=3000)
    context.close()
    assert spawned_rig.api("/api/fleet", token=before)[0] == 401  # the last start's token is dead
    status = subprocess.run(
        [str(FLEETWARDEN), "status", "--json", "--config", str(spawned_rig.config)],
        cwd=spawned_rig.root,
        env=spawned_rig.bot.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0, status.stderr
    assert {a["name"] for a in json.loads(status.stdout)["agents"]} == set(AGENTS)


class _Listener(http.server.BaseHTTPRequestHandler):
    """Another local server, as an agent may run one: it notes each request's cookies."""

    seen: list[tuple[str, str | None]]

    def do_GET(self) -> None:
        self.seen.append((self.headers.get("Host", ""), self.headers.get("Cookie")))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<p>another server</p>")

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _another_local_server() -> Iterator[tuple[int, list[tuple[str, str | None]]]]:
    """An HTTP server on another port of 127.0.0.1 (its port, what it saw), stopped on
    exit."""
    seen: list[tuple[str, str | None]] = []
    handler = type("Noting", (_Listener,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_another_local_port_is_sent_no_session_cookie(spawned_rig: Rig, chromium: Any) -> None:
    """Signed in, the browser follows links to a server on another port of this machine,
    by every name an agent could write: it is sent no cookie. The session lives on the
    dashboard's own name only, and a link rewritten to 127.0.0.1 signs nobody in (nor
    spends the link)."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, spawned_rig.link())
    assert [c["name"] for c in context.cookies()] == ["fw_session"]
    with _another_local_server() as (port, seen):
        names = ["127.0.0.1", "localhost", "fleetwarden.localhost", "dashboard.localhost"]
        for name in names:
            page.goto(f"http://{name}:{port}/")
            assert "another server" in page.inner_text("body")
        page.goto(spawned_rig.base + "/")
        page.wait_for_selector('tr[data-agent="asker"]', timeout=5000)  # still signed in
    assert {host.split(":")[0] for host, _ in seen} == set(names)
    assert [cookie for _, cookie in seen if cookie is not None] == []
    link = spawned_rig.link()
    rewritten = context.new_page()
    rewritten.goto(link.replace(urlsplit(spawned_rig.base).hostname or "", "127.0.0.1"))
    with rewritten.expect_navigation():
        rewritten.click("#signin")
    refused = rewritten.inner_text("body")
    assert "Open the link exactly as the bot sent it" in refused
    assert (urlsplit(spawned_rig.base).hostname or "") not in refused  # its name is never told
    assert [c["domain"] for c in context.cookies()] == [urlsplit(spawned_rig.base).hostname]
    other = chromium.new_context()
    sign_in(other.new_page(), link)  # the link was not spent
    assert [c["name"] for c in other.cookies()] == ["fw_session"]
    other.close()
    context.close()


def test_a_demoted_then_restored_admin_and_a_link_from_before_a_removal_stay_out(
    spawned_rig: Rig, chromium: Any
) -> None:
    """Demoted and restored by two reloads with no request between, the admin's session
    stays ended; a link sent before she was removed does not sign her in once re-added."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, spawned_rig.link())  # alice, an admin
    page.goto("about:blank")  # no page open, so no request while she is demoted
    _write_config(spawned_rig, role="viewer")
    _reload_and_wait(spawned_rig)
    _write_config(spawned_rig, role="admin")
    _reload_and_wait(spawned_rig)
    page.goto(spawned_rig.base + "/")
    assert "Sign in from chat" in page.inner_text("body")  # her session ended for good
    link = spawned_rig.link()
    _write_config(spawned_rig, role="admin", user="bob")  # alice removed
    _reload_and_wait(spawned_rig)
    _write_config(spawned_rig, role="admin")  # and back
    _reload_and_wait(spawned_rig)
    sign_in(page, link)
    assert "this link is no longer valid" in page.inner_text("body").lower()
    sign_in(page, spawned_rig.link())  # a new link does
    page.wait_for_selector('tr[data-agent="asker"]', timeout=5000)
    context.close()


def test_a_viewer_removed_from_the_config_loses_access_on_the_next_request(
    spawned_rig: Rig, chromium: Any
) -> None:
    """Demoted by a reload, a session ends; signed in again as a viewer and then removed
    from the operators, the next request is refused and the open page signs out."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, spawned_rig.link())  # alice, an admin
    _write_config(spawned_rig, role="viewer")
    _reload_and_wait(spawned_rig)
    try:
        page.goto(spawned_rig.base + "/")
    except PlaywrightError as exc:  # the open page's stream signed it out at that moment
        if "interrupted by another navigation" not in str(exc):
            raise
        page.wait_for_load_state()
    assert "Sign in" in page.inner_text("h1")  # her role changed: the session ended
    sign_in(page, spawned_rig.link())  # a viewer may ask for a link
    page.wait_for_selector('tr[data-agent="asker"]', timeout=5000)
    page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
    _write_config(spawned_rig, role="viewer", user="bob")  # alice is nobody now
    _reload_and_wait(spawned_rig)
    cookie = context.cookies()[0]
    status, _, _ = _get(
        spawned_rig.base + "/api/fleet", Cookie=f"{cookie['name']}={cookie['value']}"
    )
    assert status == 401
    page.wait_for_selector("text=Sign in from chat", timeout=15000)  # the stream said so
    context.close()


def _write_config(rig: Rig, *, role: str, user: str = "alice") -> None:
    text = config_text(
        port=rig.port,
        upstream=rig.fake.base_url,
        agents=rig.agents,
        user=user,
        role=role,
    )
    rig.config.write_text(text)  # with bob: the console still speaks as alice, a stranger now


def _reload_and_wait(rig: Rig) -> None:
    log = rig.root / "state" / "fleetwarden.log"
    count = log.read_text().count("SIGHUP: config reloaded") + 1
    rig.reload()
    deadline = time.monotonic() + 15
    while log.read_text().count("SIGHUP: config reloaded") < count:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
