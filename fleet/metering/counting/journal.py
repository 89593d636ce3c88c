"""Usage the ledger would not take at shutdown, kept in a file until the next start writes
it, once.

When the recorder's last attempts to write at shutdown fail, what it still holds goes to a
new file in ``<state_dir>/metering-journal/`` (the directory 0700, the file 0600, written
whole or not at all by :func:`~fleet.private_files.write_private`): one JSON object a line,
a usage row or a quota signal with exactly the fields the ledger keeps of it, nothing more.

At the next start, before the proxy takes a request, :meth:`UsageJournal.replay` offers each
file's rows to the ledger under the file's name
(:meth:`~fleet.ledger.stores.spend.metering.MeteringStore.record_metering_once`: the rows and the
name
go in one transaction, and a name already claimed writes nothing), then removes the file. A
crash between the ledger's commit and the removal leaves a file whose rows are already in:
offered again, they are not written twice. A line that cannot be read is logged and kept
aside, in ``<name>.rejected`` beside the file; every other line goes in. A file the ledger
does not take stays for the start after.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from fleet.metering.counting.events import Outcome, QuotaSignal, Tokens, UsageEvent
from fleet.private_files import private_dir, write_private
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

DIRECTORY: Final = "metering-journal"
SUFFIX: Final = ".jsonl"
REJECTED: Final = ".rejected"

T = TypeVar("T")
OnceSink = Callable[[str, Sequence[UsageEvent], Sequence[QuotaSignal]], Awaitable[bool]]
"""Writes a batch under a key unless that key was written before; whether it wrote it."""

_TOKENS: Final = ("input", "output", "cache_read", "cache_write", "reasoning")
_TEXTS: Final = ("agent", "provider", "api", "reason")
_MAYBE_TEXTS: Final = ("requested_model", "served_model", "request_id", "rewritten_from")
_SIGNAL_TEXTS: Final = ("agent", "provider", "family", "name", "value")


class UsageJournal:
    """The journal files in ``directory``; ``write_once`` is the ledger's
    ``record_metering_once``."""

    def __init__(self, directory: Path, write_once: OnceSink, clock: Clock) -> None:
        self._dir = directory
        self._write_once = write_once
        self._clock = clock

    def keep(self, usage: Sequence[UsageEvent], signals: Sequence[QuotaSignal]) -> Path:
        """Write ``usage`` and ``signals`` to a new journal file; its path. Raises
        ``OSError``."""
        lines = [json.dumps(_usage_line(event)) for event in usage]
        lines += [json.dumps(_signal_line(signal)) for signal in signals]
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S")
        path = private_dir(self._dir) / f"usage-{stamp}-{uuid.uuid4().hex}{SUFFIX}"
        write_private(path, "".join(line + "\n" for line in lines))
        return path

    async def replay(self) -> int:
        """Write every journal file's rows to the ledger, oldest first, and remove the
        files; how many usage rows were written."""
        if not self._dir.is_dir():
            return 0
        written = 0
        for path in sorted(self._dir.glob(f"usage-*{SUFFIX}")):
            try:
                usage, signals, rejected = _read(path)
            except OSError as exc:
                log.error("could not read the metering journal %s: %s", path, exc)
                continue
            if rejected:
                aside = path.with_suffix(REJECTED)
                try:
                    write_private(aside, "".join(line + "\n" for line in rejected))
                except OSError as exc:
                    log.error("could not keep aside the bad lines of %s: %s", path, exc)
                    continue  # the file stays whole for the next start
                log.error(
                    "%d lines of the metering journal %s could not be read; kept aside in %s",
                    len(rejected),
                    path.name,
                    aside.name,
                )
            try:
                fresh = await self._write_once(path.stem, usage, signals)
            except Exception:
                log.exception("could not write the metering journal %s; kept", path.name)
                continue
            path.unlink(missing_ok=True)
            if fresh:
                written += len(usage)
                log.warning(
                    "wrote %d metered requests and %d quota signals kept at the last shutdown",
                    len(usage),
                    len(signals),
                )
            else:
                log.warning("the metering journal %s was already in the ledger", path.name)
        return written


def _read(path: Path) -> tuple[list[UsageEvent], list[QuotaSignal], list[str]]:
    """The rows of a journal file, and its lines that are none. Raises ``OSError``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = file.read()
    usage: list[UsageEvent] = []
    signals: list[QuotaSignal] = []
    rejected: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            row = _row(json.loads(raw))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            log.error("metering journal %s line %d: %s", path.name, number, exc)
            rejected.append(raw.decode("utf-8", "backslashreplace"))
            continue
        if isinstance(row, UsageEvent):
            usage.append(row)
        else:
            signals.append(row)
    return usage, signals, rejected


