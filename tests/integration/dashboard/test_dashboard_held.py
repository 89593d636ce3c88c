"""Attacks on the dashboard that it holds, each pinned where it is decided: in Debian's
Chromium (Playwright) against the real ``fleetwarden run`` of the dashboard rig, with a
hostile web server on another local port standing for an outside site; and ``fleetwarden
status`` against a server squatting the dashboard's TLS port.

What an agent writes comes from the fake provider: a stub agent's ``ask 1`` prints the
model's answer, so the answer is the agent's text on its page."""

from __future__ import annotations

import contextlib
import http.server
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.fakes.provider.server import ToolCall, Turn, Usage
from tests.integration.console_bot import FLEETWARDEN, ConsoleBot, clean_env
from tests.integration.dashboard_rig import Rig, need_chromium, running, sign_in, watch
from tests.integration.runtimes.test_real_clis import bin_dir, cli
from tests.postgres_server import free_port
from tests.tls_cert import self_signed

pytestmark = pytest.mark.integration

AGENTS = ["held-1", "held-2", "held-3"]
SMALL = Usage(input=10, output=10)


@dataclass
class Outside:
    """A web server on another local port: an outside site's pages, and every request that
    reached it (path and headers)."""

    port: int
    pages: dict[str, str] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def origin(self, host: str) -> str:
        return f"http://{host}:{self.port}"


@contextlib.contextmanager
def outside_site() -> Iterator[Outside]:
    site = Outside(free_port())

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            site.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            body = site.pages.get(self.path.split("?")[0], "<!doctype html><p>outside</p>")
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def _posting_page(action: str, link: str | None = None) -> str:
    """A page that posts a form to ``action`` as soon as it loads (inline script: an outside
    site has no CSP of ours)."""
    field_ = f'<input type="hidden" name="link" value="{link}">' if link else ""
    return (
        f'<!doctype html><form method="post" action="{action}">{field_}</form>'
        "<script>document.forms[0].submit()</script>"
    )


@pytest.fixture(scope="module")
def held_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    need_chromium()
    node = shutil.which("node")
    path = [str(bin_dir()), *([str(Path(node).resolve().parent)] if node else [])]
    with pytest.MonkeyPatch.context() as patch:  # the orchestrator finds the agent CLIs
        patch.setenv("PATH", os.pathsep.join([*path, os.environ.get("PATH", "")]))
        with running(tmp_path_factory.mktemp("held"), AGENTS) as held_rig:
            for name in AGENTS:
                held_rig.bot.command(f"spawn {name}", rf"{name}", timeout=30)
            yield held_rig


@pytest.fixture
def outside() -> Iterator[Outside]:
    with outside_site() as site:
        yield site


def _hostile_origins(rig: Rig, outside: Outside) -> list[str]:
    """The outside site as the same site as the dashboard (its host name, another port:
    the browser sends it the dashboard's SameSite cookie) and as another site."""
    host = urlsplit(rig.base).hostname or "127.0.0.1"
    other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
    return [outside.origin(host), outside.origin(other)]


def _session(context: Any, rig: Rig) -> dict[str, str]:
    """The dashboard's cookies in ``context``, by name."""
    return {c["name"]: c["value"] for c in context.cookies(rig.base)}


def _get(context: Any, url: str) -> tuple[int, bytes]:
    """``GET url`` by the browser in ``context`` (its cookies, its resolver)."""
    page = context.new_page()
    try:
        reply = page.goto(url)
        return reply.status, reply.body()
    finally:
        page.close()


def _signed_in(context: Any, rig: Rig) -> bool:
    status, _ = _get(context, rig.base + "/api/fleet")
    return status == 200


def test_a_page_elsewhere_can_neither_sign_the_browser_out_nor_in(
    held_rig: Rig, chromium: Any, outside: Outside
) -> None:
    """A page on another port of the dashboard's own host name, and one on another name,
    post forms to `/signout` and to `/signin` (with a link of their own) as soon as they
    load: the browser stays signed in with its own session, and the posted link is still
    unused afterwards."""
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, held_rig.link())
    session = _session(context, held_rig)
    assert session and _signed_in(context, held_rig)
    theirs = held_rig.link()
    outside.pages["/out.html"] = _posting_page(held_rig.base + "/signout")
    outside.pages["/in.html"] = _posting_page(held_rig.base + "/signin", theirs)
    for origin in _hostile_origins(held_rig, outside):
        page.goto(origin + "/out.html")
        page.wait_for_url(held_rig.base + "/signout")
        assert _session(context, held_rig) == session, origin
        assert _signed_in(context, held_rig), f"a post from {origin} signed the browser out"
        page.goto(origin + "/in.html")
        page.wait_for_url(held_rig.base + "/signin")
        assert _session(context, held_rig) == session, f"a post from {origin} swapped the session"
    context.close()
    fresh = chromium.new_context()
    sign_in(fresh.new_page(), theirs)  # the posts never spent it
    assert _signed_in(fresh, held_rig)
    fresh.close()


