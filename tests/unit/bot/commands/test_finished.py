"""`finished`: a ledger write the stop cancels is carried to its end, however often its caller
is cancelled meanwhile, and the cancel is raised after it (winning over the write's error)."""

from __future__ import annotations

import asyncio

import pytest

from bot.commands.routing.execution import finished


async def _cancel_twice_while(written: list[str], *, fails: bool) -> asyncio.Task[str]:
    go_on = asyncio.Event()

    async def write() -> str:
        await go_on.wait()
        if fails:
            raise OSError("the ledger is locked")
        written.append("done")
        return "ok"

    caller = asyncio.create_task(finished(write()))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()  # the stop's close, cancelling again
    await asyncio.sleep(0)
    assert not caller.done()  # still waiting for the write
    go_on.set()
    return caller


async def test_the_write_ends_before_the_cancel_is_raised_even_when_cancelled_twice() -> None:
    written: list[str] = []
    caller = await _cancel_twice_while(written, fails=False)
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert written == ["done"]


async def test_a_write_that_fails_after_a_cancel_still_ends_in_the_cancel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caller = await _cancel_twice_while([], fails=True)
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert "the ledger is locked" in caplog.text


async def test_uncancelled_it_is_the_write_itself() -> None:
    async def write() -> int:
        return 7

    async def broken() -> int:
        raise OSError("disk full")

    assert await finished(write()) == 7
    with pytest.raises(OSError, match="disk full"):
        await finished(broken())


async def test_a_write_that_never_ends_is_given_up_once_its_time_after_the_cancel_is_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ledger that stopped answering does not hold the stop for good: the write is
    cancelled once ``within`` has passed since the first cancel, and the cancel raised."""
    hung = asyncio.Event()
    written: list[str] = []

    async def write() -> None:
        try:
            await hung.wait()  # never set: a dead connection
        except asyncio.CancelledError:
            written.append("cancelled")
            raise

    caller = asyncio.create_task(finished(write(), within=0.05))
    await asyncio.sleep(0)
    caller.cancel()
    await asyncio.sleep(0)
    caller.cancel()  # cancelled again meanwhile: still given its time, no more
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(caller, timeout=5)
    await asyncio.sleep(0)
    assert written == ["cancelled"]
    assert "did not end within 0.05 s: given up" in caplog.text
