"""The real agent CLIs (from npm) run headless against the fake provider and finish a turn.

This is what keeps :mod:`tests.fakes.provider.server` honest: if a real client cannot parse the
fake's wire format, these fail. The CLIs are installed by ``tests/agent_clis.sh`` (run by
``tests/run.sh``) into ``.cache/agent-clis``; ``FLEETWARDEN_AGENT_CLIS_BIN`` may name
another directory holding ``claude``, ``codex``, ``pi`` and ``opencode``. Each CLI runs in
a clean environment (nothing inherited from the host) with a temp HOME, as
``/work/shared/AGENT-CLIS.md`` measured them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.provider.server import Accepted, FakeProvider, Turn

pytestmark = [pytest.mark.integration, pytest.mark.agent_cli]

REPO = Path(__file__).resolve().parents[3]
BIN_ENV_VAR = "FLEETWARDEN_AGENT_CLIS_BIN"
DEFAULT_BIN = REPO / ".cache" / "agent-clis" / "node_modules" / ".bin"
REPLY = "fleetwarden-ok"
PROMPT = "say hi"
TIMEOUT = 60.0
API_KEY = "test-key"


CLAUDE_ENV = {
    "ANTHROPIC_API_KEY": API_KEY,
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}
"""Claude Code's environment on the fake provider, its ``ANTHROPIC_BASE_URL`` aside."""
CODEX_CONFIG = """\
{top}model = "gpt-5-codex"
model_provider = "fake"
check_for_update_on_startup = false

[model_providers.fake]
name = "Fake provider"
base_url = "{base}/v1"
env_key = "FAKE_PROVIDER_API_KEY"
wire_api = "responses"
supports_websockets = false
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[features]
plugins = false

[otel]
exporter = "none"
metrics_exporter = "none"
{extra}"""
"""Codex's ``config.toml`` on the fake provider at ``{base}``: ``{top}`` first, ``{extra}`` last."""
OPENCODE_ENV = {
    "ANTHROPIC_API_KEY": API_KEY,
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
}
"""opencode's environment on the fake provider, its ``OPENCODE_CONFIG_CONTENT`` aside."""


def opencode_on(base_url: str) -> dict[str, Any]:
    """opencode's inline config on the fake provider at ``base_url``."""
    return {
        "model": "anthropic/claude-sonnet-4-5",
        "provider": {"anthropic": {"options": {"baseURL": f"{base_url}/v1", "apiKey": API_KEY}}},
        "agent": {"title": {"disable": True}},
        "autoupdate": False,
        "share": "disabled",
    }


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def bin_dir() -> Path:
    return Path(os.environ.get(BIN_ENV_VAR) or DEFAULT_BIN)


def cli(name: str) -> Path:
    """The CLI's binary; fails (never skips) when it is not installed."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"agent CLI {name!r} is missing (no {path}): run bash tests/run.sh "
            f"(it runs tests/agent_clis.sh), or set {BIN_ENV_VAR}",
            pytrace=False,
        )
    return path


def node_dir() -> Path:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the agent CLIs need Node.js 20+", pytrace=False)
    return Path(node).resolve().parent


def clean_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """``env -i`` plus PATH (the CLIs, node, the system) and a temp HOME; npm offline, so a
    CLI's own package install (opencode's, for a plugin) never reaches the registry."""
    path = [str(bin_dir()), str(node_dir()), "/usr/local/bin", "/usr/bin", "/bin"]
    env = {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "CI": "1",
        "npm_config_offline": "true",
    }
    return {**env, **extra}


async def run_cli(
    argv: Sequence[str | Path], cwd: Path, env: Mapping[str, str], stdin: bytes = b""
) -> Run:
    """Run headless with ``stdin`` then end of input (nothing by default); kill the whole
    process group on timeout."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv),
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin or None), TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = await proc.communicate()
        pytest.fail(
            f"{argv[0]} did not finish within {TIMEOUT:.0f} s and was killed\n"
            f"stdout:\n{out.decode(errors='replace')}\nstderr:\n{err.decode(errors='replace')}",
            pytrace=False,
        )
    finally:
        # Reap anything the CLI left running in its session (e.g. helper processes).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.monotonic() - started
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"), seconds)


