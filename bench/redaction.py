"""Redaction speed: what the one redactor costs on a chat-sized message and on a log tail.
In process, no real components, no network.

Run from the repository root::

    python -m bench.redaction [--agents 50] [--rounds 200] [--json out.json]

**Text.** Agent-like output made up line by line (seeded): git log lines with SHAs, a CLI's
JSON stream lines with UUIDs, Python code naming passwords and tokens, ``env`` lines,
test output, ``ls -l`` lines, a lock file's integrity hashes. A quarter of the lines name a
password, token or secret, far more than real output: the keyword plugin's worst case.
Three secrets the redactor knows are planted in it, and one credential-shaped value (a
GitHub token).

**Secrets known.** ``--agents`` agents, each with a heartbeat token and a metering key
(``secrets.token_urlsafe(24)``, as Fleetwarden makes them), and five environment secrets:
``2 × agents + 5`` values.

**Measured.** ``Redactor.redact`` (its sources asked, the matcher reused) on a 4,000-
character message (Discord's limit is 2,000, a Matrix message is a few kB), on 16 KiB (the
size from which the chat wrapper redacts in a worker thread) and on 1 MB (a large log
tail). Then the parts on 1 MB: the known values alone, the shapes alone. And the cost of a
new token appearing (the matcher rebuilt). Each size: ``--rounds`` rounds (1 MB: a tenth),
p50/p95/max in milliseconds. Checks that every planted secret is gone.

**False positives.** ``--finds FILE…`` instead redacts each file (ordinary output holding no
real secret: ``git log -p`` of a repository, a library's source, a CLI's stream) with
nothing known, and counts what was taken out, by label: on such text every find is a false
positive. Its characters are taken as they are; a file is read as UTF-8 with replacement.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.harness import percentile
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor
from fleet.redaction.shapes import Shapes
from fleet.redaction.values import KnownValues


class Held:
    def __init__(self, values: Iterable[Secret]) -> None:
        self.values = list(values)

    def known_secrets(self) -> list[Secret]:
        return self.values


def agent_output(rng: random.Random, size: int) -> str:
    """``size`` characters of made-up, ordinary agent output."""

    def sha() -> str:
        return hashlib.sha1(rng.randbytes(8)).hexdigest()

    makers: list[Callable[[], str]] = [
        lambda: f"commit {sha()}",
        lambda: f"index {sha()[:12]}..{sha()[:12]} 100644",
        lambda: json.dumps(
            {
                "type": "assistant",
                "session_id": str(uuid.UUID(bytes=rng.randbytes(16))),
                "usage": {"input_tokens": rng.randint(1, 9999), "output_tokens": 12},
            }
        ),
        lambda: "    def login(self, user: str, password: str) -> Token:",
        lambda: '    token = request.headers["Authorization"]',
        lambda: f"    secret_ref = vault.get('{sha()[:8]}')",
        lambda: f"PWD=/home/dev/project-{rng.randint(1, 99)}",
        lambda: f"tests/unit/test_{rng.randint(1, 500)}.py::test_case PASSED",
        lambda: f"-rw-r--r-- 1 dev dev {rng.randint(1, 99999)} Mar  1 12:00 src/mod_{sha()[:6]}.py",
        lambda: f'  "integrity": "sha512-{hashlib.sha512(rng.randbytes(8)).hexdigest()[:86]}=="',
        lambda: f"Reading {sha()}.json … done in {rng.random():.2f}s",
    ]
    lines: list[str] = []
    total = 0
    while total < size:
        line = rng.choice(makers)()
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:size]


def planted(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` put in at evenly spaced line starts."""
    lines = text.split("\n")
    step = max(1, len(lines) // (len(values) + 1))
    for n, value in enumerate(values, 1):
        lines.insert(n * step, f"found {value} here")
    return "\n".join(lines)


def timed(work: Callable[[], object], rounds: int) -> dict[str, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "p50": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "max": max(samples),
    }


_LABEL = re.compile(r"\[redacted(?:: ([^\]]*))?\]")


def finds(paths: list[Path]) -> None:
    """What the redactor takes out of each of ``paths`` with no secret known, by label."""
    redactor = Redactor()
    for path in paths:
        text = path.read_bytes().decode("utf-8", errors="replace")
        start = time.perf_counter()
        out = redactor.redact(text)
        took = time.perf_counter() - start
        labels = Counter(_LABEL.findall(out))
        labels.subtract(Counter(_LABEL.findall(text)))  # labels the file already held
        labels = +labels
        size = len(text) / 1e6
        print(f"{path}: {size:.2f} M characters, {sum(labels.values())} finds, {took:.2f} s")
        for what, n in labels.most_common():
            print(f"  {n:6}  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.redaction", description=__doc__)
    parser.add_argument("--finds", type=Path, nargs="+", help="count finds in these files")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.finds:
        finds(args.finds)
        return
    rng = random.Random(args.seed)

    known = [Secret(secrets.token_urlsafe(24), "heartbeat token") for _ in range(args.agents)]
    known += [Secret(secrets.token_urlsafe(24), "metering key") for _ in range(args.agents)]
    known += [Secret(f"env-secret-{n}-" + secrets.token_hex(12), f"VAR_{n}") for n in range(5)]
    source = Held(known)
    redactor = Redactor([source])
    github = "gh" + "p_" + "".join(rng.choice("abcdefghijKLMNOP0123456789") for _ in range(36))
    plants = [known[0].value, known[args.agents].value, known[-1].value, github]

    results: dict[str, dict[str, float]] = {}
    for name, size, rounds in (
        ("message 4,000 chars", 4_000, args.rounds),
        ("16 KiB", 16 * 1024, args.rounds // 2),
        ("log tail 1 MB", 1_000_000, max(5, args.rounds // 10)),
    ):
        text = planted(agent_output(rng, size), plants)
        out = redactor.redact(text)
        leaked = [p for p in plants if p in out]
        if leaked:
            raise SystemExit(f"{name}: not redacted: {len(leaked)} planted value(s)")
        results[name] = timed(lambda text=text: redactor.redact(text), rounds)  # type: ignore[misc]

    big = planted(agent_output(rng, 1_000_000), plants)
    matcher, shapes = KnownValues(known), Shapes()
    results["1 MB, known values only"] = timed(lambda: matcher.spans(big), 10)
    results["1 MB, shapes only"] = timed(lambda: shapes.spans(big), 10)

    def new_token() -> None:
        source.values = [*known, Secret(secrets.token_urlsafe(24), "heartbeat token")]
        redactor.redact("x")

    results["a new token (matcher rebuilt)"] = timed(new_token, 50)

    print(f"{len(known)} secrets known ({args.agents} agents), ms:")
    print(f"{'':32} {'p50':>9} {'p95':>9} {'max':>9}")
    for name, row in results.items():
        print(f"{name:32} {row['p50']:9.2f} {row['p95']:9.2f} {row['max']:9.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps({"agents": args.agents, "ms": results}, indent=2))


if __name__ == "__main__":
    main()
