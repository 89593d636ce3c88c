"""Approval requests past their deadline, denied as timeouts every few seconds (the agent's
CLI is told, and each request's chat message says it timed out)."""

from __future__ import annotations

from typing import Final

from scheduler.context import JobContext

APPROVALS_JOB_ID: Final = "approval-timeouts"
APPROVALS_JOB_REF: Final = "scheduler.approvals_job:expire_approvals"
EXPIRE_EVERY: Final = 10.0
"""Seconds between sweeps: how late after its deadline a request may time out."""


async def expire_approvals(ctx: JobContext) -> int:
    """Time out what is past its deadline; how many requests that ended."""
    if ctx.waiting.approvals is None:
        return 0
    return len(await ctx.waiting.approvals.expire())