@pytest.fixture
async def cli_provider() -> AsyncIterator[FakeProvider]:
    accept = Accepted(api_keys=frozenset({API_KEY}))
    async with FakeProvider(default=Turn(text=REPLY), accept=accept) as provider:
        yield provider


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    (path / "tmp").mkdir(parents=True)
    return path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def check(run: Run, fake: FakeProvider, api_path: str) -> None:
    """Exit 0, at least one model request on ``api_path``, and the reply on stdout."""
    seen = [f"{r.method} {r.path}{'?' + r.query if r.query else ''}" for r in fake.requests]
    context = (
        f"\nexit {run.returncode} after {run.seconds:.1f} s\nrequests: {seen}\n"
        f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    )
    assert run.returncode == 0, context
    model = [r for r in fake.requests if r.method == "POST" and r.path == api_path]
    assert model, f"no POST {api_path}" + context
    assert REPLY in run.stdout, f"{REPLY!r} not on stdout" + context
    print(f"{run.seconds:.1f} s, {len(model)} model request(s), {len(fake.requests)} in all")


async def test_claude(cli_provider: FakeProvider, home: Path, work: Path) -> None:
    env = clean_env(home, {"ANTHROPIC_BASE_URL": cli_provider.base_url, **CLAUDE_ENV})
    argv = [cli("claude"), "-p", PROMPT, "--output-format", "json"]
    run = await run_cli(argv, work, env)
    check(run, cli_provider, "/v1/messages")
    result = json.loads(run.stdout)
    assert result["result"] == REPLY, result
    assert result["is_error"] is False, result
    usage = cli_provider.default.usage  # the fake's usage, as Claude decoded it from the stream
    assert result["usage"]["input_tokens"] == usage.input, result
    assert result["usage"]["output_tokens"] == usage.output, result


async def test_codex(cli_provider: FakeProvider, home: Path, work: Path) -> None:
    codex_home = home / ".codex"
    codex_home.mkdir()
    config = CODEX_CONFIG.format(top="", base=cli_provider.base_url, extra="")
    (codex_home / "config.toml").write_text(config)
    env = clean_env(home, {"CODEX_HOME": str(codex_home), "FAKE_PROVIDER_API_KEY": API_KEY})
    argv = [cli("codex"), "exec", "--skip-git-repo-check", "--ephemeral", PROMPT]
    run = await run_cli(argv, work, env)
    check(run, cli_provider, "/v1/responses")


async def test_pi(cli_provider: FakeProvider, home: Path, work: Path) -> None:
    agent_dir = home / "pi-agent"
    agent_dir.mkdir()
    models = {"providers": {"anthropic": {"baseUrl": cli_provider.base_url}}}
    (agent_dir / "models.json").write_text(json.dumps(models))
    env = clean_env(
        home,
        {
            "PI_OFFLINE": "1",
            "PI_CODING_AGENT_DIR": str(agent_dir),
            "ANTHROPIC_API_KEY": API_KEY,
        },
    )
    argv = [cli("pi"), "-p", PROMPT, "--provider", "anthropic", "--no-session"]
    run = await run_cli(argv, work, env)
    check(run, cli_provider, "/v1/messages")


async def test_opencode(cli_provider: FakeProvider, home: Path, work: Path) -> None:
    config = {"$schema": "https://opencode.ai/config.json", **opencode_on(cli_provider.base_url)}
    extra = {"OPENCODE_CONFIG_CONTENT": json.dumps(config)}
    env = clean_env(home, {**extra, **OPENCODE_ENV})
    argv = [cli("opencode"), "run", PROMPT, "--pure"]
    run = await run_cli(argv, work, env)
    check(run, cli_provider, "/v1/messages")
