"""Benchmark: the approval round trip on Synapse through Fleetwarden, against bare
matrix-nio clients doing the same two legs on the same homeserver, side by side.

One run starts its own Synapse (tests/synapse_server.py) and registers the bot, an
operator and two bare clients. The operator is an end-to-end encrypted matrix-nio client
(its own device and crypto store, key upkeep after each sync, as Element does), always in
a long-poll ``/sync`` (``--sync-timeout``). Three rooms, each the operator and one party:

- ``fleetwarden``, an encrypted room. With ``--through app`` (the default): Fleetwarden's
  whole app in this process (:mod:`bench.approval_app`: the real ``App`` with its Matrix
  connector, router, approvals service and feed; one stub agent ``c1`` spawned by the
  operator from chat). With ``--through connector``: the Matrix connector alone
  (``MatrixConnector``, with a ledger for its sync token), no app, no approvals service.
  Either way password login, its own device, trust on first use, its sync long-polling
  with the same timeout.
- ``bare-e2ee``, an encrypted room with a bare encrypted matrix-nio client: the same path
  without Fleetwarden, the floor the goal is measured against.
- ``bare-plain``, an unencrypted room with a bare matrix-nio client without encryption:
  the send-to-sync echo with no encryption at all, for scale.

Each round, per party, strictly one at a time and interleaved fleetwarden, bare-e2ee,
bare-plain, with ``--pause-ms`` of quiet before each leg:

- **request**: t0 = just before the request is made — app: ``Approvals.open`` of a Bash
  ask for ``c1``'s run, as a CLI driver calls it (the ledger write, then the feed renders
  the request and posts it into c1's thread as an alert); connector: ``connector.send`` of
  a request-like markdown notice; a bare client: ``room_send`` of the same text, encrypted
  where the room is. t1 = when the operator's long-poll returns that message readable
  (decrypted).
- **answer**: t0 = just before the operator sends a ✅ reaction (an ``m.reaction``
  annotation) on that message, encrypted as Element sends it. t1 = app: when the approvals
  service delivers the answer to the CLI's channel (the reaction synced, decrypted,
  trusted, claimed, routed, bound to the request and its operator, recorded); connector:
  when ``connector.inbound()`` yields the reaction; a bare client: when its long-poll
  returns it readable. (The app then edits the request's message; that is not timed.)

Reported: p50/p95/p99/mean/min/max per party and leg, and the ratios fleetwarden /
bare-e2ee (the goal: ≤ 1.2 at p50 and p95, both legs, each said met or missed) and
fleetwarden / bare-plain. Everything runs in one process and event loop, so the parties
share its CPU alike. ``--marks`` adds where each leg's time goes (:mod:`bench.approval_marks`).

    python -m bench.approval_roundtrip [--through app|connector] [--rounds 100] [--marks]
        [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import platform
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench import approval_app
from bench.approval_marks import Marks, installed
from bench.harness import COLUMNS, execute, summary
from bench.matrix_watch import Arrivals, Watcher, annotation, send
from bench.processes import BenchError
from connectors.base import OutboundMessage, RoomId
from connectors.matrix.config import MatrixConfig
from connectors.matrix.connector import MatrixConnector
from fleet.ledger.store import Ledger
from fleet.timing.clock import SystemClock
from tests.matrix_e2ee_user import EncryptedUser
from tests.matrix_user import MatrixUser
from tests.synapse_server import SynapseServer

PASSWORD = "correct horse battery staple"
PARTIES = ("fleetwarden", "bare-e2ee", "bare-plain")
LEGS = ("request", "answer")
RECEIVERS = {"fleetwarden": "fleetwarden", "bare-e2ee": "e2ee", "bare-plain": "plain"}
"""Who receives each party's answer leg (the user whose long-poll returns the reaction)."""
GOAL = 1.2
"""Fleetwarden's round trip at most this many times the bare encrypted client's, at p50 and
p95, on both legs."""
START_TIMEOUT = 60.0
REQUEST = (
    "**Approval `a1b2`** — agent **c1** asks to run a command:\n\n"
    "```\nrm -rf build\n```\n\nReact ✅ allow once, ❌ deny, 🔁 always."
)


