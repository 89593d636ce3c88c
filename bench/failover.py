"""Failover time: a standby orchestrator taking over from a `kill -9`'d active one.

    .venv/bin/python -m bench.failover [--rounds 10] [--json out.json]

Two real `fleetwarden run` processes share a real PostgreSQL ledger
(``tests/postgres_server.py``) and serve the fake Discord on loopback, as in
``tests/integration/agents/test_standby_e2e.py``. Each round kills the active one with SIGKILL
and times until the standby is active *and* connected to chat, then starts a new standby
beside it for the next round, and checks that a command posted after the takeover is
answered exactly once. Goal: p95 ≤ 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench.harness import percentile
from tests.fakes.discord.server import FakeDiscord
from tests.integration.agents.test_standby_e2e import Orchestrator, answers_to
from tests.integration.connectors.discord.test_discord_bot import eventually, write_config
from tests.postgres_server import PostgresServer, find_bin_dir


async def main(rounds: int) -> list[float]:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("no PostgreSQL binaries (apt-get install postgresql)")
    server = PostgresServer(None, bin_dir=bin_dir)
    server.start()
    took: list[float] = []
    running: list[Orchestrator] = []
    try:
        server.create_database("failover")
        with tempfile.TemporaryDirectory(prefix="fw-bench-failover-") as tmp:
            async with FakeDiscord(heartbeat_interval_ms=2_000) as fake:
                config = write_config(fake, Path(tmp)).read_text()
                config += f"ledger: {server.dsn('failover')}\n"

                def start(n: int) -> Orchestrator:
                    workdir = Path(tmp) / f"o{n}"
                    workdir.mkdir()
                    (workdir / "fleetwarden.yaml").write_text(config)
                    running.append(Orchestrator(fake, workdir))
                    return running[-1]

                active = start(0)
                await eventually(lambda: active.said("active:") and fake.connected, 60)
                for n in range(1, rounds + 1):
                    standby = start(n)
                    await eventually(lambda s=standby: s.said("standby:"), 60)
                    killed = time.monotonic()
                    active.proc.kill()
                    await eventually(lambda: not fake.connected, 60)
                    await eventually(lambda s=standby: s.said("active:") and fake.connected, 60)
                    took.append(time.monotonic() - killed)
                    asked = await fake.post_user_message(fake.control_channel_id, "ann", "!whoami")
                    await eventually(lambda a=asked: answers_to(fake, a), 30)
                    await asyncio.sleep(1.0)
                    if len(answers_to(fake, asked)) != 1:
                        raise RuntimeError(f"round {n}: answered {len(answers_to(fake, asked))}×")
                    print(f"round {n}: {took[-1]:.2f} s", flush=True)
                    active.end()
                    active = standby
    finally:
        for orchestrator in running:
            orchestrator.end()
        server.close()
    return took


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.failover", description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    arguments = parser.parse_args()
    times = asyncio.run(main(arguments.rounds))
    print(
        f"failover over {len(times)} kill -9s: p50 {percentile(times, 50):.2f} s, "
        f"p95 {percentile(times, 95):.2f} s, max {max(times):.2f} s (goal p95 <= 15 s)"
    )
    if arguments.json is not None:
        arguments.json.write_text(json.dumps({"seconds": times}, indent=2))
