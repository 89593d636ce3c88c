"""An active orchestrator and its standby: two real `fleetwarden run` processes with the
same config and one real PostgreSQL ledger, serving the fake Discord on loopback. The
standby takes over from a `kill -9`'d active one within 15 s and answers the next command
exactly once; an active one paused (SIGSTOP) past its lease wakes fenced and steps down
without posting anything."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fakes.discord.records import PostedMessage
from tests.fakes.discord.server import FakeDiscord
from tests.integration.connectors.discord.test_discord_bot import (
    TOKEN_ENV,
    eventually,
    write_config,
)
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.sshd_server import SshServer

pytestmark = pytest.mark.integration

TAKEOVER = 15.0


class Orchestrator:
    """One `fleetwarden run` in a directory (its own state dir) of its own."""

    def __init__(self, fake: FakeDiscord, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / "state" / "fleetwarden.log"
        self.proc = subprocess.Popen(
            [str(FLEETWARDEN), "run", "--config", str(workdir / "fleetwarden.yaml")],
            cwd=workdir,
            env=clean_env(
                **{
                    TOKEN_ENV: fake.token,
                    "FLEETWARDEN_DISCORD_API_BASE": fake.api_base,
                    "FLEETWARDEN_DISCORD_GATEWAY_URL": fake.gateway_url,
                }
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def said(self, text: str) -> bool:
        return self.log.exists() and text in self.log.read_text()

    def exit_by_itself(self, within: float = 20.0) -> tuple[int, str]:
        """Wait for it to exit of its own accord; its exit code and standard error."""
        _, err = self.proc.communicate(timeout=within)
        return self.proc.returncode, err.decode()

    def end(self) -> tuple[int, str]:
        """Stop it (if it still runs) and return its exit code and standard error."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err.decode()


Start = Callable[..., Orchestrator]
"""``start(name, extra="")``: an orchestrator in a directory of its own, its config the
shared one plus ``extra``."""


@pytest.fixture
async def pair(tmp_path: Path, postgres_dsn: str) -> AsyncIterator[tuple[FakeDiscord, Start]]:
    """The fake Discord, and a way to start orchestrators that share one ledger; every
    one started is ended afterwards, pass or fail."""
    async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
        template = write_config(fake, tmp_path).read_text() + f"ledger: {postgres_dsn}\n"
        started: list[Orchestrator] = []

        def start(name: str, extra: str = "") -> Orchestrator:
            workdir = tmp_path / name
            workdir.mkdir()
            (workdir / "fleetwarden.yaml").write_text(template + extra)
            started.append(Orchestrator(fake, workdir))
            return started[-1]

        try:
            yield fake, start
        finally:
            for orchestrator in started:
                await asyncio.to_thread(orchestrator.end)
            shutil.rmtree(tmp_path / "state", ignore_errors=True)


def answers_to(fake: FakeDiscord, asked: PostedMessage) -> list[PostedMessage]:
    """The bot's messages in the control channel that reply to ``asked``."""
    return [
        m
        for m in fake.messages(fake.control_channel_id)
        if str((m.request.get("message_reference") or {}).get("message_id")) == str(asked.id)
    ]


async def ask_once(fake: FakeDiscord, text: str) -> PostedMessage:
    """Post ``text`` as ann; return it once it has exactly one answer, and stays so."""
    asked = await fake.post_user_message(fake.control_channel_id, "ann", text)
    await eventually(lambda: answers_to(fake, asked))
    await asyncio.sleep(1.0)  # a second answer, from anyone, would come in this time
    assert len(answers_to(fake, asked)) == 1
    return asked


