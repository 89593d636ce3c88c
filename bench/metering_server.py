"""Fleetwarden's metering proxy for :mod:`bench.metering_proxy`, in a process of its own.

Opens a real ledger at ``LEDGER``, starts
:class:`fleet.metering.proxy.MeteringProxy` on 127.0.0.1 with one provider route,
``anthropic`` → ``UPSTREAM``, recording into that ledger, and prints the per-agent base
URL of the agent ``bench-1`` for that provider as one line on stdout. Serves until
SIGTERM or SIGINT, then stops the proxy (which flushes its pending ledger writes) and
closes the ledger.

With ``--account-key-env VAR`` the proxy also holds an ``api_key`` account whose key is in
``VAR``, puts the agent ``bench-2`` on it, and prints that agent's URL as a second line:
whatever key bench-2's requests carry is dropped and the account's injected, as for every
agent of a Fleetwarden with accounts, while bench-1's pass as sent. One process serves
both, so the two are measured on the same proxy.

    python -m bench.metering_server UPSTREAM STATE_DIR LEDGER [--account-key-env VAR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from fleet.accounts.book import AccountBook
from fleet.accounts.model import Account, AccountKind, AccountSet
from fleet.accounts.providers import ProviderApi, ProviderRoute
from fleet.ledger import Ledger
from fleet.metering.proxy import MeteringProxy
from fleet.timing.clock import SystemClock

AGENT = "bench-1"
HELD_AGENT = "bench-2"


async def serve(
    upstream: str, state_dir: Path, ledger_path: Path, key_env: str | None = None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    clock = SystemClock()
    ledger = await Ledger.open(ledger_path, clock)
    book = None
    if key_env is not None:
        # Implicit: never the provider's default, so bench-1 stays without an account.
        account = Account("bench-key", "anthropic", AccountKind.API_KEY, key_env, implicit=True)
        book = AccountBook(
            AccountSet({account.name: account}),
            environ=os.environ,
            state_dir=state_dir,
            clock=clock,
            ledger=ledger.accounts,
        )
        await book.start()
        book.assign(HELD_AGENT, "claude", account.name)
    try:
        route = ProviderRoute(name="anthropic", upstream=upstream, api=ProviderApi.ANTHROPIC)
        proxy = MeteringProxy(
            state_dir,
            routes={"anthropic": route},
            sink=ledger.metering.record_metering,
            accounts=book,
        )
        await proxy.start()
        try:
            print(proxy.urls_for(AGENT)["anthropic"], flush=True)
            if book is not None:
                print(proxy.urls_for(HELD_AGENT)["anthropic"], flush=True)
            await stop.wait()
        finally:
            await proxy.stop()
    finally:
        if book is not None:
            await book.stop()
        await ledger.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.metering_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("upstream", help="the provider's base URL, e.g. http://127.0.0.1:PORT")
    parser.add_argument("state_dir", type=Path, help="the proxy's state (agents' keys, port)")
    parser.add_argument("ledger", type=Path, help="the ledger file (created)")
    parser.add_argument(
        "--account-key-env", help="hold an api_key account whose key is in this variable"
    )
    args = parser.parse_args(argv)
    asyncio.run(serve(args.upstream, args.state_dir, args.ledger, args.account_key_env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