@dataclass
class Result:
    rounds: int
    warmup: int
    pause_ms: float
    sync_timeout_s: float
    started: str
    machine: dict[str, Any]
    measured: str = "connector"
    latency: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    ratio: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # --marks: where the time goes


class Party(Protocol):
    """One side of the operator's rounds: it posts a request; it gets the answer."""

    room: str

    async def request(self, index: int) -> tuple[float, float, str]:
        """Post round ``index``'s request: t0, t1 (the operator has it) and its event id."""
        ...

    async def answered(self, message: str, reaction: str) -> float:
        """When the answer (``reaction`` on ``message``) reached this side."""
        ...


@dataclass(frozen=True)
class ChatParty:
    """A party that posts with ``post`` and reads answers as they arrive in ``answers``."""

    room: str
    post: Callable[[str], Awaitable[str]]  # markdown -> the event id of the message
    answers: Arrivals
    operator: Watcher
    within: float

    async def request(self, index: int) -> tuple[float, float, str]:
        t0 = time.perf_counter()
        message = await self.post(REQUEST)
        return t0, await self.operator.seen(message, self.within, "request"), message

    async def answered(self, message: str, reaction: str) -> float:
        return await self.answers.seen(reaction, self.within, "answer")


def analyse(result: Result, samples: list[dict[str, Any]]) -> None:
    for party in PARTIES:
        result.latency[party] = {
            leg: summary([s["ms"] for s in samples if s["party"] == party and s["leg"] == leg])
            for leg in LEGS
        }
    fw = result.latency["fleetwarden"]
    for floor in PARTIES[1:]:
        result.ratio[floor] = {
            leg: {k: fw[leg][k] / result.latency[floor][leg][k] for k in ("p50", "p95", "mean")}
            for leg in LEGS
        }
    result.samples = samples


def report(result: Result) -> str:
    lines = [
        f"Approval round trip on Synapse ({result.measured} path): {result.rounds} rounds per "
        f"party, interleaved, after {result.warmup} warm-up rounds (sync timeout "
        f"{result.sync_timeout_s:g} s, {result.pause_ms:g} ms pause per leg)",
    ]
    what = {
        "request": "request: asked -> the operator's client has the message readable",
        "answer": "answer: the operator's reaction -> the bot has it "
        + ("(delivered to the CLI's channel)" if result.measured == "app" else "(yielded)"),
    }
    for leg in LEGS:
        lines += ["", what[leg], f"{'ms':<14}" + "".join(f"{k:>8}" for k in COLUMNS)]
        for party in PARTIES:
            row = result.latency[party][leg]
            lines.append(f"{party:<14}" + "".join(f"{row[k]:>8.1f}" for k in COLUMNS))
        for floor in PARTIES[1:]:
            r = result.ratio[floor][leg]
            lines.append(
                f"{'fw / ' + floor:<14}{r['p50']:>8.2f}{r['p95']:>8.2f}"
                f"   (p50, p95; mean {r['mean']:.2f})"
            )
    lines += ["", f"goal: fleetwarden / bare-e2ee <= {GOAL:g} at p50 and p95, both legs"]
    verdicts = []
    for leg in LEGS:
        for stat in ("p50", "p95"):
            ratio = result.ratio["bare-e2ee"][leg][stat]
            verdicts.append(f"{leg} {stat} {ratio:.2f}x {'met' if ratio <= GOAL else 'MISSED'}")
    met = all(result.ratio["bare-e2ee"][leg][s] <= GOAL for leg in LEGS for s in ("p50", "p95"))
    lines.append("  " + " · ".join(verdicts) + f" — {'met' if met else 'missed'}")
    return "\n".join(lines + result.where)


