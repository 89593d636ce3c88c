"""The dashboard's parts without a browser: the config section, sign-ins and the role check,
the ``dashboard`` command's private delivery, the live hub's fan-out, the HTML's escaping,
and ``/metrics``' text."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.acl import Acl, Grant, Role
from bot.commands.errors import CommandError
from bot.commands.handlers.dashboard import DashboardCommands
from bot.commands.parsing.grammar import Grammar
from bot.commands.routing.request import Reply, Request
from bot.commands.specs import COMMANDS
from bot.config import ConfigError
from bot.config.dashboard import OWN_NAME_FILE, DashboardSection, own_name
from bot.config.reading.load import parse_config
from bot.dashboard.access.signin import SignIns, Viewer, digest
from bot.dashboard.pages.metrics import Metrics, ObservedSink, Snapshot
from bot.dashboard.pages.pages import Pages, markdown_html
from bot.dashboard.serving.live import Full, LiveHub, Watcher
from connectors.base import UserId
from connectors.markdown import to_html, to_plain
from connectors.markdown_discord import to_discord
from connectors.slack.mrkdwn import to_mrkdwn
from fleet.ledger import Ledger
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import FakeConnector, message
from tests.unit.fleet.ledger.test_ledger_metering import event

ALICE = "@alice:example.org"
URL = "https://fleet.example.org"
BEHIND = DashboardSection(public_url=URL).settings()


def load(text: str, tmp_path: Path) -> object:
    return parse_config(text, "fleetwarden.yaml", base_dir=tmp_path)


# -- the config section ------------------------------------------------------------------------


def test_the_dashboard_is_off_without_its_section_and_on_loopback_with_an_empty_one(
    tmp_path: Path,
) -> None:
    """No section: off. `dashboard: {}`: 127.0.0.1:8750, and links on http by a name of its
    own under `localhost`, made once and kept in the state dir (0600)."""
    assert parse_config("", "f.yaml", base_dir=tmp_path).dashboard is None
    on = parse_config("dashboard: {}\n", "f.yaml", base_dir=tmp_path).dashboard
    assert on is not None
    assert (on.host, on.port, on.own_name) == ("127.0.0.1", 8750, None)  # not started yet
    made = own_name(tmp_path / ".fleetwarden", make=True)
    assert made is not None and re.fullmatch(r"fleetwarden-[a-z2-7]{26}\.localhost", made)
    assert on.own_name == made and on.public_url == f"http://{made}:8750"
    assert (tmp_path / ".fleetwarden" / OWN_NAME_FILE).stat().st_mode & 0o777 == 0o600
    assert own_name(tmp_path / ".fleetwarden", make=True) == made  # kept, not made again
    assert on.local_only and not on.secure_cookies


@pytest.mark.parametrize(
    ("section", "says"),
    [
        (
            "{listen: 0.0.0.0:8750}",
            "fleetwarden.yaml:1: dashboard: listen 0.0.0.0:8750 is not a loopback",
        ),
        ("{listen: 10.0.0.5:8750, tls_cert: c.pem}", "tls_cert and tls_key go together"),
        ("{listen: 'fleet:8750'}", "'fleet' is not an IP address"),
        ("{listen: 127.0.0.1:99999}", "port 99999 is out of range"),
        ("{listen: '127.0.0.1:\u00b2'}", "is not HOST:PORT"),  # a Unicode digit
        ("{public_url: 'http://fleet.example.org'}", "is plain http on the network"),
        ("{public_url: 'http://127.0.0.1:8750'}", "leave public_url out"),
        ("{public_url: 'https://localhost:8443'}", "every other local port"),
        ("{public_url: 'http://fleetwarden.localhost:8750'}", "is on this machine"),
        ("{public_url: 'https://a.example.org/?x=1'}", "must be a plain base URL"),
        ("{metrics_token_env: 'not a name'}", "metrics_token_env"),
        ("{listen: 127.0.0.1:8750, lissen: 1}", "lissen"),
    ],
)
def test_check_config_refuses_an_exposed_or_malformed_dashboard(
    tmp_path: Path, section: str, says: str
) -> None:
    """A non-loopback address without TLS or an acknowledgement, and bad values, are
    refused with the line and the fix."""
    with pytest.raises(ConfigError) as refused:
        parse_config(f"dashboard: {section}\n", "fleetwarden.yaml", base_dir=tmp_path)
    assert says in str(refused.value)


def test_tls_or_an_explicit_acknowledgement_allows_another_address(tmp_path: Path) -> None:
    """With its own TLS the dashboard may listen anywhere; links say https and cookies are
    Secure. `allow_plain_http` is the acknowledgement for a proxy in front."""
    tls = parse_config(
        "dashboard: {listen: 0.0.0.0:8443, tls_cert: c.pem, tls_key: k.pem}\n",
        "f.yaml",
        base_dir=tmp_path,
    ).dashboard
    assert tls is not None and tls.public_url == "https://0.0.0.0:8443" and tls.secure_cookies
    assert tls.tls == (tmp_path / "c.pem", tmp_path / "k.pem")
    behind = parse_config(
        f"dashboard: {{listen: 10.0.0.5:8750, allow_plain_http: true, public_url: '{URL}/'}}\n",
        "f.yaml",
        base_dir=tmp_path,
    ).dashboard
    assert behind is not None and behind.public_url == URL
    assert behind.secure_cookies and not behind.local_only


# -- sign-ins ------------------------------------------------------------------------------------


@pytest.fixture
def acl() -> Acl:
    return Acl([Grant(ALICE, Role.VIEWER), Grant("@ops:example.org", Role.OPERATOR)])


@pytest.fixture
def signins(ledger: Ledger, acl: Acl, clock: ManualClock) -> SignIns:
    return SignIns(ledger.dashboard, acl, clock)


async def test_a_link_becomes_a_session_with_the_role_then_is_spent(signins: SignIns) -> None:
    """A listed person's link signs in once; the cookie then names them and their role."""
    secret = await signins.issue("matrix", ALICE, ())
    assert secret is not None and len(secret) == 43
    used = await signins.redeem(secret)
    assert used is not None
    cookie, viewer = used
    assert (viewer.user_id, viewer.role) == (ALICE, Role.VIEWER)
    assert await signins.check(cookie) == viewer
    assert await signins.redeem(secret) is None
    assert await signins.issue("matrix", "@mallory:example.org", ()) is None  # a stranger


