"""The control socket's server on a real Unix socket: one request, one answer; what it
refuses (another uid, a line it cannot read, one client too many) is said, and the server
goes on serving."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.control.door import ControlDoor
from bot.control.wire import CONTROL_SOCKET_FILE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Answer
from tests.polling import eventually

NOBODY = 65534


class Answers:
    """What the router would answer: each command's text, echoed; held while ``hold`` is
    clear, so clients stay connected."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, text: str) -> Answer:
        self.asked.append(text)
        await self.hold.wait()
        return Answer(EXIT_OK, "ok", f"ran {text}", "ps", {"echo": text})


@pytest.fixture
async def door_door(tmp_path: Path) -> AsyncIterator[tuple[ControlDoor, Answers]]:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    answers = Answers()
    served = ControlDoor(state, answers, max_clients=2, max_line=1024, idle=0.5)
    await served.start()
    try:
        yield served, answers
    finally:
        answers.hold.set()
        await served.stop()


async def ask(door: ControlDoor, raw: bytes, *, read: bool = True) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(door.path))
    try:
        writer.write(raw)
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    answer = json.loads(line)
    assert isinstance(answer, dict)
    return answer


async def test_a_request_line_gets_its_answer_as_one_json_line(
    door_door: tuple[ControlDoor, Answers],
) -> None:
    """A request is answered with the answerer's exit, outcome, text and data."""
    served, answers = door_door
    answer = await ask(served, b'{"command": "ps"}\n')
    assert answer == {
        "exit": EXIT_OK,
        "outcome": "ok",
        "command": "ps",
        "text": "ran ps",
        "data": {"echo": "ps"},
    }
    assert answers.asked == ["ps"]


async def test_the_socket_is_the_owners_alone(door_door: tuple[ControlDoor, Answers]) -> None:
    """The socket is made mode 0600 in the state dir."""
    served, _ = door_door
    mode = os.stat(served.path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert served.path.name == CONTROL_SOCKET_FILE


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"spawn coder\n", "not a JSON line"),
        (b'["ps"]\n', '{"command": TEXT}'),
        (b'{"command": "ps", "as": "root"}\n', "nothing else"),
        (b'{"command": "  "}\n', "the text of a command"),
        (b'{"command": 7}\n', "the text of a command"),
        (b"\xff\xfe\n", "not a JSON line"),
    ],
)
async def test_garbage_is_told_what_was_wrong_and_runs_nothing(
    door_door: tuple[ControlDoor, Answers], raw: bytes, said: str
) -> None:
    """A line that is not a request is answered with a usage error naming the fault."""
    served, answers = door_door
    answer = await ask(served, raw)
    assert answer["exit"] == EXIT_USAGE and said in str(answer["text"])
    assert answers.asked == []
    assert (await ask(served, b'{"command": "ps"}\n'))["exit"] == EXIT_OK


async def test_a_line_past_the_bound_is_refused_and_the_server_goes_on(
    door_door: tuple[ControlDoor, Answers],
) -> None:
    """A request longer than the line bound is told so, never read whole; the next is
    served."""
    served, answers = door_door
    answer = await ask(served, b'{"command": "' + b"a" * 100_000 + b'"}\n')
    assert answer["exit"] == EXIT_USAGE and "longer than 1024 bytes" in str(answer["text"])
    assert answers.asked == []
    assert (await ask(served, b'{"command": "ps"}\n'))["exit"] == EXIT_OK


async def test_a_client_that_sends_no_line_is_answered_after_the_idle_bound(
    door_door: tuple[ControlDoor, Answers],
) -> None:
    """A client that sends half a line and waits is told no request came, and dropped."""
    served, _ = door_door
    reader, writer = await asyncio.open_unix_connection(str(served.path))
    writer.write(b'{"command": ')
    await writer.drain()
    answer = json.loads(await asyncio.wait_for(reader.readline(), 10))
    writer.close()
    assert answer["exit"] == EXIT_USAGE and "no request line" in answer["text"]


