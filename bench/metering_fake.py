"""The fake LLM provider of :mod:`bench.metering_proxy`, in a process of its own.

Starts :class:`tests.fakes.provider.server.FakeProvider` on 127.0.0.1 (a free port) whose every
answer is one realistic turn: :data:`TEXT` (~300 tokens of prose, streamed as ~250
word-sized deltas) with the usage of a mid-conversation coding-agent request. Prints
its base URL as one line on stdout, then serves until SIGTERM or SIGINT. With ``--key K``
it answers only requests that carry the API key ``K`` (401 otherwise), as the real API
does: a proxy path that forwarded a placeholder would fail the bench's first request.

    python -m bench.metering_fake [--event-delay-ms 0] [--key K]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from tests.fakes.provider.server import Accepted, FakeProvider, Turn, Usage

TEXT = (
    "I looked at the failing test and the traceback points at the retry loop in "
    "`fetch_page`. The loop catches `TimeoutError`, sleeps, and tries again, but it never "
    "resets the connection pool, so every retry reuses the same half-closed socket and "
    "times out in exactly the same way. That is why the test hangs for the full ninety "
    "seconds instead of failing fast.\n\n"
    "There are two reasonable fixes. The smaller one is to close the session inside the "
    "`except` branch and open a new one before the next attempt; that keeps the public "
    "signature unchanged and is easy to review. The better one, in my opinion, is to move "
    "the retry policy out of `fetch_page` entirely and let the caller pass a `Retry` "
    "object, because three other call sites already implement their own slightly "
    "different loops and one of them has the same bug.\n\n"
    "I went with the smaller fix for now so the build turns green, and I added a test that "
    "makes the fake server drop the first two connections and answer the third. It passes "
    "locally in under a second. I also noticed that the logger in this module formats its "
    "messages eagerly with f-strings, which costs a little on the hot path; I left that "
    "alone because it is unrelated, but it might be worth a follow-up.\n\n"
    "Next, unless you object, I will run the whole suite once more, then open a pull "
    "request with both changes and a short description of the root cause."
)
# A mid-conversation agent turn: most of the prompt is a cache hit, the answer is TEXT.
USAGE = Usage(input=1834, output=312, cache_read=24576, cache_write=1207)


async def serve(event_delay: float, key: str | None) -> None:
    accept = Accepted(api_keys=frozenset({key})) if key else None
    turn = Turn(text=TEXT, usage=USAGE, delay_between_events=event_delay)
    provider = FakeProvider(default=turn, accept=accept, lenient_credentials=accept is None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with provider:
        print(provider.base_url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.metering_fake", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--event-delay-ms", type=float, default=0.0, help="pause between SSE events"
    )
    parser.add_argument("--key", help="the only API key accepted (default: any)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.event_delay_ms / 1000, args.key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
