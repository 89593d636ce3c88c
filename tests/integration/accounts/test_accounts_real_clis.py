"""The real pinned CLIs on accounts the proxy holds: Claude Code on a Claude subscription
and Codex on a ChatGPT login reach providers that accept only the account's real
credential, so their requests succeed only through the proxy's injection; nothing the
agent was given or wrote holds a real credential; usage and quota windows land per
account; eight Codex agents finding the login expired make one refresh; a pool places a
new run on the emptier account and moves an agent off a `rejected` one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from fleet.accounts.book import AccountBook
from fleet.accounts.chatgpt import read_login
from fleet.accounts.model import Account, AccountKind, AccountSet, login_path
from fleet.accounts.quota import QuotaStatus, QuotaWindow
from fleet.backends.process import SubprocessBackend
from fleet.ledger import Ledger
from fleet.metering.proxy import MeteringProxy
from fleet.model import AgentSpec, AgentState
from fleet.names import AgentName
from fleet.runs.launch.launch_kit import LaunchKit, RunSpend
from fleet.runtimes import default_registry
from fleet.supervisor.admission.request import LaunchRequest
from fleet.supervisor.fleet import Fleet, FleetSettings
from fleet.timing.clock import SystemClock
from tests.fakes.doubles.job_context import RecordingBoard
from tests.fakes.doubles.launches import real_fleet
from tests.fakes.doubles.stores import fleet_stores
from tests.fakes.provider.chatgpt import FakeChatGpt, codex_headers
from tests.fakes.provider.server import Accepted, FakeProvider, Turn, unified_headers
from tests.integration.accounts.accounts_rig import holding_proxy
from tests.integration.runtimes.test_fleet_real_clis import settled, stop_live
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

MAX_TOKEN = "fake-oat-claude-max-real-token-0001"
TEAM_TOKEN = "fake-oat-claude-team-real-token-002"
REPLY = "fleetwarden-accounts-reply-7c1d"
ACCOUNTS = AccountSet(
    {
        "claude-max": Account("claude-max", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "MAX"),
        "claude-team": Account("claude-team", "anthropic", AccountKind.CLAUDE_SUBSCRIPTION, "TEAM"),
        "codex-pro": Account("codex-pro", "chatgpt", AccountKind.CHATGPT_SUBSCRIPTION),
    },
    {"claude": ("claude-max", "claude-team")},
)


@dataclass
class Rig:
    anthropic: FakeProvider
    chatgpt: FakeChatGpt
    chatgpt_time: list[float]
    proxy: MeteringProxy
    book: AccountBook
    ledger: Ledger
    fleet: Fleet
    state_dir: Path
    work: Path

    async def run(self, *agents: tuple[str, str | None]) -> None:
        """Spawn the agents (name, account) at once; each must end with status 0."""
        for name, _ in agents:
            cli("codex" if name.startswith("x") else "claude")
        await asyncio.gather(
            *(
                self.fleet.spawn(LaunchRequest(name, account=account, collect=False))
                for name, account in agents
            )
        )
        for name, _ in agents:
            state = await settled(self.fleet, self.ledger, name, deadline=90)
            logs = "\n".join(await self.fleet.logs(name, 400))[-4000:]
            # a live session that waits for its next turn (Codex) runs on
            assert state in (AgentState.EXITED, AgentState.RUNNING), logs
            assert REPLY in logs, logs
            await stop_live(self.fleet, self.ledger, name)
        await self.proxy.recorder.flush()
        await self.book.flush()

    def secrets(self) -> list[str]:
        login = read_login(login_path(self.state_dir, "codex-pro"))
        live = self.chatgpt.login("acct-1")
        return [
            MAX_TOKEN,
            TEAM_TOKEN,
            login.access_token,
            login.refresh_token,
            login.id_token,
            live.access_token,
            live.refresh_token,
        ]

    def agent_files_hold_no_secret(self, names: Iterable[str]) -> None:
        """Every file under each agent's directory (home, config, run files, log)."""
        secrets = self.secrets()
        for name in names:
            root = self.state_dir / "agents" / name
            files = [p for p in root.rglob("*") if p.is_file()]
            assert files, root
            for path in files:
                data = path.read_bytes()
                leaked = [s for s in secrets if s.encode() in data]
                assert not leaked, f"{path} holds a real credential"


@pytest.fixture
async def accounts_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    work = tmp_path / "work"
    work.mkdir()
    clock = SystemClock()
    chatgpt_time = [time.time()]
    accept = Accepted(oauth_tokens=frozenset({MAX_TOKEN, TEAM_TOKEN}))
    default = Turn(text=REPLY)
    async with (
        FakeProvider(default=default, accept=accept) as anthropic,
        FakeChatGpt(default=default, clock=lambda: chatgpt_time[0]) as chatgpt,
    ):
        state_dir = tmp_path / "state"
        path = login_path(state_dir, "codex-pro")
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(chatgpt.add_login("acct-1")))
        ledger = await Ledger.open(tmp_path / "ledger.db", clock)
        environ = {"MAX": MAX_TOKEN, "TEAM": TEAM_TOKEN}
        path_var = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
        # Fleetwarden's own environment holds the tokens; agents must get none of it.
        fleet_env = {"PATH": ":".join(dict.fromkeys(path_var)), "LANG": "C.UTF-8", **environ}
        roster = {
            AgentName(f"x{n}"): AgentSpec(
                AgentName(f"x{n}"),
                "codex",
                model="gpt-5-codex",
                prompt="say hi",
                workdir=work,
                account="codex-pro",
                timeout=90.0,
            )
            for n in range(8)
        }
        for name in ("c1", "c2"):
            roster[AgentName(name)] = AgentSpec(
                AgentName(name), "claude", prompt="say hi", workdir=work, timeout=90.0
            )
        try:
            async with holding_proxy(
                ACCOUNTS,
                environ=environ,
                state_dir=state_dir,
                ledger=ledger,
                clock=clock,
                notices=RecordingBoard(),
                anthropic=anthropic,
                chatgpt=chatgpt,
            ) as (book, proxy):
                fleet = real_fleet(
                    stores=fleet_stores(ledger),
                    clock=clock,
                    kit=LaunchKit(
                        runtimes=default_registry(),
                        backends={"subprocess": SubprocessBackend()},
                        settings=FleetSettings(state_dir=state_dir),
                        environ=fleet_env,
                        spend=RunSpend(provider_urls=proxy, accounts=book),
                    ),
                    roster=roster,
                )
                await fleet.start()
                try:
                    yield Rig(
                        anthropic,
                        chatgpt,
                        chatgpt_time,
                        proxy,
                        book,
                        ledger,
                        fleet,
                        state_dir,
                        work,
                    )
                finally:
                    for name in roster:
                        record = await ledger.agents.get_agent(name)
                        if record is not None and record.state.is_live:
                            await fleet.stop_agent(name, force=True)
                    await fleet.stop()
        finally:
            await ledger.close()