# -- lines ------------------------------------------------------------------------------


def _usage_line(event: UsageEvent) -> dict[str, Any]:
    tokens = event.tokens
    return {
        "kind": "usage",
        "at": event.at.isoformat(),
        **{key: getattr(event, key) for key in (*_TEXTS, *_MAYBE_TEXTS)},
        "tokens": {key: getattr(tokens, key) for key in _TOKENS},
        "stream": event.stream,
        "status": event.status,
        "outcome": event.outcome.value,
        "latency_ms": event.latency_ms,
        "ttfb_ms": event.ttfb_ms,
        "partial": event.partial,
        "cost_usd": event.cost_usd,
        "priced": event.priced,
        "account": event.account,
    }


def _signal_line(signal: QuotaSignal) -> dict[str, Any]:
    return {
        "kind": "signal",
        "at": signal.at.isoformat(),
        **{key: getattr(signal, key) for key in (*_SIGNAL_TEXTS, "window", "metric")},
    }


def _row(line: object) -> UsageEvent | QuotaSignal:
    """A line's row. Raises ``ValueError``, ``TypeError`` or ``KeyError``."""
    if not isinstance(line, dict):
        raise TypeError("not a JSON object")
    kind = line["kind"]
    if kind == "signal":
        return QuotaSignal(
            at=_time(line["at"]),
            **{key: _of(line[key], str) for key in _SIGNAL_TEXTS},
            window=_maybe(line["window"], str),
            metric=_maybe(line["metric"], str),
        )
    if kind != "usage":
        raise ValueError(f"no row kind {kind!r}")
    tokens = _of(line["tokens"], dict)
    return UsageEvent(
        at=_time(line["at"]),
        agent=_of(line["agent"], str),
        provider=_of(line["provider"], str),
        api=_of(line["api"], str),
        reason=_of(line["reason"], str),
        requested_model=_maybe(line["requested_model"], str),
        served_model=_maybe(line["served_model"], str),
        request_id=_maybe(line["request_id"], str),
        rewritten_from=_maybe(line["rewritten_from"], str),
        tokens=Tokens(**{key: _count(tokens[key]) for key in _TOKENS}),
        stream=_of(line["stream"], bool),
        status=_count(line["status"]),
        outcome=Outcome(line["outcome"]),
        latency_ms=_number(line["latency_ms"]),
        ttfb_ms=None if line["ttfb_ms"] is None else _number(line["ttfb_ms"]),
        partial=_of(line["partial"], bool),
        cost_usd=None if line["cost_usd"] is None else _number(line["cost_usd"]),
        priced=_of(line["priced"], bool),
        account=_maybe(line["account"], str),
    )


def _of(value: object, kind: type[T]) -> T:
    if not isinstance(value, kind):
        raise TypeError(f"{value!r} is not a {kind.__name__}")
    return value


def _maybe(value: object, kind: type[T]) -> T | None:
    return None if value is None else _of(value, kind)


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{value!r} is no count")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is no number")
    return float(value)


def _time(value: object) -> datetime:
    at = datetime.fromisoformat(_of(value, str))
    if at.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return at
