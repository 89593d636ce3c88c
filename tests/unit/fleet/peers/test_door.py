"""The peer door and the fw-msg command, run as the agent runs it (its sh wrapper, the
system's python3, a subprocess) against the door served here over a real postbox: the
peers listed; a message ACCEPTED once in the peer's session, REFUSED with why, or not yet
accepted; a task handed on; a verdict given, or none asked; a wrong token; a bad call;
the door before the fleet is up; usage errors."""

from __future__ import annotations

import argparse
import asyncio
import json
import stat
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.peers import fw_msg
from fleet.peers.tools import FW_MSG
from fleet.timing.clock import ManualClock
from tests.unit.fleet.peers.rig import DoorRig, serve_door

DEADLINE = 60.0


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
async def door_rig(ledger: Ledger, tmp_path: Path, clock: ManualClock) -> AsyncIterator[DoorRig]:
    async with serve_door(ledger, tmp_path, clock) as served:
        yield served


async def run(
    rig: DoorRig, *args: str, agent: str = "coder", token: str | None = None, stdin: bytes = b""
) -> Ran:
    """``fw-msg ARGS`` as ``agent``; its token never appears in what it prints."""
    secret = rig.tokens[agent]
    env = {
        "PATH": "/usr/bin:/bin",
        "FLEETWARDEN_HEARTBEAT_URL": rig.heartbeat_url(agent),
        "FLEETWARDEN_HEARTBEAT_TOKEN": token or secret,
        "http_proxy": "http://127.0.0.1:9",  # a proxy that refuses all: never used
    }
    process = await asyncio.create_subprocess_exec(
        str(FW_MSG),
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), DEADLINE)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    ran = Ran(process.returncode, out.decode(), err.decode())
    assert secret not in ran.out and secret not in ran.err
    return ran


def test_the_wrapper_is_an_executable_sh_script() -> None:
    assert stat.S_IMODE(FW_MSG.stat().st_mode) == 0o755
    assert FW_MSG.read_text().startswith("#!/bin/sh\n")


async def test_peers_lists_the_agents_it_may_write_to(door_rig: DoorRig) -> None:
    ran = await run(door_rig, "peers")
    assert ran.code == 0
    assert "- reviewer on host local (claude) — " in ran.out
    assert "- helper on host box (codex) — " in ran.out
    ran = await run(door_rig, "peers", agent="loner")
    assert ran.code == 0 and "You have no peers" in ran.out


async def test_the_peers_text_may_be_given_plainly(door_rig: DoorRig) -> None:
    door_rig.desk.peers_text = lambda agent: f"the roster's words for {agent}"
    assert await run(door_rig, "peers") == Ran(0, "the roster's words for coder\n", "")


async def test_send_verify_is_accepted_once_in_the_peers_session(door_rig: DoorRig) -> None:
    await door_rig.fleet.launch("reviewer")
    ran = await run(
        door_rig, "send", "reviewer", "-", "--verify", stdin="the tests pass ✓\n".encode()
    )
    assert ran.code == 0 and ran.err == ""
    assert ran.out.startswith("ACCEPTED: message ") and "in reviewer's session" in ran.out
    [(receiver, framed, by)] = door_rig.fleet.sent
    assert (receiver, by) == ("reviewer", "agent coder")
    assert "\n> the tests pass ✓\n" in framed


async def test_a_refusal_is_said_on_stderr_with_exit_1(door_rig: DoorRig) -> None:
    ran = await run(door_rig, "send", "loner", "hello", "--verify")
    assert ran == Ran(
        1, "", "fw-msg: REFUSED: loner is not one of your peers (talks_to: reviewer, helper)\n"
    )
    ran = await run(door_rig, "task", "loner", "Do my work")
    assert ran.code == 1 and "REFUSED: loner is not one of your peers" in ran.err


async def test_a_message_not_yet_accepted_exits_1_and_stays_queued(door_rig: DoorRig) -> None:
    ran = await run(door_rig, "send", "reviewer", "when you run", "--wait", "1")
    assert ran.code == 1 and ran.err.startswith("fw-msg: not yet accepted: queued: message ")
    ran = await run(door_rig, "send", "reviewer", "no receipt asked")
    assert ran.code == 0 and ran.out.startswith("queued: message ")


async def test_a_task_is_handed_on(door_rig: DoorRig, ledger: Ledger) -> None:
    ran = await run(door_rig, "task", "helper", "Write the migration", "for users")
    assert ran.code == 0 and ran.out.endswith("for helper started\n")
    [task] = await ledger.tasks.tasks()
    assert (task.title, task.agent, task.asked_by) == (
        "Write the migration",
        "helper",
        "agent coder",
    )


