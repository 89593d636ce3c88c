"""A counting reverse proxy on 127.0.0.1, for tests that take a homeserver away.

Put it between a client and an upstream (a Synapse): every request is forwarded and
recorded (arrival time, method, path, status). When the upstream cannot be reached,
or drops a request midway, the proxy answers 502 itself, the way a real reverse proxy
in front of a stopped homeserver does. A test can then count how often a client
retried while the upstream was down, e.g. ``proxy.count("/_matrix/client/v3/sync",
since=t_down)``. :meth:`CountingProxy.fail_next` injects failures: answer the next
matching requests with an error (a 429, a 502), optionally after passing them upstream
(a response lost on the way back).

Use :class:`CountingProxy` from async tests (it runs on the test's event loop), or
:func:`proxy_in_thread` from synchronous code (it runs its own loop in a thread).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

# Hop-by-hop and framing headers: aiohttp sets its own on each side.
_DROP_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "host",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass
class ProxiedRequest:
    """One request the proxy received; ``status`` is None until it was answered."""

    at: float  # time.monotonic() on arrival
    method: str
    path: str  # without the query string
    status: int | None = None


@dataclass
class _Fault:
    method: str | None
    path_prefix: str
    status: int
    body: dict[str, Any] | None
    remaining: int
    forward: bool


class CountingProxy:
    """Forwards ``http://127.0.0.1:<port>/…`` to ``upstream`` and records each request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self._requests: list[ProxiedRequest] = []
        self._lock = threading.Lock()  # readers may be on another thread
        self._faults: list[_Fault] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[ProxiedRequest]:
        """A snapshot of every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def count(
        self,
        path: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        status: int | None = None,
    ) -> int:
        """Requests for exactly ``path`` (any when None) that arrived in [since, until]."""
        return len(self.matching(path, since=since, until=until, status=status))

    def matching(
        self,
        path: str | None = None,
        *,
        since: float | None = None,
        until: float | None = None,
        status: int | None = None,
    ) -> list[ProxiedRequest]:
        return [
            request
            for request in self.requests
            if (path is None or request.path == path)
            and (since is None or request.at >= since)
            and (until is None or request.at <= until)
            and (status is None or request.status == status)
        ]

    def fail_next(
        self,
        path_prefix: str,
        *,
        status: int = 502,
        times: int = 1,
        method: str | None = None,
        body: dict[str, Any] | None = None,
        forward: bool = False,
    ) -> None:
        """Answer the next ``times`` requests whose path starts with ``path_prefix`` (and
        whose method is ``method``, if given) with ``status`` and ``body`` as JSON.

        ``forward``: pass the request upstream first and then answer with the failure,
        as when the upstream did the work but its response was lost.
        """
        with self._lock:
            self._faults.append(_Fault(method, path_prefix, status, body, times, forward))

    def _fault_for(self, request: web.Request) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if (
                    fault.remaining > 0
                    and request.path.startswith(fault.path_prefix)
                    and (fault.method is None or fault.method == request.method)
                ):
                    fault.remaining -= 1
                    return fault
        return None

    async def start(self) -> None:
        # No timeout upstream: a sync long-poll is legitimately slow.
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None), auto_decompress=False
        )
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        # Bind first: a SockSite on our socket tells us the port the OS picked.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> CountingProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        record = ProxiedRequest(time.monotonic(), request.method, request.path)
        with self._lock:
            self._requests.append(record)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP_HEADERS}
        body = await request.read()
        fault = self._fault_for(request)
        if fault is not None and not fault.forward:
            record.status = fault.status
            return _fault_response(fault)
        try:
            async with self._session.request(
                request.method,
                self.upstream + request.path_qs,
                headers=headers,
                data=body or None,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                reply_headers = {
                    k: v for k, v in upstream.headers.items() if k.lower() not in _DROP_HEADERS
                }
                if fault is not None:
                    record.status = fault.status
                    return _fault_response(fault)
                record.status = upstream.status
                return web.Response(status=upstream.status, body=payload, headers=reply_headers)
        except (aiohttp.ClientError, OSError) as exc:
            record.status = 502
            return web.Response(status=502, text=f"bad gateway: {exc!r}\n")


def _fault_response(fault: _Fault) -> web.Response:
    if fault.body is None:
        return web.Response(status=fault.status, text="injected failure\n")
    return web.Response(
        status=fault.status, text=json.dumps(fault.body), content_type="application/json"
    )


@contextmanager
def proxy_in_thread(upstream: str) -> Iterator[CountingProxy]:
    """A :class:`CountingProxy` on its own event loop in a daemon thread, for sync code."""
    proxy = CountingProxy(upstream)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(proxy.stop())
        loop.close()

    thread = threading.Thread(target=serve, name="counting-proxy", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the counting proxy did not start within 10 s")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
