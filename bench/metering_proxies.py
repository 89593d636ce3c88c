"""The proxies the metering benchmark measures, each in a process of its own: LiteLLM's
(installed into ``bench/.venv-litellm`` when missing), Fleetwarden's, the minimal aiohttp
pass-through and the whole app (its ledger on SQLite, or on a PostgreSQL server the bench
starts) — started, awaited until they answer, and read afterwards (memory, usage rows)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from bench import metering_app as app_bench
from bench.metering_app import AppProxy
from bench.metering_paths import LITELLM_PATHS, Target
from bench.processes import BenchError, Child
from tests.integration.console_bot import clean_env
from tests.postgres_server import PostgresServer, find_bin_dir, processes_in

REPO_ROOT = Path(__file__).resolve().parents[1]
LITELLM_VENV = REPO_ROOT / "bench" / ".venv-litellm"
LITELLM_SETUP = REPO_ROOT / "bench" / "litellm" / "setup.sh"
LITELLM_CONFIG = REPO_ROOT / "bench" / "litellm" / "config.yaml"
APP_PG_DATABASE = "fleetwarden_bench"
PLACEHOLDER_KEY = "fleetwarden-placeholder-bench-1"
KEY_ENV = "FW_BENCH_PROVIDER_KEY"
FLEETWARDEN_LEDGER = "fleetwarden-ledger.db"  # in the temporary directory
PROVIDER_KEY = "fake-bench-provider-key"
LITELLM_MASTER_KEY = "sk-litellm-bench-master"
START_TIMEOUT = 120.0  # LiteLLM imports for several seconds


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MiB, from /proc/<pid>/status."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    """Our environment without anything that would point a child elsewhere, plus ``extra``."""
    drop = ("ANTHROPIC_", "OPENAI_", "LITELLM_", "DATABASE_URL", "DIRECT_URL", "PG")
    env = {k: v for k, v in clean_env().items() if not k.startswith(drop)}
    env.update(extra)
    return env


async def wait_healthy(child: Child, url: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            child.check()
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{child.name} did not answer {url} within {within:.0f} s")
            await asyncio.sleep(0.25)


def setup_litellm(root: Path) -> None:
    """Make bench/.venv-litellm with ``litellm[proxy]`` if it has none (a few minutes once)."""
    if (LITELLM_VENV / "bin" / "litellm").exists():
        return
    print(f"installing LiteLLM into {LITELLM_VENV} …", file=sys.stderr, flush=True)
    log = root / "litellm-setup.log"
    with log.open("wb") as out:
        done = subprocess.run([str(LITELLM_SETUP)], stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise BenchError(f"{LITELLM_SETUP} failed with {done.returncode}:\n{tail}")


def litellm_version() -> str:
    done = subprocess.run(
        [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "show", "litellm"],
        capture_output=True,
        text=True,
    )
    return next(
        (line.split()[1] for line in done.stdout.splitlines() if line.startswith("Version:")),
        "?",
    )


async def start_litellm(name: str, root: Path, upstream: str, children: dict[str, Child]) -> Target:
    """LiteLLM's proxy for the path ``name`` (a process of its own, the same config)."""
    await asyncio.to_thread(setup_litellm, root)
    port = free_port()
    workdir = root / name
    workdir.mkdir()
    env = child_env(
        LITELLM_MASTER_KEY=LITELLM_MASTER_KEY,
        ANTHROPIC_API_BASE=upstream,
        ANTHROPIC_API_KEY=PROVIDER_KEY,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_LOG="ERROR",
    )
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(LITELLM_CONFIG)]
    # Keep-alive 75 s, aiohttp's default (the fake's and Fleetwarden's servers), not
    # uvicorn's 5 s: idle between turns, the pool would race the server's close.
    argv += ["--host", "127.0.0.1", "--port", str(port), "--keepalive_timeout", "75"]
    child = Child(name, argv, cwd=workdir, env=env, log=workdir / "stderr.log")
    children[name] = child
    base = f"http://127.0.0.1:{port}"
    await wait_healthy(child, f"{base}/health/liveliness", START_TIMEOUT)
    return Target(name, f"{base}{LITELLM_PATHS[name]}", LITELLM_MASTER_KEY, child.pid)