async def test_one_client_too_many_is_told_to_try_again(
    door_door: tuple[ControlDoor, Answers],
) -> None:
    """Past the bound on clients served at once, the next is answered at once, and served
    once one of them is done."""
    served, answers = door_door
    answers.hold.clear()
    held = [asyncio.create_task(ask(served, b'{"command": "ps"}\n')) for _ in range(2)]
    await eventually(lambda: len(answers.asked) == 2, "two commands held")
    busy = await ask(served, b'{"command": "ps"}\n')
    assert busy["exit"] == EXIT_USAGE and "try again" in str(busy["text"])
    answers.hold.set()
    assert [(await task)["exit"] for task in held] == [EXIT_OK, EXIT_OK]
    assert (await ask(served, b'{"command": "ps"}\n'))["exit"] == EXIT_OK


async def test_the_folders_owner_is_refused_when_not_fleetwardens_uid(
    door_door: tuple[ControlDoor, Answers],
) -> None:
    """Fleetwarden's own uid decides, not the folder's owner: a peer of another uid that
    owns the state dir is refused and nothing runs, while Fleetwarden's uid is answered."""
    served, answers = door_door
    if os.getuid() != 0:
        pytest.skip("needs root to give the state dir to another uid")
    os.chown(served.path.parent, NOBODY, -1)
    os.chmod(served.path, 0o666)  # the kernel lets the peer in: the door itself must judge
    folder = os.open(served.path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        peer = await asyncio.create_subprocess_exec(
            "/usr/bin/python3",
            "-c",
            PEER.format(path=f"/proc/self/fd/{folder}/{CONTROL_SOCKET_FILE}"),
            pass_fds=(folder,),
            user=NOBODY,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(peer.communicate(), 60)
    finally:
        os.close(folder)
    assert peer.returncode == 0, err
    answer = json.loads(out)
    assert answer["exit"] == EXIT_REFUSED and answer["outcome"] == "denied"
    assert f"uid {NOBODY} may not command this fleet" in str(answer["text"])
    assert f"only Fleetwarden's own user (uid {os.geteuid()})" in str(answer["text"])
    assert answers.asked == []
    ours = await ask(served, b'{"command": "ps"}\n')
    assert ours["exit"] == EXIT_OK and answers.asked == ["ps"]


PEER = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect({path!r})
try:
    sock.sendall(b'{{"command": "ps"}}\\n')
except (BrokenPipeError, ConnectionResetError):
    pass  # refused before the line was read: the answer is there to read
answer = b""
while not answer.endswith(b"\\n"):
    chunk = sock.recv(65536)
    if not chunk:
        break
    answer += chunk
sys.stdout.write(answer.decode())
"""
"""A client of another uid: it connects through the state dir's descriptor, so only the
state dir itself (its owner's) and the socket are asked for leave."""


async def test_stop_removes_the_socket(tmp_path: Path) -> None:
    """Once stopped nothing listens and the socket is gone: a shell says not running."""
    served = ControlDoor(tmp_path, Answers())
    await served.start()
    await served.stop()
    assert not served.path.exists()


async def test_a_command_in_flight_when_stopping_is_answered(tmp_path: Path) -> None:
    """A stop lets the command being run finish and answer before the socket goes."""
    answers = Answers()
    served = ControlDoor(tmp_path, answers)
    await served.start()
    answers.hold.clear()
    client = asyncio.create_task(ask(served, b'{"command": "ps"}\n'))
    await eventually(lambda: answers.asked == ["ps"], "the command taken")
    stopping = asyncio.create_task(served.stop())

    async def closed() -> bool:  # no new shell is taken once stopping began
        try:
            _, writer = await asyncio.open_unix_connection(str(served.path))
        except OSError:
            return True
        writer.close()
        return False

    await eventually(closed, "the socket closed to new shells")
    assert not stopping.done()
    answers.hold.set()
    assert (await client)["exit"] == EXIT_OK
    await stopping
    assert not served.path.exists()