async def test_the_standby_takes_over_from_a_killed_active_one_within_15_s(
    pair: tuple[FakeDiscord, Start],
) -> None:
    """kill -9 of the active one: the standby is active within 15 s, connected to chat,
    and answers the next command once; the command answered before is not answered again."""
    fake, start = pair
    first = start("a")
    await eventually(lambda: first.said("active:") and fake.connected)
    second = start("b")
    await eventually(lambda: second.said("standby:"))
    before = await ask_once(fake, "!whoami")

    killed = time.monotonic()
    first.proc.kill()
    await eventually(lambda: not fake.connected)
    await eventually(lambda: second.said("active:") and fake.connected, within=TAKEOVER + 5)
    took = time.monotonic() - killed
    assert took <= TAKEOVER, f"the standby took {took:.1f} s"

    after = await ask_once(fake, "!whoami")
    assert "operator" in answers_to(fake, after)[0].content
    assert len(answers_to(fake, before)) == 1
    code, err = await asyncio.to_thread(second.end)
    assert code == 0, err


async def test_a_paused_active_one_that_lost_the_lease_steps_down_without_acting(
    pair: tuple[FakeDiscord, Start],
) -> None:
    """SIGSTOP the active one until the standby has taken over and answered; woken, the
    old one finds its lease gone, posts nothing and exits saying it stepped down."""
    fake, start = pair
    first = start("a")
    await eventually(lambda: first.said("active:") and fake.connected)
    second = start("b")
    await eventually(lambda: second.said("standby:"))

    first.proc.send_signal(signal.SIGSTOP)
    await eventually(lambda: second.said("active:") and fake.connected, within=TAKEOVER + 5)
    await ask_once(fake, "!whoami")
    posted = len(fake.messages(fake.control_channel_id))

    first.proc.send_signal(signal.SIGCONT)
    code, err = await asyncio.to_thread(first.exit_by_itself)
    assert code == 1, err
    assert "stepped down" in err
    assert first.said("stepping down")
    assert len(fake.messages(fake.control_channel_id)) == posted
    await ask_once(fake, "!whoami")  # the new active one still answers


async def test_the_standby_carries_on_an_agent_on_a_host(
    tmp_path: Path,
    pair: tuple[FakeDiscord, Start],
    postgres_dsn: str,
    ssh_hosts: tuple[SshServer, SshServer],
) -> None:
    """An agent on box2, started by the active one, outlives its kill -9: the standby takes
    over, forwards box2's same host-local ports again (the agent keeps its URLs: its
    heartbeats arrive again, through its locked sandbox's doors), reattaches it — one
    process, never a second launch — and stops it on command, which revokes its token in
    the ledger too."""
    fake, start = pair
    host, _ = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    state_dir, where = host.state_dir("fw-standby")
    extra = (
        "hosts:\n"
        f"  - {{name: box2, ssh: '{host.ssh_target}', key_file: '{host.client_key}',"
        f" known_hosts: '{known}', state_dir: {state_dir}}}\n"
        "agents:\n"
        "  - {name: far, runtime: stub, backend: tmux, host: box2, egress_allow: []}\n"
    )
    first = start("a", extra)
    await eventually(lambda: first.said("active:") and first.said("host box2 connected"))
    await eventually(lambda: fake.connected)
    await fake.post_user_message(fake.control_channel_id, "ann", "!spawn far")
    agents = await eventually(lambda: _stubs_of(host.user))
    ports = _forward_ports(where)
    second = start("b", extra)
    await eventually(lambda: second.said("standby:"))

    first.proc.kill()
    killed = time.time()
    await eventually(lambda: second.said("active:") and fake.connected, within=TAKEOVER + 5)
    await eventually(lambda: second.said("host box2 connected"))
    assert _forward_ports(where) == ports  # the same host-local ports: same URLs
    assert await eventually(lambda: _beat_after(postgres_dsn, "far", killed), within=30)
    asked = await ask_once(fake, "!ps")
    answer = answers_to(fake, asked)[0].content
    assert "far" in answer and "box2" in answer and "running" in answer, answer
    assert _stubs_of(host.user) == agents  # reattached: the same one process
    assert _token_digests(postgres_dsn, "far") == 1  # its run's token, still accepted
    await ask_once(fake, "!stop far")
    await eventually(lambda: not _stubs_of(host.user))
    # Its run is over: its token revoked, the ledger's copy with it (no orchestrator of it
    # accepts that token again).
    await eventually(lambda: _token_digests(postgres_dsn, "far") == 0)
    code, err = await asyncio.to_thread(second.end)
    assert code == 0, err