async def run(args: argparse.Namespace, root: Path) -> Result:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    synapse = SynapseServer(root / "synapse")
    users: list[MatrixUser] = []
    watchers: list[Watcher] = []
    stack = contextlib.AsyncExitStack()
    timeout_ms = int(args.sync_timeout * 1000)
    marks = Marks(receivers=RECEIVERS) if args.marks else None
    try:
        synapse.start()
        bot = await synapse.register_async("fleetwarden", PASSWORD)
        if marks is not None:
            stack.enter_context(installed(marks, bot.user_id))
        made = {
            name: await synapse.register_async(name, PASSWORD)
            for name in ("operator", "e2ee", "plain")
        }
        op = EncryptedUser(synapse.base_url, *_login(made["operator"]), root / "operator")
        e2ee = EncryptedUser(synapse.base_url, *_login(made["e2ee"]), root / "e2ee")
        plain = MatrixUser(synapse.base_url, *_login(made["plain"]))
        users += [op, e2ee, plain]
        for user in users:
            await user.sync_once(0)  # device keys uploaded; history not looked at
        fw_room = await op.create_room(invite=(bot.user_id,), encrypted=True)
        e2ee_room = await op.create_room(invite=(e2ee.user_id,), encrypted=True)
        plain_room = await op.create_room(invite=(plain.user_id,), encrypted=False)
        await e2ee.join(e2ee_room)
        await plain.join(plain_room)
        for user in users:
            await user.sync_once(0)
            watchers.append(Watcher(user.client, user.client.next_batch, timeout_ms))
        for watcher in watchers:
            watcher.start()
        op_watch, e2ee_watch, plain_watch = watchers

        subject: Party
        if args.through == "app":
            subject = await stack.enter_async_context(
                approval_app.party(root, synapse.base_url, bot, op, op_watch, fw_room, args)
            )
        else:
            subject = await stack.enter_async_context(
                connector_party(root, synapse.base_url, bot, op.user_id, op_watch, fw_room, args)
            )

        def bare(name: str, user: MatrixUser, room: str) -> Callable[[str], Awaitable[str]]:
            async def post(markdown: str) -> str:
                content = {"msgtype": "m.notice", "body": markdown}
                start = time.perf_counter()
                sent = await send(user.client, room, "m.room.message", content)
                if marks is not None:
                    marks.put(name, start, time.perf_counter())
                return sent

            return post

        within = args.round_timeout
        parties: dict[str, Party] = {
            "fleetwarden": subject,
            "bare-e2ee": ChatParty(
                e2ee_room, bare("bare-e2ee", e2ee, e2ee_room), e2ee_watch, op_watch, within
            ),
            "bare-plain": ChatParty(
                plain_room, bare("bare-plain", plain, plain_room), plain_watch, op_watch, within
            ),
        }

        async def one(name: str, index: int) -> list[dict[str, Any]]:
            party = parties[name]
            await asyncio.sleep(args.pause_ms / 1000)
            t0, t1, message = await party.request(index)
            await asyncio.sleep(args.pause_ms / 1000)
            t2 = time.perf_counter()
            reaction = await send(op.client, party.room, "m.reaction", annotation(message, "✅"))
            if marks is not None:
                marks.put("operator", t2, time.perf_counter())
            t3 = await party.answered(message, reaction)
            if marks is not None and index >= 0:
                marks.leg(name, "request", t0, t1)
                marks.leg(name, "answer", t2, t3)
            return [
                {"party": name, "leg": "request", "round": index, "ms": (t1 - t0) * 1000},
                {"party": name, "leg": "answer", "round": index, "ms": (t3 - t2) * 1000},
            ]

        for index in range(args.warmup):
            for name in PARTIES:
                await one(name, -1 - index)
        samples: list[dict[str, Any]] = []
        for index in range(args.rounds):
            for name in PARTIES:
                samples += await one(name, index)
            if args.progress and (index + 1) % 25 == 0:
                print(f"  {index + 1}/{args.rounds} rounds", file=sys.stderr, flush=True)
        result = Result(
            rounds=args.rounds,
            warmup=args.warmup,
            pause_ms=args.pause_ms,
            sync_timeout_s=args.sync_timeout,
            started=started,
            measured=args.through,
            machine={
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
        )
        analyse(result, samples)
        if marks is not None:
            result.where = marks.report(PARTIES)
        return result
    finally:
        await stack.aclose()
        for watcher in watchers:
            await watcher.stop()
        for user in users:
            await user.close()
        synapse.stop()


@contextlib.asynccontextmanager
async def connector_party(
    root: Path,
    homeserver: str,
    bot: Any,
    operator: str,
    op_watch: Watcher,
    room: str,
    args: argparse.Namespace,
) -> AsyncIterator[Party]:
    """The bot's Matrix connector in this process, serving ``room``, the operator's role
    ``operator``; its requests are plain ``send``s, its answers what ``inbound()`` yields."""
    ledger = await Ledger.open(root / "ledger.db", SystemClock())
    connector = MatrixConnector(
        MatrixConfig(
            homeserver=homeserver,
            user_id=bot.user_id,
            password_env="FW_BOT_PASSWORD",
            rooms=(room,),
            sync_timeout_seconds=args.sync_timeout,
        ),
        state=ledger.chat,
        clock=SystemClock(),
        environ={"FW_BOT_PASSWORD": PASSWORD},
        state_dir=root / "state",
        role_of=lambda user: "operator" if user == operator else None,
    )
    collector: asyncio.Task[None] | None = None
    try:
        await connector.start()
        inbound = Arrivals()
        collector = asyncio.create_task(_collect(connector, inbound), name="bot-inbound")
        await op_watch.until_joined(room, bot.user_id, START_TIMEOUT)

        async def post(markdown: str) -> str:
            sent = await connector.send(OutboundMessage(RoomId(room), markdown))
            return str(sent.event_ids[0])

        yield ChatParty(room, post, inbound, op_watch, args.round_timeout)
    finally:
        await connector.stop()
        if collector is not None:
            await asyncio.gather(collector, return_exceptions=True)
        await ledger.close()


def _login(registered: Any) -> tuple[str, str, str]:
    return registered.user_id, registered.device_id, registered.access_token


async def _collect(connector: MatrixConnector, inbound: Arrivals) -> None:
    """Note when the connector yields each message; fail the waits if its stream ends."""
    async for message in connector.inbound():
        if message.event_id is not None:
            inbound.arrived(message.event_id, time.perf_counter())
    inbound.fail(BenchError("the connector's inbound stream ended"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.approval_roundtrip", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--through",
        choices=("app", "connector"),
        default="app",
        help="the whole app and its approvals service, or the Matrix connector alone",
    )
    parser.add_argument("--rounds", type=int, default=100, help="measured rounds per party")
    parser.add_argument("--warmup", type=int, default=5, help="uncounted rounds per party first")
    parser.add_argument("--pause-ms", type=float, default=100.0, help="quiet before each leg")
    parser.add_argument("--sync-timeout", type=float, default=30.0, help="every long-poll, s")
    parser.add_argument("--round-timeout", type=float, default=30.0, help="max wait per leg, s")
    parser.add_argument(
        "--marks", action="store_true", help="also show where each leg's time goes (medians)"
    )
    parser.add_argument("--json", type=Path, help="also write the results (and samples) here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--progress", action="store_true", help="print progress on stderr")
    args = parser.parse_args(argv)
    # nio warns on stderr each time it opens an Olm session; that is expected here.
    logging.getLogger("nio").setLevel(logging.ERROR)
    if args.rounds < 1 or args.warmup < 0:
        parser.error("--rounds must be at least 1 and --warmup not negative")
    return execute(
        lambda root: run(args, root),
        report,
        keep=args.keep,
        json_path=args.json,
        prefix="fw-bench-approval-",
    )


if __name__ == "__main__":
    sys.exit(main())
