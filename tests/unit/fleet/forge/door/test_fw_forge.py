"""Tests for fleet.forge.door.fw_forge: the fw-forge command, run as the agent runs it (its sh
wrapper, the system's python3, a subprocess) against the forge door served here."""

from __future__ import annotations

import asyncio
import socket
import stat
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fleet.forge.door import fw_forge
from tests.unit.fleet.forge.door.door_rig import AGENT, SCOPE, DoorRig, serve_door

FW_FORGE = Path(fw_forge.__file__).resolve().parent / "bin" / "fw-forge"
DEADLINE = 60.0


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
async def fw_forge_rig(tmp_path: Path) -> AsyncIterator[DoorRig]:
    async with serve_door(tmp_path) as served:
        yield served


def agent_env(url: str, token: str) -> dict[str, str]:
    """The agent's environment: the system's python3 only, and a proxy that would refuse
    everything (fw-forge must not use it)."""
    return {
        "PATH": "/usr/bin:/bin",
        "FLEETWARDEN_HEARTBEAT_URL": url,
        "FLEETWARDEN_HEARTBEAT_TOKEN": token,
        "http_proxy": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }


async def fw(*args: str, env: dict[str, str], stdin: bytes = b"") -> Ran:
    process = await asyncio.create_subprocess_exec(
        str(FW_FORGE),
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), DEADLINE)
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


async def run(rig: DoorRig, *args: str, stdin: bytes = b"", token: str | None = None) -> Ran:
    """``fw-forge ARGS`` as the agent; its token never appears in what it prints."""
    secret = rig.tokens[AGENT]
    ran = await fw(*args, env=agent_env(rig.heartbeat_url(), token or secret), stdin=stdin)
    assert secret not in ran.out and secret not in ran.err
    return ran


def test_the_wrapper_is_an_executable_sh_script() -> None:
    """bin/fw-forge is mode 0755 and a /bin/sh script."""
    assert stat.S_IMODE(FW_FORGE.stat().st_mode) == 0o755
    assert FW_FORGE.read_text().startswith("#!/bin/sh\n")


async def test_a_read_prints_the_text_and_exits_0(fw_forge_rig: DoorRig) -> None:
    """``read N`` prints the issue as the door renders it."""
    ran = await run(fw_forge_rig, "read", "3")
    assert ran == Ran(
        0, "#3 Issue 3\nopen, labels: bug, fleetwarden, by @alice\n\nThe body of issue 3.\n", ""
    )
    ran = await run(fw_forge_rig, "read", "18", "--pull")
    assert ran.code == 0 and ran.out.startswith("#18 Pull 18\n")
    ran = await run(fw_forge_rig, "read", "18", "--comments")
    assert ran == Ran(0, "no comments on #18\n", "")
    assert [call[0] for call in fw_forge_rig.reads.calls] == ["issue", "pull", "comments"]


async def test_text_dash_is_read_from_stdin(fw_forge_rig: DoorRig) -> None:
    """``comment -`` posts what came on standard input, byte for byte (UTF-8)."""
    body = "Multi-line\n`code` and ünïcode — $HOME stays as it is\n"
    ran = await run(fw_forge_rig, "comment", "-", stdin=body.encode())
    assert ran.code == 0 and ran.out.endswith("/issues/7#issuecomment-1\n")
    assert fw_forge_rig.actions.writes() == [("comment", SCOPE, 7, body)]


async def test_a_refusal_goes_to_stderr_with_exit_1(fw_forge_rig: DoorRig) -> None:
    """A call out of scope: the door's refusal on stderr, nothing on stdout, exit 1."""
    ran = await run(fw_forge_rig, "comment", "--issue", "3", "I fixed it")
    assert ran == Ran(1, "", "fw-forge: refused: comment on #3, not assigned\n")
    ran = await run(fw_forge_rig, "describe", "what changed")
    assert ran.code == 1 and "`fw-forge pr` opens it" in ran.err


async def test_pr_describe_and_done_reach_the_run(fw_forge_rig: DoorRig) -> None:
    """``pr --draft TITLE BODY``, then ``describe`` and ``done ok`` once it is open."""
    assert (await run(fw_forge_rig, "pr", "--draft", "Fix the parser", "It was wrong")).code == 0
    fw_forge_rig.scopes[AGENT] = replace(SCOPE, pull=18)
    assert (await run(fw_forge_rig, "describe", "-", stdin=b"New words")).code == 0
    ran = await run(fw_forge_rig, "done", "ok", "all green")
    assert ran.code == 0 and ran.out.startswith("done ok")
    pulled = replace(SCOPE, pull=18)
    assert fw_forge_rig.actions.writes() == [
        ("open_pull", SCOPE, "Fix the parser", "It was wrong", True),
        ("describe", pulled, "New words"),
        ("done", pulled, "ok", "all green"),
    ]


async def test_the_pull_request_is_named_by_pull_where_its_number_is_the_issues(
    fw_forge_rig: DoorRig,
) -> None:
    """On GitLab issue 7 and merge request 7 are two: ``comment --pull`` and ``read N
    --pull-comments`` name the merge request."""
    fw_forge_rig.scopes[AGENT] = replace(SCOPE, pull=7)
    assert (await run(fw_forge_rig, "comment", "--pull", "on the MR")).code == 0
    assert (await run(fw_forge_rig, "comment", "on the issue")).code == 0
    assert fw_forge_rig.actions.writes() == [
        ("comment", replace(SCOPE, pull=7), 7, "on the MR", "pull"),
        ("comment", replace(SCOPE, pull=7), 7, "on the issue"),
    ]
    ran = await run(fw_forge_rig, "read", "7", "--pull-comments")
    assert ran == Ran(0, "no comments on #7\n", "")
    assert ("comments", SCOPE.repo, 7, True) in fw_forge_rig.reads.calls