async def start_fleetwarden(
    root: Path, upstream: str, children: dict[str, Child], args: argparse.Namespace
) -> tuple[Target, Target | None]:
    """Fleetwarden's proxy, and on it the agent whose key it holds as an account (None
    when a --fleetwarden-src checkout has no accounts)."""
    state = root / "fleetwarden"
    state.mkdir()
    paths = [] if args.fleetwarden_src is None else [str(args.fleetwarden_src)]
    env = child_env(PYTHONPATH=os.pathsep.join([*paths, str(REPO_ROOT)]), **{KEY_ENV: PROVIDER_KEY})
    ledger = root / FLEETWARDEN_LEDGER
    argv = [sys.executable, "-m", "bench.metering_server", upstream, str(state), str(ledger)]
    if args.fleetwarden_src is None or (args.fleetwarden_src / "fleet" / "accounts").is_dir():
        argv += ["--account-key-env", KEY_ENV]
    # cwd: not the repository, which ``-m`` would put first on sys.path, before a --src.
    child = Child("fleetwarden", argv, cwd=state, env=env, log=root / "fleetwarden.log")
    children["fleetwarden"] = child
    base = (await child.read_line(START_TIMEOUT)).rstrip("/")
    plain = Target("fleetwarden", f"{base}/v1/messages", PROVIDER_KEY, child.pid)
    if "--account-key-env" not in argv:
        return plain, None
    held = (await child.read_line(START_TIMEOUT)).rstrip("/")
    return plain, Target("fleetwarden-accounts", f"{held}/v1/messages", PLACEHOLDER_KEY, child.pid)


async def start_passthrough(upstream: str, root: Path, children: dict[str, Child]) -> Target:
    """The minimal pass-through (:mod:`bench.passthrough_server`), in its own process."""
    env = child_env(PYTHONPATH=str(REPO_ROOT))
    argv = [sys.executable, "-m", "bench.passthrough_server", upstream]
    child = Child("passthrough", argv, cwd=REPO_ROOT, env=env, log=root / "passthrough.log")
    children["passthrough"] = child
    base = (await child.read_line(START_TIMEOUT)).rstrip("/")
    return Target("passthrough", f"{base}/v1/messages", PROVIDER_KEY, child.pid)


async def start_app(
    name: str,
    root: Path,
    upstream: str,
    args: argparse.Namespace,
    postgres: PostgresServer | None = None,
) -> tuple[AppProxy, Target]:
    """The whole app (:mod:`bench.metering_app`) as path ``name``, its ledger in its state
    dir or, with ``postgres``, a database of its own there; its agent's URL and placeholder."""
    paths = [] if args.fleetwarden_src is None else [str(args.fleetwarden_src)]
    env = child_env(**{app_bench.KEY_ENV: PROVIDER_KEY})
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    ledger_url = None
    if postgres is not None:
        await asyncio.to_thread(postgres.create_database, APP_PG_DATABASE)
        ledger_url = postgres.dsn(APP_PG_DATABASE)
    app = AppProxy(root / name, upstream, env, ledger_url)
    try:
        view = await app.spawn()
    except BaseException:
        await app.stop()
        raise
    if not view.placeholder or view.placeholder == PROVIDER_KEY:
        await app.stop()
        raise BenchError(f"{name}: the agent holds no placeholder, or the real key")
    helpers = None if postgres is None else functools.partial(processes_in, postgres.data_dir)
    target = Target(name, f"{view.base_url}/v1/messages", view.placeholder, app.pid, helpers)
    return app, target


def start_postgres(stack: contextlib.AsyncExitStack) -> PostgresServer:
    """A real PostgreSQL server (``tests/postgres_server.py``: its own directory and port,
    the tests' settings), closed by ``stack`` however the run ends. Called on the main
    thread: the server dies with the thread that started it."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise BenchError("no PostgreSQL binaries (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401 - the app's PostgreSQL driver
    except ImportError:
        raise BenchError("psycopg is not installed (pip install 'psycopg[binary]')") from None
    server = PostgresServer(None, bin_dir=bin_dir)
    stack.callback(server.close)  # registered first: a failed start is cleaned up too
    server.start()
    return server


def usage_rows(ledger: Path) -> int | None:
    """The rows in the ledger's ``usage`` table, read after the proxy has stopped."""
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT COUNT(*) FROM usage").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0])
