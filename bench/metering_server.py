"""Fleetwarden's metering proxy for :mod:`bench.metering_proxy`, in a process of its own.

Opens a real ledger at ``LEDGER``, starts
:class:`fleet.metering.proxy.MeteringProxy` on 127.0.0.1 with one provider route,
``anthropic`` → ``UPSTREAM``, recording into that ledger, and prints the per-agent base
URL of the agent ``bench-1`` for that provider as one line on stdout. Serves until
SIGTERM or SIGINT, then stops the proxy (which flushes its pending ledger writes) and
closes the ledger.

    python -m bench.metering_server UPSTREAM STATE_DIR LEDGER
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from fleet.clock import SystemClock
from fleet.ledger import Ledger
from fleet.metering.config import ProviderApi, ProviderRoute
from fleet.metering.proxy import MeteringProxy

AGENT = "bench-1"


async def serve(upstream: str, state_dir: Path, ledger_path: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ledger = await Ledger.open(ledger_path, SystemClock())
    try:
        route = ProviderRoute(name="anthropic", upstream=upstream, api=ProviderApi.ANTHROPIC)
        proxy = MeteringProxy(state_dir, routes={"anthropic": route}, sink=ledger.record_metering)
        await proxy.start()
        try:
            print(proxy.urls_for(AGENT)["anthropic"], flush=True)
            await stop.wait()
        finally:
            await proxy.stop()
    finally:
        await ledger.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.metering_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("upstream", help="the provider's base URL, e.g. http://127.0.0.1:PORT")
    parser.add_argument("state_dir", type=Path, help="the proxy's state (agents' keys, port)")
    parser.add_argument("ledger", type=Path, help="the ledger file (created)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.upstream, args.state_dir, args.ledger))
    return 0


if __name__ == "__main__":
    sys.exit(main())
