"""Each real runtime's plans, run as planned, drive the real CLI through a turn and a
follow-up against the fake provider.

Nothing is added to what a runtime plans: its argv, its environment (a private HOME, PATH,
the key named in ``secret_env``) and its config files are all the CLI gets, with stdin
``/dev/null``. The provider URL carries a per-agent path prefix, as the metering proxy's
does, so each test also shows the CLI keeps it. The follow-up must resume the session: the
first prompt has to be in the history it sends. The CLIs come from ``tests/agent_clis.sh``
(see ``tests/integration/runtimes/test_real_clis.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from aiohttp import web

from fleet.connections.token import TOKEN_HEADER
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName
from fleet.runtimes import Runtime, RuntimeContext
from fleet.runtimes.claude import ClaudeRuntime
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.opencode import OpencodeRuntime
from fleet.runtimes.pi import PiRuntime
from fleet.sessions.base import Effect, TurnEnded, Write
from fleet.sessions.protocols import protocol_for
from tests.fakes.provider.server import Accepted, FakeProvider, RecordedRequest, Turn
from tests.integration.runtimes.codex_live import LiveCodex
from tests.integration.runtimes.test_real_clis import TIMEOUT, Run, bin_dir, cli, node_dir, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

REPLY = "fleetwarden-runtime-reply-7f3a"
FIRST = "say hi, marker first-turn-51c2"
SECOND = "say more"
PREFIX = "/agents/coder-1"
API_KEY = "test-key-runtime"


@pytest.fixture
async def cli_provider() -> AsyncIterator[FakeProvider]:
    accept = Accepted(api_keys=frozenset({API_KEY}))
    async with FakeProvider(default=Turn(text=REPLY), accept=accept) as provider:
        yield provider


def context(tmp_path: Path, fake: FakeProvider, **kwargs: object) -> RuntimeContext:
    """The agent's place: a fresh home and workdir, and Fleetwarden's own environment
    holding PATH (the CLIs, node, the system) and the API keys."""
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "tmp").mkdir(parents=True)
    work.mkdir()
    path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
    environ = {
        "PATH": ":".join(dict.fromkeys(path)),
        "LANG": "C.UTF-8",
        "TMPDIR": str(home / "tmp"),
        "ANTHROPIC_API_KEY": API_KEY,
        "OPENAI_API_KEY": API_KEY,
    }
    url = fake.base_url + PREFIX
    return RuntimeContext(
        home=home,
        workdir=work,
        environ=environ,
        provider_urls={"anthropic": url, "openai": url},
        **kwargs,  # type: ignore[arg-type]
    )


async def run_plan(plan: LaunchPlan, ctx: RuntimeContext) -> Run:
    """Write the plan's files (inside the agent's home), then run it exactly as planned: a
    live session driven by its protocol until it ends its process."""
    for path, text in plan.files.items():
        assert path.is_relative_to(ctx.home), path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    cli(plan.argv[0])  # fails with "run bash tests/run.sh" when it is not installed
    if plan.session is None:
        return await run_cli(plan.argv, plan.cwd, plan.env)
    return await run_live(plan)


async def run_live(plan: LaunchPlan) -> Run:
    """A live session on pipes: its opening written, each line of output fed to its
    protocol and what it writes written back, until the process ends (its work done)."""
    assert plan.session is not None
    protocol = protocol_for(plan.session, AgentSpec(AgentName("any"), "any"), plan.cwd)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *plan.argv,
        cwd=plan.cwd,
        env=dict(plan.env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    out: list[str] = []

    def write(effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Write) and proc.stdin is not None:
                proc.stdin.write(effect.line.encode() + b"\n")

    async def drive() -> None:
        assert proc.stdout is not None
        write(protocol.opening(plan.prompt))
        while line := await proc.stdout.readline():
            out.append(line.decode(errors="replace"))
            write(protocol.feed(line.decode(errors="replace")))
        await proc.wait()

    try:
        await asyncio.wait_for(drive(), TIMEOUT)
    except TimeoutError:
        pytest.fail(f"{plan.argv[0]} did not end its session in {TIMEOUT:.0f} s:\n{''.join(out)}")
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    err = (await proc.stderr.read()).decode(errors="replace")
    assert proc.returncode is not None
    return Run(proc.returncode, "".join(out), err, time.monotonic() - started)


def model_requests(fake: FakeProvider, api_path: str) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST" and r.path == PREFIX + api_path]


def check(run: Run, fake: FakeProvider, api_path: str, count: int) -> None:
    """Exit 0, the reply on stdout, and ``count`` model requests so far under the prefix."""
    seen = [f"{r.method} {r.path}" for r in fake.requests]
    context = (
        f"\nexit {run.returncode} after {run.seconds:.1f} s\nrequests: {seen}\n"
        f"stdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-4000:]}"
    )
    assert run.returncode == 0, context
    assert REPLY in run.stdout, f"{REPLY!r} not on stdout" + context
    assert len(model_requests(fake, api_path)) >= count, f"no POST {PREFIX}{api_path}" + context
    print(f"{run.seconds:.1f} s, {len(fake.requests)} request(s) so far")


async def turn_and_follow_up(
    runtime: Runtime, spec: AgentSpec, ctx: RuntimeContext, fake: FakeProvider, api_path: str
) -> None:
    """A headless turn naming a session, then a follow-up that resumes it."""
    first = await run_plan(runtime.plan(spec, ctx), ctx)
    check(first, fake, api_path, 1)
    session = runtime.session_id(first.stdout)
    assert session is not None, f"no session id in:\n{first.stdout}"
    before = len(model_requests(fake, api_path))

    plan = runtime.follow_up(spec, ctx, session, SECOND)
    assert plan is not None
    second = await run_plan(plan, ctx)
    check(second, fake, api_path, before + 1)
    assert runtime.session_id(second.stdout) == session
    resumed = model_requests(fake, api_path)[-1]
    assert FIRST.encode() in resumed.raw, "the follow-up did not send the first turn's history"
    assert SECOND.encode() in resumed.raw


def agent(runtime: str, key: str = "ANTHROPIC_API_KEY") -> AgentSpec:
    return AgentSpec(name=AgentName("coder-1"), runtime=runtime, prompt=FIRST, secret_env=(key,))


class Beats:
    """A stand-in heartbeat endpoint on 127.0.0.1 that records each POST."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str | None, bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((request.path, request.headers.get(TOKEN_HEADER), body))
        return web.Response(status=204)