@pytest.mark.parametrize(
    "args",
    [
        ("done", "maybe", "x"),
        ("read",),
        ("read", "3", "--file", "a.py"),
        ("read", "three"),
        ("read", "3", "--ref", "main"),
        ("comment",),
        ("comment", "--pull", "--issue", "3", "x"),
        ("read", "3", "--pull-comments", "--comments"),
        ("frobnicate",),
        (),
    ],
)
async def test_usage_errors_exit_2_and_call_nothing(
    fw_forge_rig: DoorRig, args: tuple[str, ...]
) -> None:
    """A command line that makes no call: usage on stderr, exit 2, the door never asked."""
    ran = await run(fw_forge_rig, *args)
    assert ran.code == 2 and ran.out == "" and ran.err.startswith("usage: fw-forge")
    assert fw_forge_rig.actions.calls == [] and fw_forge_rig.actions.audits == []


async def test_help_lists_the_commands_and_exits_0() -> None:
    """``--help`` says every command and the exit statuses, with no environment at all."""
    ran = await fw("--help", env={"PATH": "/usr/bin:/bin"})
    assert ran.code == 0
    for usage in (
        "read N",
        "read --file PATH",
        "comment [--issue N] TEXT",
        "describe TEXT",
        "pr [--draft] TITLE [BODY]",
        "done ok|failed SUMMARY",
        "exit status",
    ):
        assert usage in ran.out


async def test_no_environment_is_a_usage_error() -> None:
    """Outside an agent (no heartbeat URL or token): exit 2, saying so."""
    ran = await fw("read", "3", env={"PATH": "/usr/bin:/bin"})
    assert ran.code == 2 and "FLEETWARDEN_HEARTBEAT_URL" in ran.err


async def test_a_wrong_token_exits_1_without_printing_it(fw_forge_rig: DoorRig) -> None:
    """The door refusing the token: exit 1, naming the variable, never its value."""
    ran = await run(fw_forge_rig, "read", "3", token="wrong-token-value-1234")
    assert ran.code == 1 and "FLEETWARDEN_HEARTBEAT_TOKEN" in ran.err
    assert "wrong-token-value-1234" not in ran.err + ran.out


async def test_a_forge_failure_exits_1_with_the_door_s_words(fw_forge_rig: DoorRig) -> None:
    """A file the forge does not have: exit 1, the forge's status, not its address."""
    ran = await run(fw_forge_rig, "read", "--file", "missing.txt")
    assert ran == Ran(1, "", "fw-forge: the forge answered 404: Not Found\n")


async def test_run_as_a_plain_script_it_takes_the_standard_library_s_modules(
    fw_forge_rig: DoorRig,
) -> None:
    """``python3 fw_forge.py`` from its own directory, without ``-I``: it runs on the
    standard library alone, whatever modules of its package stand beside it."""
    script = FW_FORGE.parent.parent / "fw_forge.py"
    env = agent_env(fw_forge_rig.heartbeat_url(), fw_forge_rig.tokens[AGENT])
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/python3",
        script.name,
        "read",
        "3",
        cwd=script.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert (process.returncode, err) == (0, b"") and out.startswith(b"#3 Issue 3\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_refused_connection_is_tried_again_until_the_door_is_back(
    tmp_path: Path,
) -> None:
    """Fleetwarden restarting: the first try is refused, fw-forge waits and tries again,
    and the call lands once the door listens again on the same port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/forge/{AGENT}"
    async with serve_door(tmp_path, port=port) as first:
        token = first.tokens[AGENT]  # kept in the state file, as across a restart
    loop = asyncio.get_running_loop()
    refused, back = asyncio.Event(), threading.Event()
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        loop.call_soon_threadsafe(refused.set)
        assert back.wait(DEADLINE)

    call = {"op": "read", "what": "issue", "number": 5}
    posting = asyncio.create_task(asyncio.to_thread(fw_forge.post, url, token, call, sleep=sleep))
    await asyncio.wait_for(refused.wait(), DEADLINE)
    async with serve_door(tmp_path, port=port) as fw_forge_rig:
        back.set()
        status, answer = await posting
    assert status == 200 and answer is not None and answer["text"].startswith("#5 Issue 5")
    assert pauses == [0.1] and fw_forge_rig.reads.calls[0][0] == "issue"


async def test_it_gives_up_after_the_retry_time() -> None:
    """A door that never comes back: fw-forge stops after its time, saying so."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    url = f"http://127.0.0.1:{free_port()}/forge/{AGENT}"
    with pytest.raises(fw_forge.Failed, match=r"connection refused.*after 30 s"):
        await asyncio.to_thread(
            fw_forge.post, url, "t", {"op": "read"}, clock=lambda: now[0], sleep=sleep
        )
    assert 29.0 <= now[0] <= 30.0


async def test_a_lost_connection_is_tried_again_for_reads_only() -> None:
    """A connection closed with no answer: a read is tried again (it changes nothing), a
    write is not (it may have been done)."""
    accepted: list[int] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/forge/{AGENT}"
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def post(call: dict[str, object]) -> object:
        return fw_forge.post(url, "t", call, retry_seconds=1.0, clock=lambda: now[0], sleep=sleep)

    async with server:
        with pytest.raises(fw_forge.Failed, match="closed the connection"):
            await asyncio.to_thread(post, {"op": "read", "what": "issue", "number": 1})
        reads = len(accepted)
        with pytest.raises(fw_forge.Failed, match="cannot reach"):
            await asyncio.to_thread(post, {"op": "comment", "number": None, "body": "x"})
    assert reads > 1 and len(accepted) == reads + 1
