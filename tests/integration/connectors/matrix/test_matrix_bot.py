"""The real `fleetwarden run` process serving a room on a real Synapse, used by a real
matrix-nio operator client — the way an operator in Element uses it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from tests.counting_proxy import CountingProxy
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.matrix_user import Event, MatrixUser
from tests.synapse_server import SynapseServer

pytestmark = [pytest.mark.integration, pytest.mark.synapse]

PASSWORD = "correct horse battery staple"


@dataclass
class Deployment:
    """A bot account, an operator, a stranger and a control room on one homeserver."""

    homeserver: str
    bot: str
    room: str
    operator: MatrixUser
    stranger: MatrixUser
    workdir: Path

    def config(self) -> Path:
        path = self.workdir / "fleetwarden.yaml"
        path.write_text(
            "state_dir: ./state\n"
            "operators:\n"
            f"  - {{id: '{self.operator.user_id}', role: operator}}\n"
            "connectors:\n"
            "  matrix:\n"
            f"    homeserver: {self.homeserver}\n"
            f"    user_id: '{self.bot}'\n"
            "    password_env: FW_BOT_PASSWORD\n"
            f"    rooms: ['{self.room}']\n"
            "    sync_timeout_seconds: 5\n"
        )
        return path


class Hosted(Protocol):
    """Where a bot is started: its folder and its config (a :class:`Deployment`, an
    encrypted one, Element's)."""

    workdir: Path

    def config(self) -> Path: ...


class Served(Hosted, Protocol):
    """A bot's account, and its room with an operator in it who sees it join."""

    bot: str
    room: str

    @property
    def operator(self) -> MatrixUser: ...


class BotProcess:
    """`fleetwarden run --config …` with no terminal, as a service runs it."""

    def __init__(self, deployment: Hosted) -> None:
        self.proc = subprocess.Popen(
            [str(FLEETWARDEN), "run", "--config", str(deployment.config())],
            cwd=deployment.workdir,
            env=clean_env(FW_BOT_PASSWORD=PASSWORD),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def stop(self) -> None:
        """Killed if it still runs; its pipe released either way (one that ended by itself
        left it open)."""
        if self.proc.poll() is None:
            self.kill()
        elif self.proc.stderr is not None:
            self.proc.stderr.close()

    def terminate(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err.decode()
        return err.decode()


@contextlib.asynccontextmanager
async def serving(world: Served) -> AsyncIterator[BotProcess]:
    """The real ``fleetwarden run`` on ``world``, once it has joined the room (a first
    start makes its device keys first: up to a minute on a loaded machine); stopped after,
    and stopped too when it never joins."""
    process = BotProcess(world)
    try:
        await joined(world.operator, world.room, world.bot, within=60)
        yield process
    finally:
        process.stop()


async def make_deployment(synapse: SynapseServer, workdir: Path) -> Deployment:
    tag = uuid.uuid4().hex[:8]
    bot = await synapse.register_async(f"bot{tag}", PASSWORD)
    op = await synapse.register_async(f"ann{tag}", PASSWORD)
    other = await synapse.register_async(f"mallory{tag}", PASSWORD)
    operator = MatrixUser(synapse.base_url, op.user_id, op.device_id, op.access_token)
    stranger = MatrixUser(synapse.base_url, other.user_id, other.device_id, other.access_token)
    room = await operator.create_room(invite=(bot.user_id, stranger.user_id))
    await stranger.join(room)
    return Deployment(synapse.base_url, bot.user_id, room, operator, stranger, workdir)


async def joined(
    user: MatrixUser, room: str, bot: str, count: int = 1, within: float = 20.0
) -> None:
    """Wait until ``bot`` has joined ``room`` ``count`` times: it then listens there."""
    await user.wait_for(
        lambda evs: (
            sum(
                1
                for e in evs
                if e.room == room
                and e.type == "m.room.member"
                and e.sender == bot
                and e.content.get("membership") == "join"
            )
            >= count
        ),
        within=within,
    )


def _stop_stray_agents(workdir: Path) -> None:
    """Agents outlive the bot by design; end the ones a test left behind — only processes
    that really are this test's agents (a stale pid may belong to anyone by now)."""
    for run_dir in workdir.glob("state/agents/*/runs/*"):
        pid_file = run_dir / "agent.pid"
        if not pid_file.exists() or (run_dir / "exit.json").exists():
            continue
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text())
            if os.readlink(f"/proc/{pid}/cwd").startswith(str(workdir)):
                os.killpg(os.getpgid(pid), signal.SIGKILL)


async def test_help_is_answered_in_the_room(deployment: Deployment, bot: BotProcess) -> None:
    """`!help` gets the command table as a reply, with HTML for Element."""
    reply = await deployment.operator.reply(deployment.room, "!help", deployment.bot)
    assert "spawn NAME" in reply.body
    assert "<table>" in reply.content.get("formatted_body", "")


async def test_spawn_opens_a_thread_where_logs_and_plain_messages_work(
    deployment: Deployment, bot: BotProcess
) -> None:
    """spawn posts the thread root; `!logs` in it answers there; plain text reaches the
    agent; and when the agent ends by itself, that is announced in the thread."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn demo --runtime stub --prompt hi")
    root: Event = (
        await op.wait_for(lambda evs: [e for e in evs if "Agent **demo** started" in e.body])
    )[0]
    assert root.thread_root is None  # the root is a plain room message
    logs = await op.reply(room, "!logs demo", me, thread=root.event_id)
    assert logs.thread_root == root.event_id and "stub: working on: hi" in logs.body
    answer = await op.reply(room, "how is it going?", me, thread=root.event_id)
    assert answer.thread_root == root.event_id
    assert "Sent to **demo**" in answer.body
    # What the agent answers follows in its thread, as it writes it.
    said = await op.wait_for(
        lambda evs: [e for e in evs if "stub: received: how is it going?" in e.body]
    )
    assert said[0].thread_root == root.event_id and said[0].sender == me
    # 300 lines at once reach the thread whole, in a few messages (Synapse's rate limit
    # on the bot is never hit: the feed batches and spaces its posts).
    before = len(op.events)
    await op.say(room, "lines 300", thread=root.event_id)
    await op.wait_for(lambda evs: [e for e in evs if "line 300 of 300" in e.body], within=40)
    fed = [e for e in op.events[before:] if e.sender == me and "line " in e.body]
    assert all(e.thread_root == root.event_id for e in fed)
    assert len(fed) <= 6
    numbers = [int(n) for e in fed for n in re.findall(r"line (\d+) of 300", e.body)]
    assert numbers == list(range(1, 301))
    await op.say(room, "exit", thread=root.event_id)
    # The summary: in the agent's thread and in the room.
    ended = await op.wait_for(
        lambda evs: (
            found
            if len(
                found := [e for e in evs if "**demo** finished after" in e.body and e.sender == me]
            )
            >= 2
            else None
        )
    )
    assert {e.thread_root for e in ended} == {root.event_id, None}


async def test_a_strangers_command_is_ignored(deployment: Deployment, bot: BotProcess) -> None:
    """A non-operator's `!spawn` gets no answer and starts nothing."""
    stranger_event = await deployment.stranger.say(deployment.room, "!spawn intruder")
    ps = await deployment.operator.reply(deployment.room, "!ps", deployment.bot)
    assert "intruder" not in ps.body
    assert deployment.operator.replies_to(stranger_event, deployment.bot) == []


async def test_an_invite_from_a_stranger_is_declined(
    deployment: Deployment, bot: BotProcess
) -> None:
    """The bot rejects a room invite from someone who is not an operator."""
    stranger = deployment.stranger
    await deployment.operator.reply(deployment.room, "!whoami", deployment.bot)  # bot is up
    room = await stranger.create_room(invite=(deployment.bot,))
    await stranger.wait_for(lambda _: stranger.left.get(room) == deployment.bot)


async def test_an_invite_from_an_operator_is_accepted_with_a_hello(
    deployment: Deployment, bot: BotProcess
) -> None:
    """The bot joins a room an operator invites it to, says hello, and serves it."""
    op = deployment.operator
    await op.reply(deployment.room, "!whoami", deployment.bot)
    room = await op.create_room(invite=(deployment.bot,))
    await op.wait_for(lambda evs: [e for e in evs if e.room == room and e.sender == deployment.bot])
    reply = await op.reply(room, "!whoami", deployment.bot)
    assert "operator" in reply.body


async def test_after_kill_9_old_commands_are_not_answered_again(
    deployment: Deployment, bot: BotProcess
) -> None:
    """kill -9 and restart: every command before is answered exactly once, new ones too."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    first = await op.say(room, "!whoami")
    await op.wait_for(lambda _: op.replies_to(first, me))
    bot.kill()
    again = BotProcess(deployment)
    try:
        second = await op.reply(room, "!ps", me)
        assert "No agents yet" in second.body
        assert len(op.replies_to(first, me)) == 1
    finally:
        again.kill()


async def test_a_burst_of_30_commands_gets_30_answers(
    deployment: Deployment, bot: BotProcess
) -> None:
    """30 commands sent back to back, faster than the bot syncs, are all answered."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.reply(room, "!whoami", me)
    sent = [await op.say(room, f"!help {name}") for name in ["ps", "logs", "whoami"] * 10]
    await op.wait_for(lambda _: all(op.replies_to(s, me) for s in sent), within=60)
    assert all(len(op.replies_to(s, me)) == 1 for s in sent)


async def test_a_10000_line_logs_reply_arrives_split_with_balanced_fences(
    deployment: Deployment, bot: BotProcess
) -> None:
    """A reply too big for one event is split; every part is a well-formed code block."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn big --runtime stub")
    await op.wait_for(lambda evs: [e for e in evs if "Agent **big** started" in e.body])
    await op.reply(room, "!send big lines 10000", me)
    request = await op.say(room, "!logs big --lines 10000")

    def reply_parts(events: list[Event]) -> list[Event] | None:
        """The first part replies to the request; the rest follow it from the bot."""
        first = next((i for i, e in enumerate(events) if e.reply_to == request), None)
        if first is None:
            return None
        parts = [e for e in events[first:] if e.sender == me and e.room == room]
        ends = [i for i, e in enumerate(parts) if "line 10000 of 10000" in e.body]
        return parts[: ends[0] + 1] if ends else None

    parts = await op.wait_for(reply_parts, within=60)
    assert len(parts) > 1
    for part in parts:
        fences = re.findall(r"^```", part.body, re.M)
        assert len(fences) % 2 == 0, part.body[:200]
    text = "\n".join(p.body for p in parts)
    assert all(f"stub: line {i} of 10000" in text for i in (1, 5000, 9999, 10000))
    await op.reply(room, "!stop big", me)


async def test_the_bot_rides_out_a_30_second_homeserver_outage(
    private_synapse: SynapseServer, tmp_path: Path
) -> None:
    """Synapse down for 30 s: the bot syncs at most ~1/s meanwhile and answers after."""
    deployment = await make_deployment(private_synapse, tmp_path)
    op, room, me = deployment.operator, deployment.room, deployment.bot
    async with CountingProxy(private_synapse.base_url) as proxy:
        deployment.homeserver = proxy.url
        process = BotProcess(deployment)
        try:
            await joined(op, room, me, within=60)
            await op.reply(room, "!whoami", me)
            down = time.monotonic()
            private_synapse.stop()
            await asyncio.sleep(30)  # the outage itself: its length is what is tested
            up = time.monotonic()
            private_synapse.start()
            syncs = [r for r in proxy.matching(since=down, until=up) if r.path.endswith("/sync")]
            assert 1 <= len(syncs) <= 32, [round(r.at - down, 2) for r in syncs]
            gaps = [b.at - a.at for a, b in itertools.pairwise(syncs)]
            assert all(gap >= 0.9 for gap in gaps), gaps
            reply = await op.reply(room, "!ps", me, within=60)
            assert "No agents yet" in reply.body
            process.terminate()
        finally:
            process.stop()
            await op.close()
            await deployment.stranger.close()


# --- replies and edits, as Element sends them ---------------------------------------------


async def send_reply(
    op: MatrixUser, room: str, to: Event, text: str, *, thread: str | None = None
) -> str:
    """Reply to ``to`` with ``text`` as Element does: the quote in ``body`` and an
    ``<mx-reply>`` in ``formatted_body``, plus ``m.in_reply_to`` (inside a thread, a real
    reply there: ``is_falling_back`` false)."""
    quoted = "\n".join(f"> {line}" for line in to.body.splitlines()[:3])
    relates: dict[str, object] = {"m.in_reply_to": {"event_id": to.event_id}}
    if thread is not None:
        relates.update(rel_type="m.thread", event_id=thread, is_falling_back=False)
    content = {
        "msgtype": "m.text",
        "body": f"> <{to.sender}> {quoted[2:]}\n\n{text}",
        "format": "org.matrix.custom.html",
        "formatted_body": (
            f'<mx-reply><blockquote><a href="https://matrix.to/#/{room}/{to.event_id}">'
            f'In reply to</a> <a href="https://matrix.to/#/{to.sender}">{to.sender}</a>'
            f"<br>{to.body.splitlines()[0]}</blockquote></mx-reply>{text}"
        ),
        "m.relates_to": relates,
    }
    return await _send(op, room, content)


async def send_edit(op: MatrixUser, room: str, original: str, text: str) -> str:
    """Edit ``original`` to say ``text`` as Element does (``m.replace``, ``m.new_content``)."""
    content = {
        "msgtype": "m.text",
        "body": f"* {text}",
        "m.new_content": {"msgtype": "m.text", "body": text},
        "m.relates_to": {"rel_type": "m.replace", "event_id": original},
    }
    return await _send(op, room, content)


async def _send(op: MatrixUser, room: str, content: Mapping[str, object]) -> str:
    response = await op.client.room_send(room, "m.room.message", content)
    event_id = getattr(response, "event_id", None)
    assert isinstance(event_id, str), response
    return event_id


async def test_a_reply_with_elements_fallback_runs_the_command_after_it(
    deployment: Deployment, bot: BotProcess
) -> None:
    """Replying to the bot's answer with `!whoami` runs `whoami`, not the quote."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    first = await op.reply(room, "!help", me)
    sent = await send_reply(op, room, first, "!whoami")
    [answer] = await op.wait_for(lambda _: op.replies_to(sent, me))
    assert "operator" in answer.body and "unknown command" not in answer.body


async def test_an_edit_runs_until_the_message_is_answered(
    deployment: Deployment, bot: BotProcess
) -> None:
    """`whoami` without the prefix is ignored; edited to `!whoami` it is answered under the
    original; edited again, the edit is not applied and the answer says why."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    original = await op.say(room, "whoami")
    await send_edit(op, room, original, "!whoami")
    [answer] = await op.wait_for(lambda _: op.replies_to(original, me))
    assert "operator" in answer.body
    await send_edit(op, room, original, "!ps")
    answers = await op.wait_for(
        lambda _: found if len(found := op.replies_to(original, me)) >= 2 else None
    )
    assert answers[1].body.startswith("Edit not applied: `whoami` already ran (ok).")


async def test_a_reply_in_an_agents_thread_sends_only_the_text_after_the_fallback(
    deployment: Deployment, bot: BotProcess
) -> None:
    """Replying to the agent's output in its thread forwards what the operator wrote, never
    the quote of someone else's text."""
    op, room, me = deployment.operator, deployment.room, deployment.bot
    await op.say(room, "!spawn demo --runtime stub --prompt hi")
    root: Event = (
        await op.wait_for(lambda evs: [e for e in evs if "Agent **demo** started" in e.body])
    )[0]
    output: Event = (
        await op.wait_for(lambda evs: [e for e in evs if "stub: working on: hi" in e.body])
    )[0]
    sent = await send_reply(op, room, output, "how is it going?", thread=root.event_id)
    [answer] = await op.wait_for(lambda _: op.replies_to(sent, me))
    assert "Sent to **demo**" in answer.body and answer.thread_root == root.event_id
    said = await op.wait_for(
        lambda evs: [e for e in evs if "stub: received: how is it going?" in e.body]
    )
    assert said[0].thread_root == root.event_id
    received = [e.body for e in op.events if e.sender == me and "stub: received:" in e.body]
    assert not [body for body in received if "received: >" in body or "In reply to" in body]
    await op.say(room, "exit", thread=root.event_id)
