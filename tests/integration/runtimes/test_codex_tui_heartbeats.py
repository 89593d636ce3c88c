"""Codex's TUI in tmux (the real pinned CLI, the real tmux backend on a private socket)
reports that it lives through Codex's own hooks: a turn posts ``working``, its end
``waiting``, to the heartbeat endpoint, with the agent's token."""

from __future__ import annotations

import secrets
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleet.backends.tmux import TmuxBackend
from fleet.model import AgentSpec, PermissionMode
from fleet.names import AgentName
from fleet.runs.layout import write_files
from fleet.runtimes import RuntimeContext
from fleet.runtimes.codex import CodexRuntime
from tests.fakes.provider.server import Accepted, FakeProvider, ToolCall, Turn
from tests.integration.runtimes.test_real_clis import bin_dir, cli, node_dir
from tests.integration.runtimes.test_runtimes_real import Beats, beats
from tests.integration.runtimes.test_tmux_backend import eventually

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

__all__ = ["beats"]  # the fixture, shared
# A model without an upgrade notice: for one that has one (gpt-5.5), the TUI first shows a
# "try the new model?" screen and waits there.
MODEL = "gpt-6-sol"
KEY = "test-key-codex-tui"


@pytest.fixture
async def backend() -> AsyncIterator[TmuxBackend]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed; run `bash tests/run.sh`, which installs it")
    tmux = TmuxBackend(f"fw-codex-tui-{uuid.uuid4().hex[:8]}")
    try:
        yield tmux
    finally:
        await tmux.shutdown_server()


async def test_codex_in_tmux_posts_heartbeats_from_its_hooks(
    backend: TmuxBackend, beats: tuple[Beats, str], tmp_path: Path
) -> None:
    """A turn of Codex's TUI posts working (prompt, tool) and then waiting (its end)."""
    cli("codex")
    recorder, url = beats
    token = secrets.token_urlsafe(24)
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "tmp").mkdir(parents=True)
    work.mkdir()
    turns = (Turn(text="", tool=ToolCall("exec_command", {"cmd": "echo hi"})), Turn(text="ok"))
    accept = Accepted(api_keys=frozenset({KEY}))
    async with FakeProvider(
        *turns, default=Turn(text="(done)"), models=(MODEL,), accept=accept
    ) as fake:
        ctx = RuntimeContext(
            home=home,
            workdir=work,
            environ={
                "PATH": f"{bin_dir()}:{node_dir()}:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "OPENAI_API_KEY": KEY,
            },
            tty=True,
            provider_urls={"openai": fake.base_url},
            heartbeat_url=url,
            heartbeat_token=token,
            started_at=datetime.now(UTC),
        )
        spec = AgentSpec(
            AgentName("coder-1"),
            runtime="codex",
            model=MODEL,
            prompt="say hi",
            secret_env=("OPENAI_API_KEY",),
            sandbox="none",
            permissions=PermissionMode.FULL,  # nothing asked (test_codex_tui_asks asks)
        )
        plan = CodexRuntime(str(bin_dir() / "codex")).plan(spec, ctx)
        write_files(home, plan.files)
        handle = await backend.launch(plan, tmp_path / "run", tmp_path / "output.log")
        try:

            async def waiting() -> bool:
                return any(body == b'{"state":"waiting"}' for _, _, body in recorder.received)

            assert await eventually(waiting, within=60), await backend.snapshot(handle)
        finally:
            await backend.stop(handle, grace=1.0, force=True)
    states = [body for _, _, body in recorder.received]
    assert states[0] == b'{"state":"working"}' and states[-1] == b'{"state":"waiting"}'
    assert {(path, given) for path, given, _ in recorder.received} == {
        ("/heartbeat/coder-1", token)
    }
    assert fake.requests, "the TUI never reached the provider"
