"""The tmux backend against a real tmux server on a private socket, running the stub agent."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from fleet.backends.tmux import TmuxBackend, batch_commands, input_commands, tmux_argv
from fleet.errors import AgentNotRunning, LaunchFailed
from fleet.model import AgentSpec, LaunchPlan, RunHandle
from fleet.names import AgentName
from fleet.runtimes import RuntimeContext
from fleet.runtimes.stub import StubRuntime
from fleet.sandbox.host.procfs import process_start_ticks

pytestmark = pytest.mark.integration

TIMEOUT = 15.0
# Everything a shell would act on; ends with ';', which tmux's own parser would eat.
NASTY = "$(touch {m}) `touch {m}` 'single' \"double\" ; touch {m} #{{session_name}} #(touch {m});"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = TIMEOUT) -> bool:
    """Poll ``check`` until it holds or ``within`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = 0.01
    while loop.time() < deadline:
        if await check():
            return True
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
    return await check()


class Agents:
    """Launches stub agents on one backend, each with its own run directory."""

    def __init__(self, backend: TmuxBackend, root: Path) -> None:
        self.backend = backend
        self.root = root
        self.count = 0

    def plan(self, name: str = "demo", prompt: str | None = None) -> LaunchPlan:
        home = self.root / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        ctx = RuntimeContext(home=home, workdir=home, environ=os.environ, tty=True)
        spec = AgentSpec(name=AgentName(name), runtime="stub", prompt=prompt)
        return StubRuntime(step_delay=0.01).plan(spec, ctx)

    async def launch(self, plan: LaunchPlan) -> RunHandle:
        self.count += 1
        name = plan.env["FLEETWARDEN_AGENT"]
        run_dir = self.root / name / "runs" / str(self.count)
        return await self.backend.launch(plan, run_dir, self.root / name / "output.log")

    async def stub(self, name: str = "demo", prompt: str | None = None) -> RunHandle:
        handle = await self.launch(self.plan(name, prompt))
        assert await self.shows(handle, "stub: waiting for input"), await self.log(handle)
        return handle

    async def log(self, handle: RunHandle) -> str:
        return handle.log_path.read_text(encoding="utf-8", errors="replace")

    async def shows(self, handle: RunHandle, text: str) -> bool:
        """Whether ``text`` appears in the log (via pipe-pane), polling."""

        async def check() -> bool:
            return text in await self.log(handle)

        return await eventually(check)


@pytest.fixture
async def agents(tmp_path: Path) -> AsyncIterator[Agents]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")
    backend = TmuxBackend(f"fw-backend-test-{uuid.uuid4().hex[:8]}")
    yield Agents(backend, tmp_path)
    await backend.shutdown_server()


def tmux(backend: TmuxBackend, *args: str) -> subprocess.CompletedProcess[str]:
    """A tmux command by hand on the backend's socket, as an operator would type it."""
    return subprocess.run(
        ["tmux", "-L", backend.socket_name, *args], capture_output=True, text=True, timeout=10
    )


async def test_output_reaches_the_log_the_scrollback_and_the_screen(agents: Agents) -> None:
    """The agent's output streams into the log and shows in read_output and snapshot."""
    handle = await agents.stub(prompt="count to 3")
    assert handle.backend == "tmux" and handle.session == "demo"
    assert agents.backend.is_alive(handle)
    assert os.getpgid(handle.pid) == handle.pgid == os.getsid(handle.pgid)
    log = await agents.log(handle)
    assert log.index("stub: started") < log.index("stub: 3") < log.index("stub: done")
    output = await agents.backend.read_output(handle, 3)
    assert output == ["stub: 3", "stub: done", "stub: waiting for input (send 'exit' to quit)"]
    screen = await agents.backend.snapshot(handle)
    assert screen.splitlines()[0] == "stub: started"
    assert screen.splitlines()[-1].startswith("stub: waiting for input")


async def test_input_is_typed_into_the_agent(agents: Agents) -> None:
    """send_input types a line and Enter; the stub reads it from its terminal."""
    handle = await agents.stub()
    await agents.backend.send_input(handle, "hello there")
    assert await agents.shows(handle, "stub: received: hello there")
    assert (await agents.backend.read_output(handle, 1)) == ["stub: received: hello there"]


async def test_lines_of_a_long_multiline_input_all_arrive(agents: Agents) -> None:
    """A multi-line text is typed line by line (C-j between), across several tmux calls."""
    handle = await agents.stub()
    lines = [f"line{i} " + "x" * 1500 for i in range(10)]
    assert len(batch_commands(input_commands("=demo:", "\n".join(lines)))) > 1
    await agents.backend.send_input(handle, "\n".join(lines) + "\n")
    for line in lines:
        assert await agents.shows(handle, f"stub: received: {line}\n")


async def test_shell_and_tmux_metacharacters_are_never_interpreted(
    agents: Agents, tmp_path: Path
) -> None:
    """A prompt and input full of shell and tmux syntax reach the agent literally."""
    marker = tmp_path / "touched"
    nasty = NASTY.format(m=marker)
    handle = await agents.stub(prompt=nasty)
    assert await agents.shows(handle, f"stub: working on: {nasty}\n")
    await agents.backend.send_input(handle, nasty)
    assert await agents.shows(handle, f"stub: received: {nasty}\n")
    assert not marker.exists()


async def test_the_environment_and_directory_are_exactly_the_plans(
    agents: Agents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent sees the plan's variables and TERM only (nothing of ours, tmux's or the
    tmux server's) and starts in the plan's directory, whatever its name."""
    monkeypatch.setenv("FW_TEST_ONLY_HERE", "leak")
    dump = tmp_path / "env.json"
    workdir = tmp_path / "work #{session_name} #(touch x);"
    workdir.mkdir()
    code = (
        "import json, os, sys; "
        "open(sys.argv[1], 'w').write(json.dumps([os.getcwd(), dict(os.environ)]))"
    )
    plan = agents.plan()
    plan = replace(plan, argv=(sys.executable, "-I", "-c", code, str(dump)), cwd=workdir)
    assert "FW_TEST_ONLY_HERE" not in plan.env
    handle = await agents.launch(plan)
    assert (await agents.backend.wait(handle)).exit_code == 0
    cwd, seen = json.loads(dump.read_text())
    assert cwd == str(workdir)
    assert {k: v for k, v in seen.items() if k != "TERM"} == dict(plan.env)
    assert seen["TERM"]
    assert list(workdir.iterdir()) == []


async def test_stop_ends_the_group_and_the_session(agents: Agents) -> None:
    """stop signals the whole process group (the stub's forked child dies too) and the
    agent's tmux session disappears."""
    handle = await agents.stub()
    await agents.backend.send_input(handle, "fork")
    assert await agents.shows(handle, "stub: forked child")
    match = re.search(r"forked child (\d+)", await agents.log(handle))
    assert match is not None
    child = int(match.group(1))
    assert process_start_ticks(child) is not None
    info = await agents.backend.stop(handle, grace=5.0)
    assert info.exit_code == 0, info
    assert not agents.backend.is_alive(handle)

    async def child_gone() -> bool:
        return process_start_ticks(child) is None

    assert await eventually(child_gone)
    assert "demo" not in await agents.backend.sessions()


async def test_an_agent_ending_by_itself_leaves_its_exit_code(agents: Agents) -> None:
    """An agent that exits on its own: wait returns its status, and output is still readable
    from the log once the session is gone."""
    handle = await agents.stub()
    waiting = asyncio.create_task(agents.backend.wait(handle))
    await agents.backend.send_input(handle, "fail 3")
    info = await asyncio.wait_for(waiting, TIMEOUT)
    assert info.exit_code == 3 and info.reason == "exited with status 3"

    async def session_gone() -> bool:
        return "demo" not in await agents.backend.sessions()

    assert await eventually(session_gone)
    assert (await agents.backend.read_output(handle, 1)) == ["stub: failing with status 3"]
    assert "stub: failing with status 3" in await agents.backend.snapshot(handle)
    with pytest.raises(AgentNotRunning):
        await agents.backend.send_input(handle, "anyone there?")


async def test_a_new_backend_instance_takes_over_a_running_session(agents: Agents) -> None:
    """After a Fleetwarden restart, a fresh backend on the same socket can check, feed,
    wait for and stop a session the first one launched."""
    handle = await agents.stub()
    second = TmuxBackend(agents.backend.socket_name)
    assert second.is_alive(handle)
    assert "demo" in await second.sessions()
    await second.send_input(handle, "still there?")
    assert await agents.shows(handle, "stub: received: still there?")
    waiting = asyncio.create_task(second.wait(handle))
    info = await second.stop(handle, grace=5.0)
    assert info.exit_code == 0
    assert await asyncio.wait_for(waiting, TIMEOUT) == info
    assert "demo" not in await second.sessions()


async def test_sessions_include_ones_made_by_hand(agents: Agents) -> None:
    """sessions lists every session on our socket (drift), and nothing before the server
    runs."""
    assert await agents.backend.sessions() == set()
    await agents.stub()
    made = tmux(agents.backend, "new-session", "-d", "-s", "stray", "sleep", "60")
    assert made.returncode == 0, made.stderr
    assert await agents.backend.sessions() == {"demo", "stray"}


async def test_launch_failures_say_why(agents: Agents, tmp_path: Path) -> None:
    """A taken session name, a missing directory and a missing program are LaunchFailed
    with tmux's or the launcher's reason."""
    await agents.stub()
    with pytest.raises(LaunchFailed, match="duplicate session: demo"):
        await agents.launch(agents.plan())
    missing = replace(agents.plan("other"), cwd=tmp_path / "nowhere")
    with pytest.raises(LaunchFailed, match="cannot change to directory"):
        await agents.launch(missing)
    no_program = replace(agents.plan("third"), argv=(str(tmp_path / "no-such-agent"),))
    with pytest.raises(LaunchFailed, match="could not start"):
        await agents.launch(no_program)
    assert await agents.backend.sessions() == {"demo"}
    assert not glob.glob(f"{tmp_path}/*/runs/*/launch.json")


def test_arguments_ending_in_a_semicolon_are_escaped_for_tmux() -> None:
    """tmux's command-line parser would end a command at a trailing ';': we escape it."""
    argv = tmux_argv("s", [["send-keys", "-l", "--", "a;"], ["send-keys", "Enter"]])
    assert argv[6:] == ["send-keys", "-l", "--", "a\\;", ";", "send-keys", "Enter"]
