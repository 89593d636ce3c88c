"""The metering proxy and the heartbeat endpoint in a process of their own, whose open-file
limit is lowered to 1,024 (soft and hard, so it cannot be raised): what a flood test runs
against.

    python -m tests.integration.loopback.loopback_child STATE_DIR UPSTREAM_URL IDLE_SECONDS

Prints one JSON line when both listen (ports, the agents' URLs and tokens, the caps in
force), serves until its stdin closes, then prints one JSON line of what admission did
and of the beats it recorded, and stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
from dataclasses import asdict
from pathlib import Path

from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.metering.config import MeteringSettings
from fleet.metering.proxy import MeteringProxy
from fleet.watchdog.heartbeat import HeartbeatServer

LIMIT = 1024
AGENTS = ("victim", "flooder")


async def main(state: Path, upstream: str, idle: float) -> None:
    beats: dict[str, int] = {}

    async def on_beat(agent: str, kind: str) -> None:
        beats[agent] = beats.get(agent, 0) + 1

    async def sink(*_: object) -> None:
        pass

    heartbeat = HeartbeatServer(state / "hb", on_beat, idle_timeout=idle)
    route = ProviderRoute("anthropic", upstream, ProviderApi.ANTHROPIC)
    proxy = MeteringProxy(
        state / "proxy",
        routes={"anthropic": route},
        sink=sink,
        settings=MeteringSettings(idle_timeout=idle),
    )
    await heartbeat.start()
    await proxy.start()
    try:
        ready = {
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "proxy": proxy.port,
            "heartbeat": heartbeat.port,
            "urls": {agent: proxy.urls_for(agent)["anthropic"] for agent in AGENTS},
            "beat_urls": {agent: heartbeat.url_for(agent) for agent in AGENTS},
            "tokens": {agent: heartbeat.token_for(agent) for agent in AGENTS},
            "caps": {
                "proxy": proxy.admission.max_connections,
                "heartbeat": heartbeat.admission.max_connections,
            },
        }
        print(json.dumps(ready), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        counts = {
            "proxy": asdict(proxy.admission.counts),
            "heartbeat": asdict(heartbeat.admission.counts),
            "beats": beats,
        }
        print(json.dumps(counts), flush=True)
    finally:
        await proxy.stop()
        await heartbeat.stop()


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
