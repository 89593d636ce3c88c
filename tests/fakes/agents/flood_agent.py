"""An agent that floods its model with parallel requests, for the run-cap tests —
standalone, standard library only, run by the ``command`` runtime.

For each line ``flood N BYTES MAX_TOKENS`` on its standard input it starts N workers at
once, each asking the Anthropic Messages API at ``ANTHROPIC_BASE_URL`` (streamed, a
message of BYTES bytes, ``max_tokens`` MAX_TOKENS) until it is answered (200) or refused
for good (400); a 429 is retried at once, ignoring ``retry-after``, as a hostile agent
would. Then it prints one line::

    flood done: 200=<answered> 400=<refused> other=<anything else>
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter

MODEL = "claude-sonnet-4-5"
ATTEMPTS = 400  # per worker: a cap that never binds ends the flood all the same


def _ask(url: str, key: str, size: int, max_tokens: int) -> int:
    body = {
        "model": MODEL,
        "max_tokens": max_tokens,
        "stream": True,
        "messages": [{"role": "user", "content": "x" * size}],
    }
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "anthropic-version": "2023-06-01",
            "x-api-key": key,
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=60.0) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def flood(workers: int, size: int, max_tokens: int) -> str:
    url = os.environ.get("ANTHROPIC_BASE_URL", "").rstrip("/") + "/v1/messages"
    key = os.environ.get("ANTHROPIC_API_KEY", "none")
    start = threading.Barrier(workers)
    results: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        start.wait()
        status = 0
        for _ in range(ATTEMPTS):
            status = _ask(url, key, size, max_tokens)
            if status != 429:
                break
            time.sleep(0.02)  # only so as not to spin: retry-after is ignored on purpose
        with lock:
            results[str(status) if status in (200, 400) else "other"] += 1

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return f"flood done: 200={results['200']} 400={results['400']} other={results['other']}"


def main() -> int:
    print("flood agent: ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if len(words) == 4 and words[0] == "flood" and all(w.isdigit() for w in words[1:]):
            print(flood(int(words[1]), int(words[2]), int(words[3])), flush=True)
        elif words == ["exit"]:
            return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