def _h(hours: float) -> timedelta:
    return timedelta(hours=hours)


async def test_claude_code_on_a_subscription_works_only_through_injection(
    accounts_rig: Rig,
) -> None:
    """Claude Code holds a placeholder OAuth token; the fake accepts only the account's
    real one, so the run succeeds only because the proxy injected it. Usage and the
    subscription's windows land on the account; no agent file holds the token."""
    now = int(time.time())
    accounts_rig.anthropic.quota_headers[MAX_TOKEN] = unified_headers(
        five_hour=0.3, seven_day=0.2, reset_5h=now + 3600, reset_7d=now + 86400
    )
    await accounts_rig.run(("c1", "claude-max"))
    model = [r for r in accounts_rig.anthropic.requests if r.api is not None]
    assert model and all(r.credential == MAX_TOKEN for r in model)
    assert not accounts_rig.anthropic.refused
    events = await accounts_rig.ledger.metering.usage_events()
    assert events and {e.account for e in events} == {"claude-max"}
    windows = {w.window: w for w in accounts_rig.book.windows_of("claude-max")}
    assert windows["5h"].used == pytest.approx(0.3) and windows["7d"].used == pytest.approx(0.2)
    accounts_rig.agent_files_hold_no_secret(["c1"])


async def test_codex_on_a_chatgpt_login_works_only_through_injection(accounts_rig: Rig) -> None:
    """Codex holds a placeholder login; the ChatGPT fake accepts only the live access
    token with the real account id. Quota windows land on the account."""
    accounts_rig.chatgpt.codex_headers["acct-1"] = codex_headers(
        primary=25.0, secondary=5.0, primary_reset_after=600, secondary_reset_after=6000
    )
    await accounts_rig.run(("x0", None))
    model = [r for r in accounts_rig.chatgpt.requests if r.api is not None]
    assert model and all(
        r.credential == accounts_rig.chatgpt.login("acct-1").access_token for r in model
    )
    assert all(r.headers["chatgpt-account-id"] == "acct-1" for r in model)
    assert {e.account for e in await accounts_rig.ledger.metering.usage_events()} == {"codex-pro"}
    assert {w.window for w in accounts_rig.book.windows_of("codex-pro")} == {"primary", "secondary"}
    accounts_rig.agent_files_hold_no_secret(["x0"])


async def test_eight_codex_agents_on_an_expired_login_refresh_once(accounts_rig: Rig) -> None:
    """The login's access token expires; eight Codex agents start at once: exactly one
    refresh reaches the provider, and every agent finishes."""
    accounts_rig.chatgpt_time[0] += 2 * 3600
    await accounts_rig.run(*((f"x{n}", None) for n in range(8)))
    assert accounts_rig.chatgpt.refreshes == 1
    assert all(a.outcome == "rotated" for a in accounts_rig.chatgpt.refresh_log)
    accounts_rig.agent_files_hold_no_secret(f"x{n}" for n in range(8))


async def test_a_pool_places_a_run_on_the_emptier_account_and_moves_off_rejected(
    accounts_rig: Rig,
) -> None:
    """New runs go to the account with more room; when that account's window is
    rejected mid-run, the agent's next request is made on the other account."""
    now = accounts_rig.book.now()
    accounts_rig.book.observe(
        [
            QuotaWindow(
                "claude-max", "5h", 0.9, now + _h(2.5), QuotaStatus.ALLOWED, now, "t", _h(5)
            ),
            QuotaWindow(
                "claude-team", "5h", 0.1, now + _h(2.5), QuotaStatus.ALLOWED, now, "t", _h(5)
            ),
        ]
    )
    await accounts_rig.run(("c1", "claude"))
    assert accounts_rig.book.account_of("c1", "anthropic") == "claude-team"
    assert {r.credential for r in accounts_rig.anthropic.requests if r.api} == {TEAM_TOKEN}

    epoch = int(time.time())
    accounts_rig.anthropic.quota_headers[TEAM_TOKEN] = unified_headers(
        five_hour=1.0, seven_day=0.4, status="rejected", reset_5h=epoch + 900, reset_7d=epoch + 9e4
    )
    accounts_rig.anthropic.rejecting.add(TEAM_TOKEN)
    before = len(accounts_rig.anthropic.requests)
    await accounts_rig.run(("c2", "claude"))
    tried = [r.credential for r in accounts_rig.anthropic.requests[before:] if r.api]
    assert tried[0] == TEAM_TOKEN and tried[-1] == MAX_TOKEN, tried
    assert accounts_rig.book.account_of("c2", "anthropic") == "claude-max"