async def test_a_task_made_but_not_started_is_refused(door_rig: DoorRig, ledger: Ledger) -> None:
    door_rig.fleet.cannot_launch = "helper cannot start: host box cannot be reached now"
    ran = await run(door_rig, "task", "helper", "Write the migration")
    assert ran.code == 1 and ran.err.startswith("fw-msg: REFUSED: task #1 ")
    assert ran.err.endswith(
        "is made but not started: helper cannot start: host box cannot be reached now\n"
    )
    [task] = await ledger.tasks.tasks()
    assert task.state == "todo"


async def test_a_verdict_goes_to_the_review_asked(door_rig: DoorRig) -> None:
    ran = await run(door_rig, "review", "approve", "looks right", agent="reviewer")
    assert ran == Ran(1, "", "fw-msg: no review is asked of you\n")
    door_rig.asked[0] = True
    ran = await run(door_rig, "review", "changes", "-", agent="reviewer", stdin=b"rename x")
    assert ran == Ran(0, "changes asked\n", "")
    assert door_rig.verdicts.given == [("reviewer", False, "rename x")]


async def test_a_wrong_token_is_refused_without_a_body(door_rig: DoorRig) -> None:
    ran = await run(door_rig, "peers", token="not-the-token")
    assert ran.code == 1 and "does not take this agent's FLEETWARDEN_HEARTBEAT_TOKEN" in ran.err


def post(rig: DoorRig, body: bytes) -> tuple[int, dict[str, object] | None]:
    request = urllib.request.Request(
        rig.url("coder"),
        data=body,
        method="POST",
        headers={fw_msg.TOKEN_HEADER: rig.tokens["coder"]},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=DEADLINE) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


async def test_a_bad_call_is_answered_400_saying_what_is_wrong(door_rig: DoorRig) -> None:
    for body, words in [
        (b'{"op": "shout"}', '"op" must be one of peers, send, task, review'),
        (b'{"op": "send", "to": "reviewer"}', '"text" must be a string with some text in it'),
        (b'{"op": "send", "to": "reviewer", "text": "x", "wait": 601}', '"wait" must be'),
        (b'{"op": "peers", "extra": 1}', "unknown fields for peers: extra"),
        (b"not json", "JSON"),
    ]:
        status, data = await asyncio.to_thread(post, door_rig, body)
        assert status == 400 and data is not None and words in str(data["error"])


async def test_before_the_fleet_is_up_the_door_is_busy(door_rig: DoorRig) -> None:
    door_rig.up[0] = False
    status, data = await asyncio.to_thread(post, door_rig, b'{"op": "peers"}')
    assert (status, data) == (503, {"error": "Fleetwarden is still starting"})
    with pytest.raises(fw_msg.Failed, match="Fleetwarden is busy, and still after"):
        await asyncio.to_thread(
            fw_msg.post,
            door_rig.url("coder"),
            door_rig.tokens["coder"],
            {"op": "peers"},
            retry_seconds=0.3,
        )


@pytest.mark.parametrize(
    "args",
    [(), ("send", "reviewer"), ("send", "reviewer", "x", "--wait", "601"), ("review", "maybe", "x"),
     ("task", "helper"), ("shout",)],
)  # fmt: skip
async def test_usage_errors_exit_2_and_call_nothing(
    door_rig: DoorRig, args: tuple[str, ...]
) -> None:
    ran = await run(door_rig, *args)
    assert ran.code == 2 and ran.out == "" and ran.err.startswith("usage: fw-msg")
    assert await door_rig.postbox.message(1) is None


def test_the_calls_built_from_the_command_line() -> None:
    def call(*argv: str) -> fw_msg.Call:
        args: argparse.Namespace = fw_msg.parser().parse_args(argv)
        return fw_msg.build_call(args, lambda: "from stdin")

    assert call("peers") == {"op": "peers"}
    assert call("send", "reviewer", "hi") == {
        "op": "send", "to": "reviewer", "text": "hi", "verify": False, "wait": 0
    }  # fmt: skip
    assert call("send", "reviewer", "-", "--verify") == {
        "op": "send", "to": "reviewer", "text": "from stdin", "verify": True, "wait": 120
    }  # fmt: skip
    assert call("send", "reviewer", "hi", "--wait", "5")["wait"] == 5
    assert call("task", "helper", "Title") == {
        "op": "task", "to": "helper", "title": "Title", "body": ""
    }  # fmt: skip
    assert call("review", "approve", "-") == {
        "op": "review", "verdict": "approve", "text": "from stdin"
    }  # fmt: skip


def test_outside_an_agent_fw_msg_says_so() -> None:
    assert fw_msg.main(["peers"], env={}) == fw_msg.EXIT_USAGE
