"""A minimal streaming pass-through for :mod:`bench.metering_proxy`, in a process of its own.

The floor of any HTTP proxy in this stack: one aiohttp server on 127.0.0.1 that forwards
each request's method, path, headers (less hop-by-hop ones) and body to ``UPSTREAM`` on a
pooled client session, and streams the answer back chunk by chunk as it arrives. No
metering, no keys, no ledger, no logging. Prints its base URL as one line on stdout, then
serves until SIGTERM or SIGINT.

    python -m bench.passthrough_server UPSTREAM
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Final

import aiohttp
from aiohttp import web

_DROPPED: Final = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "upgrade"}
)


def make_app(upstream: str) -> web.Application:
    base = upstream.rstrip("/")
    session: aiohttp.ClientSession | None = None

    async def forward(request: web.Request) -> web.StreamResponse:
        assert session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        body = await request.read()
        async with session.request(
            request.method, base + request.rel_url.raw_path_qs, headers=headers, data=body
        ) as answer:
            response = web.StreamResponse(status=answer.status, reason=answer.reason)
            for name, value in answer.headers.items():
                if name.lower() not in _DROPPED:
                    response.headers.add(name, value)
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    async def open_session(app: web.Application) -> None:
        nonlocal session
        connector = aiohttp.TCPConnector(limit=0)
        session = aiohttp.ClientSession(connector=connector, auto_decompress=False)

    async def close_session(app: web.Application) -> None:
        if session is not None:
            await session.close()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    return app


async def serve(upstream: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(make_app(upstream), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"http://127.0.0.1:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.passthrough_server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("upstream", help="the provider's base URL, e.g. http://127.0.0.1:PORT")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.upstream))
    return 0


if __name__ == "__main__":
    sys.exit(main())
