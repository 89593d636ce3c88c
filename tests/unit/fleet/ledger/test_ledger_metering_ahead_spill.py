"""The metering journal written ahead of the ledger while the ledger refuses batches for
long: the rows the recorder stops holding in memory (past ``MAX_PENDING``) are still in the
journal's segments, so no batch may claim those segments for rows it does not carry — the
next start writes them, once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fleet.ledger import Ledger
from fleet.metering.counting import recorder as recording
from tests.unit.fleet.ledger.test_ledger_metering_ahead import (
    DownFirst,
    replay,
    segments,
    usage,
    written_ahead,
)


async def test_rows_held_past_the_cap_while_the_ledger_refuses_are_not_lost(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight answers journaled while the ledger refuses every batch, with room for four in
    memory: once the ledger takes batches again, and the next start replays what is left,
    every answer is in the ledger once."""
    monkeypatch.setattr(recording, "MAX_PENDING", 4)
    real_sleep = asyncio.sleep

    async def no_wait(delay: float, result: object = None) -> object:
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    down = DownFirst(ledger, failures=1_000)
    recorder = written_ahead(tmp_path, ledger, down)
    for n in range(1, 9):  # not started: each commit tries a batch, refused
        await recorder.commit(usage(n))
    assert down.calls >= 5
    down.failures = 0  # the ledger is back
    recorder.start()
    await recorder.flush()  # what the recorder holds goes in
    await recorder.stop()
    await replay(tmp_path, ledger).replay()
    written = await ledger.metering.usage_events()
    assert sorted(e.request_id or "" for e in written) == [f"req_{n}" for n in range(1, 9)]
    assert segments(tmp_path) == []