async def test_a_changed_or_removed_role_ends_the_session_at_the_next_request(
    signins: SignIns, acl: Acl
) -> None:
    """Promoted, demoted or removed by a reload: the old session is no longer good, and a
    request that finds it so ends it for good."""
    secret = await signins.issue("matrix", ALICE, ())
    assert secret is not None
    used = await signins.redeem(secret)
    assert used is not None
    cookie, viewer = used
    acl.replace([Grant(ALICE, Role.OPERATOR)])
    assert await signins.check(cookie) is None
    assert not signins.still_allowed(viewer)
    acl.replace([Grant(ALICE, Role.VIEWER)])
    assert await signins.check(cookie) is None  # her role is back; the session is not


async def test_an_admin_demoted_then_restored_does_not_get_the_old_session_back(
    signins: SignIns, acl: Acl
) -> None:
    """Demoted and restored by two reloads, with no request between: the session ended at
    the demotion, for good."""
    acl.replace([Grant(ALICE, Role.ADMIN)])
    secret = await signins.issue("matrix", ALICE, ())
    assert secret is not None
    used = await signins.redeem(secret)
    assert used is not None
    acl.replace([Grant(ALICE, Role.VIEWER)])
    assert await signins.settle() == 1  # as `roster reload` does after replacing the ACL
    acl.replace([Grant(ALICE, Role.ADMIN)])
    assert await signins.settle() == 0
    assert await signins.check(used[0]) is None
    assert not await signins.alive(used[1].session)


