"""A run's ask at its cap in an end-to-end encrypted Matrix room on a real Synapse, with
the real ``fleetwarden run``, a stub agent and the fake provider: the ask shows in the
agent's thread, apart from an agent's own asks; a viewer's ✅ changes nothing; the
operator's ✅ raises the cap by the offer, thaws the run, and the ask's message says who."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.provider.background import fake_provider_thread
from tests.fakes.provider.server import Accepted, FakeProvider, Turn, Usage
from tests.integration.approvals.test_approvals_matrix import edits_of, until
from tests.integration.connectors.matrix.test_matrix_bot import PASSWORD
from tests.integration.connectors.matrix.test_matrix_e2ee import Encrypted, encrypted_room, joined
from tests.integration.console_bot import FLEETWARDEN, clean_env, stub_processes_in
from tests.matrix_user import Event
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

KEY = "fake-matrix-cap-ask-key-0123456789abcdef"
MODEL = "claude-sonnet-4-5"
# 30 000 tokens and $0.21 a request (20 000 in at $3/M, 10 000 out at $15/M).
USAGE = Usage(input=20_000, output=10_000)


def config(world: Encrypted, upstream: str) -> Path:
    path = world.workdir / "fleetwarden.yaml"
    path.write_text(
        world.head() + "defaults:\n"
        "  stop_grace_seconds: 1\n"
        "providers:\n"
        "  anthropic:\n"
        f"    upstream: {upstream}\n"
        "prices:\n"
        f"  {MODEL}: {{input: 3.0, output: 15.0}}\n"
        "agents:\n"
        "  - name: coder\n"
        "    runtime: stub\n"
        f"    model: {MODEL}\n"
        "    secret_env: [ANTHROPIC_API_KEY]\n"
        "    run_budget: {max_usd: 0.30, cutoff: ask, ask_within: 30m, offer_usd: 1}\n"
    )
    return path


@pytest.fixture
async def run_cap_world(synapse: SynapseServer, tmp_path: Path) -> AsyncIterator[Encrypted]:
    async with encrypted_room(synapse, tmp_path) as made:
        yield made


@pytest.fixture
async def running(run_cap_world: Encrypted) -> AsyncIterator[FakeProvider]:
    """The fake provider and the real ``fleetwarden run``; both stopped however it ends."""
    turn = Turn(text="spent", usage=USAGE)
    with fake_provider_thread(default=turn, accept=Accepted(frozenset({KEY}))) as provider:
        proc = subprocess.Popen(  # noqa: ASYNC220 - it runs for the whole test
            [str(FLEETWARDEN), "run", "--config", str(config(run_cap_world, provider.base_url))],
            cwd=run_cap_world.workdir,
            env=clean_env(FW_BOT_PASSWORD=PASSWORD, ANTHROPIC_API_KEY=KEY),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            await joined(run_cap_world.operator, run_cap_world.room, run_cap_world.bot)
            yield provider
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = await asyncio.to_thread(proc.communicate, timeout=30)
            finally:
                for pid in stub_processes_in(run_cap_world.workdir / "state" / "agents" / "coder"):
                    os.kill(pid, signal.SIGKILL)
            assert proc.returncode == 0, err.decode()


async def test_the_operators_reaction_raises_a_run_at_its_cap_and_thaws_it(
    run_cap_world: Encrypted, running: FakeProvider
) -> None:
    """Two requests served, the third held: the 💸 ask shows in coder's thread; a
    viewer's ✅ is refused; the operator's ✅ raises the cap by the $1 offer to $1.30, and
    the run is served past its old cap."""
    op, viewer = run_cap_world.operator, run_cap_world.viewer
    await op.say(run_cap_world.room, "!spawn coder")
    started = "Agent **coder** started"
    [root] = await op.wait_for(lambda evs: [e for e in evs if started in e.body], within=60)
    await op.say(run_cap_world.room, "!send coder ask 3", thread=root.event_id)

    def asked(evs: list[Event]) -> list[Event]:
        return [
            e
            for e in evs
            if e.sender == run_cap_world.bot
            and e.thread_root == root.event_id
            and "💸 Spend" in e.body
            and "reached its $0.30 cap" in e.body
        ]

    [message] = await op.wait_for(asked, within=60)
    assert "🔐 Approval" not in message.body and "raise coder +$1" in message.body
    assert len(running.requests) == 2
    await viewer.wait_for(lambda evs: [e for e in evs if e.event_id == message.event_id])
    await viewer.client.joined_members(run_cap_world.room)
    await viewer.react(run_cap_world.room, message.event_id, "✅")
    await op.wait_for(lambda evs: [e for e in evs if "is not an answer" in e.body])
    await op.react(run_cap_world.room, message.event_id, "✅")
    [edit] = await op.wait_for(lambda evs: edits_of(evs, message.event_id), within=30)
    body = edit.content["m.new_content"]["body"]
    assert "Raised by" in body and op.user_id in body and "(reaction)" in body
    await until(lambda: len(running.requests) >= 3, within=60)  # the held one goes on
    await op.say(run_cap_world.room, "!send coder ask 1", thread=root.event_id)
    await until(lambda: len(running.requests) == 4, within=60)  # past its old cap
    await op.say(run_cap_world.room, "!stop coder", thread=root.event_id)
    await op.wait_for(lambda evs: [e for e in evs if "Stopped **coder**" in e.body], within=30)
