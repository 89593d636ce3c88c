"""Benchmark: a streamed LLM request direct, through Fleetwarden's metering proxy, through LiteLLM.

One run starts, each in its own process: the fake provider (:mod:`bench.metering_fake`,
a realistic ~300-token answer streamed as 248 SSE deltas), Fleetwarden's metering proxy
in front of it (:mod:`bench.metering_server`, with a real ledger in the temporary
directory) and LiteLLM's proxy in front of it twice (``bench/.venv-litellm``, made by
``bench/litellm/setup.sh`` when missing; no database, bound to 127.0.0.1), one process
per LiteLLM path: ``litellm-passthrough`` through its built-in ``/anthropic/``
pass-through route (which records no usage for a host that is not Anthropic's own), and
``litellm-messages`` through its own ``/v1/messages`` route and a ``model_list`` entry for
the bench's model with the fake as ``api_base`` (which counts usage on every stream: the
path that does Fleetwarden's job). Beside them: ``passthrough``, a minimal aiohttp
streaming pass-through (:mod:`bench.passthrough_server`), the floor of any proxy here; and
``fleetwarden-app``, the whole app (:mod:`bench.metering_app`: ``fleetwarden run`` with a
global budget reserving and settling every request and an account injecting the key, the
request sent to its agent's own proxy URL), whose ledger must hold one row with exactly the
fake's tokens per request sent; and ``fleetwarden-app-pg``, the same app in a process of its
own with its ledger on PostgreSQL (its config adds ``ledger: postgresql://…``, a database on
a real server the bench starts, ``tests/postgres_server.py``, and stops however the run
ends), checked the same way. This process is the client: aiohttp, one keep-alive pool
per path and concurrency level.

Every path gets the same request, an Anthropic Messages stream (``POST …/v1/messages``,
``stream: true``, ``x-api-key`` and ``anthropic-version`` headers; only the key differs:
the fake's for direct and Fleetwarden, LiteLLM's master key for LiteLLM), and must answer
with the fake's exact length and final event. Per request: TTFB = send → first bytes of
the SSE body; total = send → end of the body. At concurrency 1, then ``--concurrency``:
each path's uncounted warm-up, then ``--rounds`` rounds in which the paths take turns
(never two at once) with their share of the requests. Reported per path and level: TTFB
and total p50/p99, requests/s (requests / wall time of the path's turns), CPU per request
of the client, the fake and the proxy; per proxy its VmRSS idle and at the end and its
VmHWM (peak); Fleetwarden's TTFB p50 over direct in ms (goal ≤ 1 ms), and for each
LiteLLM path Fleetwarden's throughput over it (goal ≥ 5×) and its CPU per request over
Fleetwarden's; the app on PostgreSQL over the app on SQLite (req/s, TTFB p50, CPU per
request: the app's, and the PostgreSQL server's beside it; goal: req/s ≥ 0.9× and TTFB p50
≤ 1/0.9 of SQLite's); and the usage rows in each ledger afterwards. Where the time goes,
per proxy beside the floor: the pieces an answer reached the client in (about the proxy's
writes of it) and its CPU split into the kernel's (the sends and receives) and the rest.
Then issue 73's goals (issue 57's before) for the whole app beside the pass-through, each
printed with its figure and ``met`` or ``MISSED``: its proxy CPU per request at most 1.1×
the pass-through's at 1 and at ``--concurrency`` streams, its TTFB p50 at one stream at
most the pass-through's + 0.5 ms, and every request sent counted to the token (a row with
exactly the fake's four counts, outcome ``ok``) in its ledger — on SQLite and on
PostgreSQL. A proxy that cannot be started or does not answer is skipped, with the reason;
the rest runs.

    python -m bench.metering_proxy [--requests 300] [--concurrent-requests 2000]
        [--concurrency 32] [--rounds 10] [--json out.json] [--no-litellm]
        [--paths passthrough,fleetwarden-app,fleetwarden-app-pg]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench.harness import execute
from bench.metering_app import AppProxy, usage_check
from bench.metering_client import REQUEST_TIMEOUT, fetch, measure, request_body
from bench.metering_fake import TEXT, USAGE
from bench.metering_paths import APP_PATHS, LITELLM_PATHS, PATHS, Target
from bench.metering_proxies import (
    FLEETWARDEN_LEDGER,
    PROVIDER_KEY,
    REPO_ROOT,
    START_TIMEOUT,
    child_env,
    litellm_version,
    memory_mib,
    start_app,
    start_fleetwarden,
    start_litellm,
    start_passthrough,
    start_postgres,
    usage_rows,
)
from bench.metering_report import Result, ratios, report
from bench.processes import BenchError, Child
from tests.fakes.provider.sse import pieces


async def run(args: argparse.Namespace, root: Path) -> Result:
    body = request_body(args.prompt_kib)
    result = Result(
        started=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine={
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        request={"body_bytes": len(body), "deltas": len(pieces(TEXT))},
        requests={1: args.requests, args.concurrency: args.concurrent_requests},
        warmup=args.warmup,
        rounds=args.rounds,
    )
    children: dict[str, Child] = {}  # by path name, and the fake
    apps: dict[str, AppProxy] = {}  # by path name
    async with contextlib.AsyncExitStack() as stack:
        # Unwound in reverse order, each step whatever the one before did (an error, a
        # second Ctrl-C): the app on PostgreSQL (flushing its ledger on EOF), then the
        # PostgreSQL server, then the app on SQLite, then every child process.
        stack.callback(stop_children, children)
        fake_env = child_env(PYTHONPATH=str(REPO_ROOT))
        fake_argv = [sys.executable, "-m", "bench.metering_fake"]
        fake_argv += ["--event-delay-ms", f"{args.event_delay_ms:g}", "--key", PROVIDER_KEY]
        fake = Child("fake provider", fake_argv, cwd=REPO_ROOT, env=fake_env, log=root / "fake.log")
        children["fake"] = fake
        upstream = await fake.read_line(START_TIMEOUT)
        targets = [Target("direct", f"{upstream}/v1/messages", PROVIDER_KEY, None)]
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            _, expected = await fetch(session, targets[0], body, None)
            result.request["answer_bytes"] = expected
            for name in PATHS[1:]:
                if name in LITELLM_PATHS and args.no_litellm:
                    result.skipped[name] = "--no-litellm"
                    continue
                if name not in args.paths or name == "fleetwarden-accounts":
                    continue  # not asked for, or started with fleetwarden: the same process
                try:
                    if name == "fleetwarden":
                        plain, held = await start_fleetwarden(root, upstream, children, args)
                        started = [plain] if held is None else [plain, held]
                    elif name == "passthrough":
                        started = [await start_passthrough(upstream, root, children)]
                    elif name in APP_PATHS:
                        postgres = start_postgres(stack) if name == "fleetwarden-app-pg" else None
                        app, started_app = await start_app(name, root, upstream, args, postgres)
                        apps[name] = app
                        stack.push_async_callback(app.stop)  # safe to repeat
                        started = [started_app]
                    else:
                        started = [await start_litellm(name, root, upstream, children)]
                    for target in started:
                        await fetch(session, target, body, expected)  # it works end to end
                except (BenchError, RuntimeError, AssertionError) as exc:
                    result.skipped[name] = str(exc)
                    if name in children:
                        children.pop(name).stop()
                    if name in apps:
                        await apps.pop(name).stop()
                    continue
                targets.extend(started)
        result.versions["aiohttp"] = aiohttp.__version__
        if any(name in children for name in LITELLM_PATHS):
            result.versions["litellm"] = litellm_version()
        idle = {t.name: memory_mib(t.pid)["VmRSS"] for t in targets if t.pid is not None}
        for level, count in result.requests.items():
            result.blocks += await measure(targets, body, expected, fake.pid, level, count, args)
        for target in targets:
            if target.pid is not None:
                mem = memory_mib(target.pid)
                result.memory_mib[target.name] = {
                    "idle": idle[target.name],
                    "end": mem["VmRSS"],
                    "peak": mem["VmHWM"],
                }
        if "fleetwarden" in children:
            children["fleetwarden"].stop()  # flushes the proxy's pending ledger writes
            result.ledger_usage_rows = usage_rows(root / FLEETWARDEN_LEDGER)
        tokens = (USAGE.input, USAGE.output, USAGE.cache_read, USAGE.cache_write)
        for name, app in apps.items():
            await app.stop()  # the app ends on EOF, its ledger written
            check = await usage_check(app.ledger, tokens)  # PostgreSQL's server still runs
            if check is not None:
                usage = {"rows": check.rows, "exact": check.exact}
                if name == "fleetwarden-app-pg":
                    result.app_pg_usage = usage
                else:
                    result.app_usage = usage
        result.ratios = ratios(result, args.concurrency)
        return result


def stop_children(children: dict[str, Child]) -> None:
    """Stop every child process, the last started first."""
    for child in reversed(children.values()):
        child.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.metering_proxy", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=300, help="measured at concurrency 1")
    parser.add_argument(
        "--concurrent-requests", type=int, default=2000, help="measured at --concurrency"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="the loaded level")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted requests per path+level")
    parser.add_argument("--rounds", type=int, default=10, help="the paths take turns this often")
    parser.add_argument("--prompt-kib", type=int, default=16, help="request body size")
    parser.add_argument(
        "--event-delay-ms", type=float, default=0.0, help="the fake's pause between SSE events"
    )
    parser.add_argument("--no-litellm", action="store_true", help="skip both LiteLLM paths")
    parser.add_argument(
        "--paths",
        default=",".join(PATHS[1:]),
        help="the proxies to measure besides direct, comma-separated (default: all)",
    )
    parser.add_argument(
        "--fleetwarden-src",
        type=Path,
        help="run Fleetwarden's packages from this checkout (e.g. a scratch copy) instead",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--progress", action="store_true", help="print progress on stderr")
    args = parser.parse_args(argv)
    if args.rounds < 1 or min(args.requests, args.concurrent_requests) < args.rounds:
        parser.error("--rounds must be at least 1, and each request count at least --rounds")
    if args.warmup < 0:
        parser.error("--warmup must not be negative")
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2 (1 is always measured)")

    args.paths = {name.strip() for name in args.paths.split(",") if name.strip()}
    if not args.paths <= set(PATHS):
        parser.error(f"--paths: unknown {sorted(args.paths - set(PATHS))}; known: {PATHS[1:]}")
    if "fleetwarden-accounts" in args.paths:
        args.paths.add("fleetwarden")
    if args.fleetwarden_src is not None:
        args.fleetwarden_src = args.fleetwarden_src.resolve()
    return execute(
        lambda root: run(args, root),
        lambda result: report(result, args.concurrency),
        keep=args.keep,
        json_path=args.json,
        prefix="fw-bench-metering-",
    )


if __name__ == "__main__":
    sys.exit(main())