async def test_a_link_sent_before_a_removal_does_not_sign_in_after_a_re_add(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Removed and re-added, by a reload or by a restart with the config changed while
    Fleetwarden was down: a link sent before the removal is void, and her other sessions
    stay ended."""
    listed = [Grant(ALICE, Role.OPERATOR), Grant("@ops:example.org", Role.OPERATOR)]
    acl = Acl(listed)
    signins = SignIns(ledger.dashboard, acl, clock)
    link = await signins.issue("matrix", ALICE, ())
    other = await signins.issue("matrix", "@ops:example.org", ())
    assert link is not None and other is not None
    acl.replace(listed[1:])
    assert await signins.settle() == 1  # hers only
    acl.replace(listed)
    assert await signins.redeem(link) is None
    assert await signins.redeem(other) is not None
    later = await signins.issue("matrix", ALICE, ())
    assert later is not None
    session = await signins.redeem(later)
    assert session is not None
    down = SignIns(ledger.dashboard, Acl(listed[1:]), clock)  # the next start, without her
    assert await down.settle() == 1
    assert await SignIns(ledger.dashboard, Acl(listed), clock).check(session[0]) is None


async def test_a_link_expires_after_ten_minutes_and_revoke_ends_sessions(
    signins: SignIns, clock: ManualClock
) -> None:
    """A link unused for ten minutes is refused; `dashboard revoke` ends live sessions."""
    late = await signins.issue("matrix", ALICE, ())
    clock.advance(601)
    assert late is not None and await signins.redeem(late) is None
    secret = await signins.issue("matrix", ALICE, ())
    assert secret is not None
    used = await signins.redeem(secret)
    assert used is not None
    assert await signins.revoke("matrix", ALICE) == 1
    assert await signins.check(used[0]) is None


async def test_a_malformed_secret_is_refused_before_the_ledger_is_asked(
    signins: SignIns,
) -> None:
    """Anything that is not 43 URL-safe characters is not one of ours."""
    for forged in ("", "x" * 42, "x" * 44, "a" * 42 + "/", "ü" * 43):
        assert await signins.redeem(forged) is None
        assert await signins.check(forged) is None
    assert digest("a") != digest("b") and len(digest("a")) == 64


# -- the command ---------------------------------------------------------------------------------


class PrivateConnector(FakeConnector):
    def __init__(self, *, works: bool = True) -> None:
        super().__init__("matrix")
        self.works = works
        self.private: list[tuple[str, str]] = []

    def can_send_private(self) -> bool:
        return True

    async def send_private(self, user: UserId, markdown: str) -> bool:
        self.private.append((user, markdown))
        return self.works


def request(text: str, connector: str = "matrix", sender: str = ALICE) -> Request:
    command = Grammar(COMMANDS).parse(text)
    assert command is not None
    msg = message(text, sender=sender, connector=connector)
    return Request(message=msg, role=Role.VIEWER, command=command)


async def test_the_link_goes_to_a_direct_message_never_to_the_room(
    signins: SignIns,
) -> None:
    """On a chat service the room hears only that a link was sent; the link is private."""
    chat = PrivateConnector()
    commands = DashboardCommands(signins, BEHIND, lambda name: chat if name == "matrix" else None)
    reply = await commands.dashboard(request("!dashboard"))
    assert isinstance(reply, Reply) and "/signin/" not in reply.markdown
    assert "direct message" in reply.markdown
    [(user, text)] = chat.private
    assert user == ALICE and f"{URL}/signin/" in text
    assert await signins.redeem(link_secret(text)) is not None


async def test_without_a_private_way_no_link_is_made(signins: SignIns, ledger: Ledger) -> None:
    """A connector that cannot write to one person gets a refusal saying where to ask; a
    DM that fails voids the link it carried."""
    plain = FakeConnector("discord")
    commands = DashboardCommands(signins, BEHIND, lambda name: plain)
    with pytest.raises(CommandError, match="never posted in a shared room"):
        await commands.dashboard(request("!dashboard", connector="discord"))
    broken = PrivateConnector(works=False)
    commands = DashboardCommands(signins, BEHIND, lambda name: broken)
    with pytest.raises(CommandError, match="your link was voided"):
        await commands.dashboard(request("!dashboard"))
    assert await signins.redeem(link_secret(broken.private[0][1])) is None


def link_secret(text: str) -> str:
    """The secret of the one sign-in link in ``text``, written as an autolink."""
    [secret] = re.findall(r"/signin/([A-Za-z0-9_-]{43})>", text)
    return str(secret)


async def test_a_link_whose_secret_looks_like_emphasis_reaches_every_medium_whole(
    signins: SignIns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret is URL-safe base64, so ``-_`` and ``_-`` in it could read as markdown
    emphasis and lose its underscores on the way (a link that never signs in): the link is
    an autolink, shown whole on the console, in Matrix's HTML, on Discord and on Slack."""
    tricky = "ab-_cd_-ef__gh__-ij_" + "m" * 23
    monkeypatch.setattr("bot.dashboard.access.signin.secrets.token_urlsafe", lambda n: tricky)
    chat = PrivateConnector()
    commands = DashboardCommands(signins, BEHIND, lambda name: chat)
    await commands.dashboard(request("!dashboard"))
    [(_, text)] = chat.private
    link = f"{URL}/signin/{tricky}"
    assert link_secret(text) == tricky
    assert link in to_plain(text) and f"{link} (" not in to_plain(text)
    assert f'<a href="{link}">{link}</a>' in to_html(text)
    assert f"<{link}>" in to_discord(text) and f"&lt;{link}&gt;" in to_mrkdwn(text)
    assert await signins.redeem(tricky) is not None


async def test_the_console_gets_the_link_as_its_answer(signins: SignIns, tmp_path: Path) -> None:
    """The console is the operator's own terminal: the answer is the link."""
    local = DashboardSection().settings(tmp_path)
    commands = DashboardCommands(signins, local, lambda name: None)
    with pytest.raises(CommandError, match="has not started yet"):  # never a 127.0.0.1 link
        await commands.dashboard(request("!dashboard", connector="console"))
    name = own_name(tmp_path, make=True)
    reply = await commands.dashboard(request("!dashboard", connector="console"))
    assert isinstance(reply, Reply) and f"http://{name}:8750/signin/" in reply.markdown
    assert reply.detail == "sign-in link shown on the console"  # the audit never has it
    off = DashboardCommands(None, None, lambda name: None)
    with pytest.raises(CommandError, match="add a `dashboard:` section"):
        await off.dashboard(request("!dashboard", connector="console"))
    assert "no dashboard session" in await commands.revoke(request("!dashboard revoke"))


# -- live updates --------------------------------------------------------------------------------


async def test_fifty_watchers_of_a_page_cost_one_rendering_per_tick() -> None:
    """One source: a topic is rendered once a tick however many watch it; each watcher gets
    only the newest fragment; a topic nobody watches stops rendering."""
    renders: list[str] = []
    version = 0

    async def render(topic: str) -> str:
        renders.append(topic)
        return f"{topic} v{version}"

    async def sessions() -> set[str]:
        return {"s"}

    hub = LiveHub(render, sessions, tick=0.01)
    watchers = [hub.watch("fleet") for _ in range(50)]
    assert all(isinstance(w, Watcher) for w in watchers)
    first = [await w.next(1.0) for w in watchers if isinstance(w, Watcher)]
    assert set(first) == {"fleet v0"}
    version = 1
    await asyncio.sleep(0.05)
    assert [await w.next(1.0) for w in watchers if isinstance(w, Watcher)] == ["fleet v1"] * 50
    assert len(renders) < 20  # ticks, not watchers × ticks
    await hub.refresh_sessions()  # the scheduler's job, while anyone watches
    assert hub.live_sessions == {"s"}
    for w in watchers:
        assert isinstance(w, Watcher)
        hub.leave(w)
    await asyncio.sleep(0.05)
    count = len(renders)
    await asyncio.sleep(0.05)
    assert len(renders) == count  # nobody watches: no more rendering
    await hub.stop()


async def test_the_hub_refuses_streams_beyond_its_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the cap, a new stream is refused rather than queued; past one session's cap,
    that session's is, while another session still gets one (and a stream that ended
    frees its place)."""
    monkeypatch.setattr("bot.dashboard.serving.live.MAX_WATCHERS", 4)
    monkeypatch.setattr("bot.dashboard.serving.live.MAX_PER_SESSION", 2)

    async def render(topic: str) -> str:
        return topic

    async def sessions() -> set[str]:
        return set()

    hub = LiveHub(render, sessions, tick=0.01)
    first, second = hub.watch("fleet", "s1"), hub.watch("budgets", "s1")
    assert isinstance(first, Watcher) and isinstance(second, Watcher)
    assert hub.watch("fleet", "s1") is Full.SESSION
    hub.leave(first)
    hub.leave(first)  # twice: counted once
    assert isinstance(hub.watch("fleet", "s1"), Watcher)
    assert hub.watch("fleet", "s1") is Full.SESSION
    assert all(isinstance(hub.watch("fleet", "s2"), Watcher) for _ in range(2))
    assert hub.watch("budgets", "s3") is Full.HUB
    await hub.stop()


# -- HTML ----------------------------------------------------------------------------------------


def test_what_an_agent_printed_never_becomes_markup() -> None:
    """Agent text in a transcript is escaped; table alignment is a class, not a style."""
    html = markdown_html("> <script>alert(1)</script> **bold**\n\n| a | b |\n|--:|:-:|\n| 1 | 2 |")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "style=" not in html and 'class="align-right"' in html
    pages = Pages()
    viewer = Viewer("matrix", "<b>x</b>", Role.VIEWER, "s")
    data = {
        "generated_at": None,
        "orchestrator": "o",
        "agents": [
            {
                "name": "a<i>",
                "host": "local",
                "state": "running",
                "heartbeat_age_seconds": 1.0,
                "model": "<img src=x onerror=alert(1)>",
                "downgraded_from": None,
                "tokens_today": 1500,
                "cost_today_usd": 0.5,
                "pacing": None,
                "problems": ["<b>bad</b>"],
            }
        ],
        "totals": {
            "agents": 1,
            "by_state": {"running": 1},
            "with_problems": 1,
            "tokens_today": 1500,
            "cost_today_usd": 0.5,
        },
    }
    page = pages.page("fleet", data, viewer, here="/", topic="fleet")
    assert "<img" not in page and "<b>x</b>" not in page and "<i>" not in page
    assert "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "1.5k" in page


# -- metrics -------------------------------------------------------------------------------------


async def test_metrics_are_the_ledgers_sums_and_the_proxys_latencies(
    ledger: Ledger, clock: ManualClock
) -> None:
    """Counters from the usage sums, gauges from the pages' data, histograms observed on
    the way to the ledger; parsed back by prometheus_client's own parser."""
    metrics = Metrics()
    sink = ObservedSink(ledger.metering.record_metering, metrics)
    await sink([event(at=clock.now()), event(at=clock.now(), agent="coder-2")], [])
    sums, last = await ledger.dashboard.usage_sums_after(0)
    assert [u.agent for u in sorted(sums, key=lambda u: u.agent)] == ["coder-1", "coder-2"]
    assert last == 2 and await ledger.dashboard.usage_sums_after(2) == ([], 2)
    metrics.send_failed("matrix")
    fleet = {
        "agents": [
            {
                "name": "coder-1",
                "host": "local",
                "state": "running",
                "pid": 1,
                "heartbeat_age_seconds": 3.0,
            },
            {
                "name": "coder-2",
                "host": "box",
                "state": "unknown",
                "pid": None,
                "heartbeat_age_seconds": None,
            },
        ]
    }
    budgets = {
        "budgets": [{"key": "global", "unit": "tokens", "pace_ratio": 0.8, "remaining": 1000.0}]
    }
    text = (
        await metrics.render(Snapshot(fleet, budgets), ledger.dashboard.usage_sums_after)
    ).decode()
    await sink([event(at=clock.now())], [])  # a later scrape adds only the new row
    again = (
        await metrics.render(Snapshot(fleet, budgets), ledger.dashboard.usage_sums_after)
    ).decode()
    assert 'fleetwarden_model_requests_total{account="",agent="coder-1"' in again
    assert any(
        line.startswith('fleetwarden_model_requests_total{account="",agent="coder-1"')
        and line.endswith(" 2.0")
        for line in again.splitlines()
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    who = (
        ("account", ""),
        ("agent", "coder-1"),
        ("model", "claude-sonnet-4-20250514"),
        ("provider", "anthropic"),
    )
    assert samples[("fleetwarden_model_requests_total", who)] == 1
    assert (
        samples[("fleetwarden_model_tokens_total", (*who[:2], ("kind", "cache_read"), *who[2:]))]
        == 2000
    )
    assert samples[("fleetwarden_model_cost_usd_total", who)] == pytest.approx(0.0125)
    assert samples[("fleetwarden_agents", (("host", "box"), ("state", "unknown")))] == 1
    assert (
        samples[
            ("fleetwarden_agent_heartbeat_age_seconds", (("agent", "coder-1"), ("host", "local")))
        ]
        == 3.0
    )
    assert samples[("fleetwarden_budget_pace_ratio", (("budget", "global"),))] == 0.8
    assert samples[("fleetwarden_chat_send_failures_total", (("connector", "matrix"),))] == 1
    assert samples[("fleetwarden_proxy_request_seconds_count", (("provider", "anthropic"),))] == 2
    assert (
        samples[
            ("fleetwarden_proxy_ttfb_seconds_bucket", (("le", "0.25"), ("provider", "anthropic")))
        ]
        == 2
    )