async def test_an_orchestrator_back_after_its_standby_restarted_an_agent_takes_its_new_token(
    tmp_path: Path,
    pair: tuple[FakeDiscord, Start],
    postgres_dsn: str,
    ssh_hosts: tuple[SshServer, SshServer],
) -> None:
    """The active one launches an agent on a host and is killed; the standby takes over and
    restarts it (a new run, a new token) and is killed in turn; the first, started again on
    its own state dir, drops the token it kept of the run before — never putting it back in
    the ledger over the new one — and takes the new run's heartbeats."""
    fake, start = pair
    host, _ = ssh_hosts
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    state_dir, _where = host.state_dir("fw-standby-back")
    extra = (
        "hosts:\n"
        f"  - {{name: box2, ssh: '{host.ssh_target}', key_file: '{host.client_key}',"
        f" known_hosts: '{known}', state_dir: {state_dir}}}\n"
        "agents:\n"
        "  - {name: far, runtime: stub, backend: tmux, host: box2, egress_allow: []}\n"
    )
    first = start("a", extra)
    await eventually(lambda: first.said("active:") and first.said("host box2 connected"))
    await eventually(lambda: fake.connected)
    await fake.post_user_message(fake.control_channel_id, "ann", "!spawn far")
    agents = await eventually(lambda: _stubs_of(host.user))
    second = start("b", extra)
    await eventually(lambda: second.said("standby:"))
    first.proc.kill()
    await asyncio.to_thread(first.end)
    await eventually(lambda: second.said("active:") and fake.connected, within=TAKEOVER + 5)
    await eventually(lambda: second.said("host box2 connected"))
    await ask_once(fake, "!restart far")
    await eventually(lambda: (pids := _stubs_of(host.user)) and pids != agents)

    again = Orchestrator(fake, first.workdir)  # the first one's state dir, its old token
    try:
        await eventually(lambda: again.said("standby:") or _actives(again) > 1)
        second.proc.kill()
        killed = time.time()
        await eventually(lambda: _actives(again) > 1 and fake.connected, within=TAKEOVER + 5)
        assert await eventually(lambda: _beat_after(postgres_dsn, "far", killed), within=30)
        assert _token_digests(postgres_dsn, "far") == 1
        await ask_once(fake, "!stop far")
        await eventually(lambda: not _stubs_of(host.user))
        await eventually(lambda: _token_digests(postgres_dsn, "far") == 0)
    finally:
        code, err = await asyncio.to_thread(again.end)
    assert code == 0, err


def _actives(orchestrator: Orchestrator) -> int:
    """How many times the log of ``orchestrator``'s state dir says it became active."""
    return orchestrator.log.read_text().count("active:") if orchestrator.log.exists() else 0


def _stubs_of(user: str) -> list[int]:
    from tests.integration.hosts.test_hosts_e2e import _remote_agents

    return _remote_agents(user)


def _forward_ports(state_dir: Path) -> dict[str, int]:
    return dict(json.loads((state_dir / "forwards.json").read_text()))


def _token_digests(dsn: str, agent: str) -> int:
    """How many heartbeat tokens of ``agent`` the ledger shares between orchestrators."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM agent_token_digests WHERE agent = %s AND purpose = %s",
            (agent, "heartbeat"),
        ).fetchone()
    return int(row[0]) if row is not None else 0


def _beat_after(dsn: str, agent: str, after: float) -> bool:
    """Whether ``agent``'s last heartbeat in the ledger came after ``after`` (epoch s)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT MAX(at) FROM heartbeats WHERE agent = %s", (agent,)).fetchone()
    return row is not None and row[0] is not None and float(row[0]) > after
