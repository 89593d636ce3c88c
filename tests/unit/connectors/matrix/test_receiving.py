"""The record of events received and not handled: each logged with its event id and
counted, a run of them a problem until an event is handled again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nio
import pytest

from connectors.inbox import cancel_and_wait
from connectors.matrix.encryption.e2ee import Encryption
from connectors.receiving import KEEPS_FAILING, ReceiveFailures
from fleet.timing.clock import ManualClock
from tests.unit.chat_fakes import T0


def test_each_failure_is_logged_with_its_event_id_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The log line names the connector and the event; the counter hears each one."""
    told: list[str] = []
    failures = ReceiveFailures(on_failure=told.append)
    with caplog.at_level(logging.ERROR, logger="connectors.receiving"):
        failures.failed("matrix", "$ev1", KeyError("body"))
    [record] = caplog.records
    assert "matrix" in record.getMessage() and "$ev1" in record.getMessage()
    assert record.exc_info is not None
    assert told == ["matrix"] and failures.total("matrix") == 1


def test_failures_in_a_row_are_a_problem_until_one_is_handled() -> None:
    """Below the line nothing shows; at it, one line per connector naming the last event;
    a handled event ends the run while the total stays."""
    failures = ReceiveFailures()
    for n in range(KEEPS_FAILING - 1):
        failures.failed("matrix", f"$ev{n}", RuntimeError("locked"))
    failures.handled("matrix")
    failures.failed("matrix", "$again", RuntimeError("locked"))
    assert failures.problems() == []
    for n in range(KEEPS_FAILING - 1):
        failures.failed("matrix", f"$late{n}", RuntimeError("database is locked\nmore"))
    [line] = failures.problems()
    assert line.startswith(f"matrix: the last {KEEPS_FAILING} events received were not handled")
    assert f"$late{KEEPS_FAILING - 2}: RuntimeError: database is locked)" in line
    assert failures.failing()[0].in_a_row == KEEPS_FAILING
    failures.handled("matrix")
    assert failures.problems() == []
    assert failures.total("matrix") == 2 * KEEPS_FAILING - 1


def test_a_long_error_is_cut_and_stays_one_line() -> None:
    """The problem line holds the error's type and the start of its first line only."""
    failures = ReceiveFailures(keeps_failing=1)
    failures.failed("discord", None, ValueError("x" * 1000 + "\nsecond line"))
    [line] = failures.problems()
    assert "\n" not in line and "second line" not in line and len(line) < 400
    assert "an event without an id" in line


class _Client:
    """Enough of nio's client for messages waiting for their key."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.rooms: dict[str, Any] = {}

    def decrypt_event(self, event: Any) -> Any:
        raise self.error


class _Event:
    event_id = "$enc"
    sender = "@ann:example.org"
    session_id = "s1"
    server_timestamp = 0


def _encryption(error: Exception) -> Encryption:
    return Encryption(
        _Client(error),  # what the waiting messages use of nio's client
        trust=None,  # type: ignore[arg-type]  # not used by the waiting messages
        clock=ManualClock(T0),
        key_wait_seconds=60,
        served=list,
    )


def test_a_message_waiting_for_its_key_keeps_waiting_while_the_key_is_missing() -> None:
    """nio's EncryptionError means the key has not come: nothing is reported."""
    encryption = _encryption(nio.EncryptionError("no session"))
    reported: list[tuple[str, Exception]] = []
    encryption.on_failure = lambda event_id, exc: reported.append((event_id, exc))
    encryption.unreadable("!room", _Event())
    assert encryption.now_readable() == [] and reported == []


def test_a_message_that_fails_otherwise_is_reported_with_its_id_and_not_retried() -> None:
    """Any other error is the event's failure: reported once with its id and told in the
    room, then no longer waited for."""
    encryption = _encryption(ValueError("bad payload"))
    reported: list[tuple[str, Exception]] = []
    encryption.on_failure = lambda event_id, exc: reported.append((event_id, exc))
    encryption.unreadable("!room", _Event())
    assert encryption.now_readable() == []
    assert encryption.now_readable() == []
    assert [(event_id, type(exc)) for event_id, exc in reported] == [("$enc", ValueError)]
    [told] = encryption.said()  # the room hears whose message could not be read
    assert told.room == "!room" and "@ann:example.org" in told.markdown


async def test_a_receive_task_that_fails_as_it_is_stopped_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """cancel_and_wait says when the task it stops ended with an error, naming the task."""

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise RuntimeError("the sync loop broke on its way out")

    task = asyncio.create_task(loop(), name="matrix-sync")
    await asyncio.sleep(0)  # let it start waiting
    with caplog.at_level(logging.WARNING, logger="connectors.inbox"):
        await cancel_and_wait(task)
    [record] = [r for r in caplog.records if r.name == "connectors.inbox"]
    assert "matrix-sync ended with an error" in record.getMessage()
    assert record.exc_info is not None and "broke on its way out" in str(record.exc_info[1])
