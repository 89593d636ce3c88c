"""Agents on another host reach the metering proxy and the heartbeat endpoint only through
the host's forward: the real `fleetwarden run`, a real OpenSSH server on 127.0.0.2 as the
host (its own Unix user), the strict fake provider behind the proxy. A stub agent there
asks twice, the real Claude Code (pinned from npm) there answers a prompt; the provider
sees only the account's key (the agents hold none), and the ledger holds exactly what the
provider emitted, each row with host box2; `usage --host box2` sums them. And the CLIs
there ask the operator here, each its own way, and run what was approved."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.metering.counting.events import Outcome
from fleet.timing.clock import SystemClock
from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, ToolCall, Turn, Usage
from tests.integration.console_bot import clean_env
from tests.integration.hosts.test_hosts_e2e import WAIT, _started, _until
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir
from tests.sshd_server import SshServer

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

KEY = "fake-hosts-key-0123456789abcdefghijklmn"
USAGE = Usage(input=1200, output=80, cache_read=400, cache_write=100)


def host_config(upstream: str, host: SshServer, known: Path, state_dir: object) -> str:
    """The config's head: the console, the fake provider behind an api_key account, and
    the host ``box2`` with the agent CLIs on its PATH; the agents follow."""
    return (
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "providers:\n"
        f"  anthropic: {{upstream: '{upstream}'}}\n"
        "accounts:\n"
        "  team: {kind: api_key, provider: anthropic, key_env: FW_TEAM_KEY}\n"
        "hosts:\n"
        f"  - {{name: box2, ssh: '{host.ssh_target}', key_file: '{host.client_key}',"
        f" known_hosts: '{known}', state_dir: {state_dir},"
        f" path: ['{bin_dir()}', '{node_dir()}']}}\n"
    )


async def test_agents_on_a_host_are_metered_through_its_forward(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    cli("claude")
    host, _ = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    with fake_provider_thread(
        default=Turn(text="answered-on-box2", usage=USAGE),
        accept=Accepted(api_keys=frozenset({KEY})),
    ) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            host_config(fake.base_url, host, known, host.state_dir("fw-meter")[0]) + "agents:\n"
            "  - {name: asker, runtime: stub, backend: tmux, host: box2, egress_allow: [],"
            " model: claude-haiku-4-5}\n"
            "  - {name: c1, runtime: claude, backend: tmux, host: box2, egress_allow: []}\n"
        )
        bot = _started(tmp_path, config, "box2", env=clean_env(FW_TEAM_KEY=KEY))
        try:
            _until(bot, "hosts", r"^box2 +up .*claude")
            bot.command('spawn asker --prompt "ask 2"', r"asker", timeout=WAIT)
            _until(bot, "logs asker", r"answer 2/2: answered-on-box2")
            bot.command('spawn c1 --prompt "say hello"', r"c1", timeout=WAIT)
            # A usage row names the agent, then its model; an agent's mirrored output, which
            # may arrive between a command and its answer, is "NAME ›" and never matches.
            _until(bot, "usage --host box2", r"^asker +claude-haiku-4-5 ")
            # Claude Code's first request: its start can take a while on a loaded machine.
            _until(bot, "usage --host box2", r"^c1 +claude-", within=120)
            # Nothing was metered here: the answer about this machine says so.
            _until(bot, "usage --host local", r"On host \**local\**:\s+No model requests recorded")
            bot.command("stop asker", r"asker stopped after", timeout=WAIT)
            # Its run summary names the machine it ran on.
            bot.expect(r"asker · stub · run 1 · .* on box2", timeout=WAIT)
            bot.command("stop c1", r"(?i)stopped", timeout=WAIT)
            _until(bot, "ps", r"^c1 .*stopped")
            bot.send("quit")
            assert bot.wait(timeout=WAIT) == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
        # Only the account's key reached the provider: the agents on box2 hold none.
        assert fake.requests and all(r.headers.get("x-api-key") == KEY for r in fake.requests)
        emitted = [e.usage for e in fake.emitted if e.usage is not None]
    ledger = await Ledger.connect(
        LedgerLocation(tmp_path / "state" / "ledger.db", None), SystemClock()
    )
    try:
        events = await ledger.metering.usage_events()
        rows = await ledger.metering._all("SELECT agent, host FROM usage", ())
    finally:
        await ledger.close()
    assert {(str(r["agent"]), str(r["host"])) for r in rows} == {("asker", "box2"), ("c1", "box2")}
    metered = [e for e in events if e.outcome is Outcome.OK]
    assert len(metered) == len(emitted)
    total = lambda u: (u.input, u.output, u.cache_read, u.cache_write)  # noqa: E731
    assert sorted(
        (e.tokens.input, e.tokens.output, e.tokens.cache_read, e.tokens.cache_write)
        for e in metered
    ) == sorted(total(u) for u in emitted)


ASKS = [
    pytest.param("claude", "tmux", id="claude-tmux-hook"),
    pytest.param("claude", "subprocess", id="claude-headless-live-session"),
    pytest.param("pi", "subprocess", id="pi-gate"),
    pytest.param("opencode", "subprocess", id="opencode-gate"),
]


@pytest.mark.parametrize(("runtime", "backend"), ASKS)
def test_a_cli_on_a_host_asks_in_chat_and_runs_what_was_approved(
    runtime: str, backend: str, tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    """A CLI on box2, locked in its sandbox there, asks before a shell command: Claude
    Code in tmux through its permission hook (the heartbeat endpoint's ask door, through
    the host's forward), headless through its live session (its control protocol on the
    run's FIFO there, its output mirrored here), pi and opencode through Fleetwarden's
    gates copied there. The ask shows in `pending` here; nothing runs before `approve`,
    and then the command runs on box2."""
    cli(runtime)
    host, _ = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    state_dir, where = host.state_dir(f"fw-ask-{runtime}")
    marker = where / "agents/g1/work/made"
    tool = "Bash" if runtime == "claude" else "bash"
    args = {"command": "touch made", "description": "write the file"}
    if runtime == "pi":
        del args["description"]
    shell = Turn(text="", tool=ToolCall(tool, args), usage=Usage(input=900, output=30))
    with fake_provider_thread(
        shell, default=Turn(text="went on"), accept=Accepted(api_keys=frozenset({KEY}))
    ) as fake:
        config = tmp_path / "fleetwarden.yaml"
        config.write_text(
            host_config(fake.base_url, host, known, state_dir) + "agents:\n"
            f"  - {{name: g1, runtime: {runtime}, backend: {backend}, host: box2,"
            " egress_allow: [], permissions: ask}\n"
        )
        bot = _started(tmp_path, config, "box2", env=clean_env(FW_TEAM_KEY=KEY))
        try:
            _until(bot, "hosts", rf"^box2 +up .*{runtime}")
            bot.command('spawn g1 --prompt "mark it"', r"g1", timeout=WAIT)
            reply = _until(bot, "pending", rf"g1.*{tool}.*touch made", within=120)
            request = re.search(r"Approval\W+([a-z2-9]{4})\W.*g1", reply) or re.search(
                rf"^\s*([a-z2-9]{{4}})\b.*g1.*{tool}", reply, re.M
            )
            assert request is not None, reply
            assert not marker.exists()  # nothing runs before the answer
            bot.command(f"approve {request.group(1)}", r"allowed once", timeout=WAIT)
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert time.monotonic() < deadline, "the approved command never ran on box2"
                time.sleep(0.2)
            bot.command("stop g1", r"(?i)stopped|not running", timeout=WAIT)
            bot.send("quit")
            assert bot.wait(timeout=WAIT) == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()