@pytest.fixture
async def beats() -> AsyncIterator[tuple[Beats, str]]:
    recorder = Beats()
    app = web.Application()
    app.router.add_post("/heartbeat/{agent}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield recorder, f"http://127.0.0.1:{port}/heartbeat/coder-1"
    await runner.cleanup()


async def test_claude(cli_provider: FakeProvider, beats: tuple[Beats, str], tmp_path: Path) -> None:
    """claude -p streams, resumes with --resume, and its hooks post heartbeats."""
    recorder, url = beats
    token = secrets.token_urlsafe(24)
    ctx = context(tmp_path, cli_provider, heartbeat_url=url, heartbeat_token=token)
    await turn_and_follow_up(ClaudeRuntime(), agent("claude"), ctx, cli_provider, "/v1/messages")
    assert all(
        r.headers.get("x-api-key") == API_KEY for r in model_requests(cli_provider, "/v1/messages")
    )
    states = {body for _, _, body in recorder.received}
    assert {b'{"state":"working"}', b'{"state":"waiting"}'} <= states, recorder.received
    assert {(path, given) for path, given, _ in recorder.received} == {
        ("/heartbeat/coder-1", token)
    }


async def test_codex(cli_provider: FakeProvider, beats: tuple[Beats, str], tmp_path: Path) -> None:
    """A live session (codex app-server) names its thread; once its process is gone,
    ``exec resume`` continues that thread, and Codex's hooks post its heartbeats."""
    recorder, url = beats
    token = secrets.token_urlsafe(24)
    ctx = context(tmp_path, cli_provider, heartbeat_url=url, heartbeat_token=token)
    runtime = CodexRuntime()
    spec = agent("codex", key="OPENAI_API_KEY")
    async with LiveCodex(spec, cli_provider, tmp_path, ctx=ctx) as live:
        await live.until(lambda effect: isinstance(effect, TurnEnded))
        thread = live.live.thread
    assert thread is not None and runtime.session_id("\n".join(live.lines)) == thread
    assert not recorder.received  # a live session's liveness is its protocol's
    plan = runtime.follow_up(spec, ctx, thread, SECOND)
    assert plan is not None
    second = await run_plan(plan, ctx)
    check(second, cli_provider, "/v1/responses", 2)
    assert runtime.session_id(second.stdout) == thread
    resumed = model_requests(cli_provider, "/v1/responses")[-1]
    assert FIRST.encode() in resumed.raw and SECOND.encode() in resumed.raw
    auth = {r.headers.get("Authorization") for r in model_requests(cli_provider, "/v1/responses")}
    assert auth == {f"Bearer {API_KEY}"}
    states = {body for _, _, body in recorder.received}
    assert {b'{"state":"working"}', b'{"state":"waiting"}'} <= states, recorder.received
    assert {(path, given) for path, given, _ in recorder.received} == {
        ("/heartbeat/coder-1", token)
    }


async def test_pi(cli_provider: FakeProvider, tmp_path: Path) -> None:
    """pi --mode json names its session; --session continues it."""
    ctx = context(tmp_path, cli_provider)
    await turn_and_follow_up(PiRuntime(), agent("pi"), ctx, cli_provider, "/v1/messages")


async def test_opencode(cli_provider: FakeProvider, tmp_path: Path) -> None:
    """opencode run --format json names its session; --session continues it; no title call."""
    ctx = context(tmp_path, cli_provider)
    await turn_and_follow_up(
        OpencodeRuntime(), agent("opencode"), ctx, cli_provider, "/v1/messages"
    )
    # One request per turn: the hidden title request is off.
    assert len(model_requests(cli_provider, "/v1/messages")) == 2


def _skill(root: Path, name: str, says: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    text = f"---\nname: {name}\ndescription: {says}\n---\n\nSay {says}.\n"
    (folder / "SKILL.md").write_text(text)
    return folder


async def test_pi_reads_its_given_skills_and_none_the_agent_could_plant(
    cli_provider: FakeProvider, tmp_path: Path
) -> None:
    """pi launched as Fleetwarden plans it gives the model the agent's configured skill,
    and none of the workdir's .pi/skills or .agents/skills, nor the home's
    ~/.agents/skills or one left in its own skills folder by a run before."""
    ctx = context(tmp_path, cli_provider)
    given = _skill(tmp_path / "operator-skills", "release-notes", "zebra-given-skill")
    _skill(ctx.workdir / ".pi" / "skills", "planted-pi", "zebra-planted-pi")
    _skill(ctx.workdir / ".agents" / "skills", "planted-agents", "zebra-planted-agents")
    _skill(ctx.home / ".agents" / "skills", "planted-home", "zebra-planted-home")
    _skill(ctx.home / ".pi" / "agent" / "skills", "left-over", "zebra-left-over")
    spec = AgentSpec(
        name=AgentName("coder-1"),
        runtime="pi",
        prompt=FIRST,
        secret_env=("ANTHROPIC_API_KEY",),
        skills=(given,),
    )
    run = await run_plan(PiRuntime().plan(spec, ctx), ctx)
    check(run, cli_provider, "/v1/messages", 1)
    sent = model_requests(cli_provider, "/v1/messages")[0].raw.decode()
    assert "zebra-given-skill" in sent
    for planted in ("pi", "agents", "home"):
        assert f"zebra-planted-{planted}" not in sent, planted
    assert "zebra-left-over" not in sent


async def test_opencode_runs_nothing_the_agent_left_in_its_config_dir(
    cli_provider: FakeProvider, tmp_path: Path
) -> None:
    """A plugin and a custom tool an agent wrote into its home's ~/.config/opencode (which
    opencode loads and runs unasked) are gone when Fleetwarden launches it again: neither
    runs, and the model is offered no such tool."""
    ctx = context(tmp_path, cli_provider)
    config = ctx.home / ".config" / "opencode"
    marker = tmp_path / "plugin-ran"
    for folder in ("plugin", "plugins"):
        (config / folder).mkdir(parents=True)
        (config / folder / "evil.js").write_text(
            "import fs from 'node:fs';\n"
            f"fs.writeFileSync({str(marker)!r}, 'ran');\n"
            "export const Evil = async () => ({});\n"
        )
    for folder in ("tool", "tools"):
        (config / folder).mkdir(parents=True)
        (config / folder / "srv_planted.js").write_text(
            "export default { description: 'zebra-planted-tool', args: {},"
            " async execute() { return 'x'; } };\n"
        )
    plan = OpencodeRuntime().plan(agent("opencode"), ctx)
    from fleet.runs.layout import empty_folders

    empty_folders(ctx.home, plan.fresh)  # as the run keeper does before it writes the files
    run = await run_plan(plan, ctx)
    check(run, cli_provider, "/v1/messages", 1)
    assert not marker.exists()
    assert b"zebra-planted-tool" not in model_requests(cli_provider, "/v1/messages")[0].raw
