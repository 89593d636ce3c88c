"""The forge door part of :mod:`bench.forge`: ``fw-forge read``'s call to the real
:class:`~fleet.forge.door.door.ForgeDoor` against a bare handler, then the real ``fw-forge``
process beside the bare interpreter."""

from __future__ import annotations

import asyncio
import json
import time
from asyncio.subprocess import DEVNULL, PIPE
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from aiohttp import ClientSession, web

import fleet.forge.door
from bench.forge_parties import FORGE, PARTIES, REPO, Summaries, compared, served
from bench.processes import BenchError
from fleet.connections.loopback import AgentSecrets
from fleet.forge.door.door import TOKEN_HEADER, DoorRefusal, DoorScope, ForgeDoor, render_issue
from fleet.forge.model import ForgeApi, ForgeIssue
from fleet.ledger import Ledger
from fleet.ledger.records.forge import Slug
from fleet.markdown.hidden import clean

AGENT = "coder-1"
ISSUE = 7
SCOPE = DoorScope(run_key=1, forge=FORGE, repo=REPO, issue=ISSUE, pull=None, branch="fw/issue-7")
FW_FORGE = Path(fleet.forge.door.__file__).resolve().parent / "bin" / "fw-forge"
PYTHON = "/usr/bin/python3"  # the system's, as an agent's sandbox has it
PROCESSES = {  # the command, then the interpreter with its imports, then without
    "fw-forge read 7": [str(FW_FORGE), "read", "7"],
    "python3 -I, the command's imports": [PYTHON, "-I", "-c", "import argparse, urllib.request"],
    "python3 -I -c pass": [PYTHON, "-I", "-c", "pass"],
}
CALL = json.dumps({"op": "read", "what": "issue", "number": ISSUE}).encode()


@dataclass
class DoorResult:
    """The door's round trips (ms) by party, the ratio, and the CLI's process runs (ms)."""

    latency: Summaries
    ratio: dict[str, float]
    answer_chars: int
    processes: dict[str, list[float]] = field(default_factory=dict)


BODY = """The build fails on `main` since the merge of the cache change (`3f2c1a9`), about one
run in three, and more often on CI than on laptops.

## Steps to reproduce

1. Check out `main`, empty the cache (`rm -rf .cache`) and run `make test` a few times.
2. `tests/test_cache.py::test_expiry` fails with the output below; the other tests pass.

```
FAILED tests/test_cache.py::test_expiry - AssertionError: assert 2 == 1
```

The expiry sweep runs on a timer, and the test reads the cache before the sweep had a chance
to run: on a slow runner the window is wider. The failures by runner over 30 runs each,
from [the CI runs](https://ci.example.com/acme/app/runs?branch=main&status=failed):

| runner | failures | runs |
|---|---:|---:|
| ubuntu-22.04 | 11 | 30 |
| macos-14 | 2 | 30 |

<!-- the reporter's notes: check the sweep interval in settings.py, and the clock it reads -->

- [ ] make the sweep callable from tests, drop the `time.sleep(0.2)` in `test_expiry`
- [ ] add a note to `CONTRIBUTING.md` on timers in tests, with `freezegun` or a fake clock
- [ ] check the other tests that sleep: `grep -rn "sleep(" tests/` finds eleven of them
"""

THE_ISSUE = ForgeIssue(
    number=ISSUE,
    title="test_expiry fails one run in three on main",
    body=BODY,
    author="alice",
    labels=("bug", "fw"),
    assignees=("fw-bot",),
    state="open",
    url=f"https://github.com/{REPO}/issues/{ISSUE}",
    updated_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
)


class Actions:
    """The door's desk: the one agent's scope; reads from itself (the in-memory ``ForgeApi``
    double: the one issue, for any number), the audit into the ledger; no write is made."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.reads = 0

    def api(self, forge: str) -> ForgeApi:
        return cast(ForgeApi, self)

    async def issue(self, repo: Slug, number: int) -> ForgeIssue:
        self.reads += 1
        return THE_ISSUE

    async def scope_of(self, agent: str) -> DoorScope | None:
        return SCOPE if agent == AGENT else None

    async def _write(self, *args: object) -> str:
        raise DoorRefusal("reads only here")

    comment = describe = open_pull = done = _write

    async def audit(
        self, scope: DoorScope | None, agent: str, op: str, allowed: bool, detail: str
    ) -> None:
        await self.ledger.forge.audit_forge(None, agent, op, allowed, detail)


async def read_call(session: ClientSession, url: str, token: str, text: str) -> float:
    """One ``fw-forge read`` call as the command posts it; its round trip (ms)."""
    headers = {"Content-Type": "application/json", TOKEN_HEADER: token}
    started = time.perf_counter()
    async with session.post(url, data=CALL, headers=headers) as response:
        answer = await response.json()
    took = (time.perf_counter() - started) * 1000
    if response.status != 200 or answer.get("text") != text:
        raise BenchError(f"{url} answered {response.status}, not the issue's text")
    return took


async def timed_run(argv: Sequence[str], env: dict[str, str]) -> tuple[float, bytes]:
    """Run ``argv`` to its end (killed if the run is cut short); its time (ms) and output."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdin=DEVNULL, stdout=PIPE, stderr=PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    took = (time.perf_counter() - started) * 1000
    if process.returncode != 0:
        raise BenchError(f"{argv[0]} exited {process.returncode}: {err.decode()[-200:]}")
    return took, out


async def door(root: Path, ledger: Ledger, calls: int, cli_runs: int) -> DoorResult:
    """The door against the floor, interleaved; then the CLI's runs."""
    secrets = AgentSecrets(root / "heartbeat.json", "heartbeat endpoint")
    token = secrets.issue(AGENT)
    actions = Actions(ledger)
    text = render_issue(THE_ISSUE, clean)

    async def floor_read(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True, "text": text})

    app, floor = web.Application(), web.Application()
    ForgeDoor(lambda: actions, clean=clean).mount(app, secrets)
    floor.router.add_post("/forge/{agent}", floor_read)
    samples: dict[str, list[float]] = {p: [] for p in PARTIES}
    async with served(app, floor) as (bases, clients):
        urls = {p: f"{bases[p]}/forge/{AGENT}" for p in PARTIES}
        for n in range(20 + calls):  # 20 warm-up calls each first
            order = PARTIES if n % 2 == 0 else PARTIES[::-1]
            for party in order:
                took = await read_call(clients[party], urls[party], token, text)
                if n >= 20:
                    samples[party].append(took)
        env = {
            "PATH": "/usr/bin:/bin",
            "FLEETWARDEN_HEARTBEAT_URL": f"{bases['fleetwarden']}/heartbeat/{AGENT}",
            "FLEETWARDEN_HEARTBEAT_TOKEN": token,
        }
        processes: dict[str, list[float]] = {name: [] for name in PROCESSES}
        for _ in range(cli_runs):
            for name, argv in PROCESSES.items():
                took, out = await timed_run(argv, env)
                if argv[0] == str(FW_FORGE) and THE_ISSUE.title not in out.decode():
                    raise BenchError("fw-forge read did not print the issue")
                processes[name].append(took)
    if actions.reads != 20 + calls + cli_runs:
        raise BenchError(f"{actions.reads} reads of the forge, not {20 + calls + cli_runs}")
    return DoorResult(*compared(samples), len(text), processes)