def test_the_links_secret_never_leaves_in_a_referer(
    held_rig: Rig, chromium: Any, outside: Outside
) -> None:
    """The link's page loads its style and posts its form without sending the link in any
    header; a page it goes on to elsewhere gets no Referer at all."""
    link = held_rig.link()
    secret = link.rsplit("/", 1)[1]
    context = chromium.new_context()
    page = context.new_page()
    sent: list[tuple[str, dict[str, str]]] = []
    page.on("request", lambda request: sent.append((request.url, request.all_headers())))
    page.goto(link)
    page.wait_for_load_state()
    page.evaluate("url => { window.location.href = url }", outside.origin("127.0.0.1") + "/x")
    page.wait_for_url(outside.origin("127.0.0.1") + "/x")
    [(_, headers)] = [seen for seen in outside.seen if seen[0] == "/x"]
    assert "referer" not in headers, headers
    sign_in(page, link)
    assert _signed_in(context, held_rig)
    first, *rest = [
        (url, headers) for url, headers in sent if not url.startswith(outside.origin("127.0.0.1"))
    ]
    assert first[0] == link
    loads = [url for url, _ in rest]
    assert any(url.endswith(".css") for url in loads), loads  # the page's own style came
    for url, headers in rest:
        if url == link:
            continue  # sign_in opened the link again, as a person would
        assert secret not in url, url
        assert not any(secret in value for value in headers.values()), (url, headers)
    context.close()


def _hostile_text(origin: str, mark: str) -> str:
    return (
        f"{mark} <img src={origin}/raw.png onerror=window.pwned=1> "
        f"![remote]({origin}/markdown.png) [click me]({origin}/clicked) "
        f"<script>window.pwned=2</script><iframe src={origin}/frame></iframe> "
        "<a href=javascript:window.pwned=3>js</a> **bold**"
    )


def _only_text(page: Any, where: str, mark: str) -> None:
    """``where`` shows ``mark``'s hostile text as text: no element from it, nothing run."""
    text = page.inner_text(where)
    assert mark in text and "<script>window.pwned=2</script>" in text, text[-2000:]
    assert page.evaluate("() => window.pwned") is None
    made = page.eval_on_selector_all(
        f"{where} img, {where} iframe, {where} script, {where} [src], {where} [onerror]",
        "els => els.map(el => el.outerHTML)",
    )
    assert made == []
    hrefs = page.eval_on_selector_all(f"{where} a", "els => els.map(el => el.href)")
    assert not any(href.startswith("javascript:") for href in hrefs), hrefs


def test_agent_markup_stays_text_and_no_remote_image_is_fetched(
    held_rig: Rig, chromium: Any, outside: Outside
) -> None:
    """An agent's answer full of HTML and markdown images pointing at an outside site:
    on its page and in a fragment the live stream swaps in it reads as text, no script of
    it runs, and the outside site is never asked for anything."""
    origin = outside.origin("127.0.0.1")
    held_rig.fake.add(Turn(text=_hostile_text(origin, "first-hostile"), usage=SMALL))
    held_rig.bot.command("send held-1 ask 1", r"answer 1/1", timeout=30)
    context = chromium.new_context()
    page = context.new_page()
    seen = watch(page)
    sign_in(page, held_rig.link())
    page.goto(held_rig.base + "/agents/held-1")
    page.wait_for_selector("#transcript >> text=first-hostile", timeout=10000)
    page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
    _only_text(page, "#transcript", "first-hostile")
    loads: list[int] = []
    page.on("load", lambda _page: loads.append(1))
    held_rig.fake.add(Turn(text=_hostile_text(origin, "second-hostile"), usage=SMALL))
    held_rig.bot.command("send held-1 ask 1", r"answer 1/1: second-hostile", timeout=30)
    page.wait_for_selector("#transcript >> text=second-hostile", timeout=10000)
    assert loads == []  # it came by the live stream, swapped in as HTML
    _only_text(page, "#transcript", "second-hostile")
    assert outside.seen == []
    assert all(url.startswith(held_rig.base + "/") for url in seen.requests), seen.requests
    context.close()


def test_a_line_of_megabytes_is_a_page_of_kilobytes(held_rig: Rig, chromium: Any) -> None:
    """An agent prints a 1.5 MB line and a 600 kB one of markdown punctuation: its page,
    its JSON and its live fragment stay small, and the browser shows the page."""
    held_rig.fake.add(Turn(text="y" * 1_500_000, usage=SMALL))
    held_rig.bot.command("send held-2 ask 1", r"answer 1/1", timeout=60)
    held_rig.fake.add(Turn(text="*_[`<" * 120_000, usage=SMALL))
    held_rig.bot.command("send held-2 ask 1", r"answer 1/1", timeout=60)
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, held_rig.link())
    status, html = _get(context, held_rig.base + "/agents/held-2")
    assert status == 200 and len(html) < 100_000
    status, api = _get(context, held_rig.base + "/api/agents/held-2")
    assert status == 200 and len(api) < 100_000
    assert b"answer 1/1" in api
    page.goto(held_rig.base + "/agents/held-2")
    page.wait_for_selector('#live-state[data-state="live"]', timeout=5000)
    shown = page.eval_on_selector("#transcript", "el => el.innerHTML.length")
    assert shown < 100_000
    context.close()


@pytest.mark.agent_cli
def test_claudes_structured_events_stay_text_on_its_page(
    held_rig: Rig, chromium: Any, outside: Outside
) -> None:
    """The real Claude Code in the roster (added by a reload), told by the model to call a
    tool named like an HTML image with markup for its input, then to answer with markup:
    its stream-json events — the answer, the tool call, the tool's failure — and the run's
    summary once it ended show as text on its page; nothing of them runs or is fetched."""
    cli("claude")
    origin = outside.origin("127.0.0.1")
    hostile = f"![tool]({origin}/tool.png)<img src={origin}/tool.png onerror=window.pwned=4>"
    held_rig.fake.add(
        Turn(
            text=_hostile_text(origin, "claude-said"),
            tool=ToolCall(hostile, {"command": _hostile_text(origin, "claude-tool-input")}),
            usage=SMALL,
        ),
        Turn(text=_hostile_text(origin, "claude-last"), usage=SMALL),
    )
    config = yaml.safe_load(held_rig.config.read_text())
    config["agents"].append(
        {
            "name": "claude-1",
            "runtime": "claude",
            "model": "claude-haiku-4-5",
            "secret_env": ["ANTHROPIC_API_KEY"],
        }
    )
    log = held_rig.root / "state" / "fleetwarden.log"
    reloads = log.read_text().count("SIGHUP: config reloaded")
    held_rig.config.write_text(yaml.safe_dump(config, sort_keys=False))
    held_rig.reload()
    deadline = time.monotonic() + 30
    while log.read_text().count("SIGHUP: config reloaded") <= reloads:
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    held_rig.bot.command('spawn claude-1 --prompt "go on"', r"claude-1", timeout=30)
    context = chromium.new_context()
    page = context.new_page()
    sign_in(page, held_rig.link())
    page.goto(held_rig.base + "/agents/claude-1")
    page.wait_for_selector("#transcript >> text=claude-last", timeout=120_000)
    for mark in ("claude-said", "claude-tool-input", "claude-last"):
        _only_text(page, "#transcript", mark)
    assert "tool.png" in page.inner_text("#transcript")  # the tool's name shows, as text
    held_rig.bot.command("stop claude-1", r"(?i)stopped|not running", timeout=60)  # ended by now?
    page.wait_for_selector("article.run >> text=claude-last", timeout=30_000)
    _only_text(page, "article.run", "claude-last")
    assert outside.seen == []
    context.close()


# -- fleetwarden status in TLS mode -----------------------------------------------------------


@dataclass
class Squatter:
    """A TLS server on the dashboard's port with a certificate of its own: how many
    connections came, and every byte it could read after a handshake."""

    connections: int = 0
    received: bytes = b""


@contextlib.contextmanager
def squatting(port: int, cert: Path, key: Path) -> Iterator[Squatter]:
    found = Squatter()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            found.connections += 1
            raw.settimeout(5)
            with contextlib.suppress(OSError), context.wrap_socket(raw, server_side=True) as tls:
                found.received += tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _status(root: Path, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), "status", "--config", str(config)],
        cwd=root,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_in_tls_mode_tells_nothing_to_a_server_without_the_dashboards_key(
    tmp_path: Path,
) -> None:
    """With the dashboard serving TLS, `fleetwarden status` reads the fleet from it; once it
    is down and a local user listens on its port with a certificate of their own (for the
    same address), status fails, and the squatter reads no request, token or state from it."""
    cert, key = self_signed(tmp_path, "dashboard")
    port = free_port()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        f"dashboard: {{listen: '127.0.0.1:{port}', tls_cert: '{cert}', tls_key: '{key}'}}\n"
    )
    bot = ConsoleBot(tmp_path, "--config", str(config))
    try:
        deadline = time.monotonic() + 30
        while (done := _status(tmp_path, config)).returncode != 0:
            assert bot.proc.poll() is None, bot.stderr[-2000:]
            assert time.monotonic() < deadline, done.stderr
            time.sleep(0.2)
        assert "0 agents" in done.stdout
        bot.send("quit")
        assert bot.wait(timeout=30) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
    tokens = [
        path.read_bytes().strip()
        for path in (tmp_path / "state").iterdir()
        if path.is_file() and "token" in path.name
    ]
    their_cert, their_key = self_signed(tmp_path, "squatter")
    with squatting(port, their_cert, their_key) as squatter:
        done = _status(tmp_path, config)
    assert done.returncode != 0, done.stdout
    assert squatter.received == b"", squatter.received[:500]
    for token in tokens:
        assert token not in squatter.received
    assert "Bearer" not in done.stderr
