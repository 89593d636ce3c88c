"""The forges' periodic work as jobs: the round over the live forge runs, each polled
forge's read (one job per forge, its id ``forge-poll:NAME``) and the renewal of the
GitHub Apps' installation tokens for git. What a round does is
:mod:`fleet.forge.runs.rounds`'s; how often is the caller's to say."""

from __future__ import annotations

from typing import Final

from scheduler.context import JobContext

FORGE_WATCH_JOB_ID: Final = "forge-watch"
FORGE_WATCH_JOB_REF: Final = "scheduler.forge_jobs:forge_watch"
FORGE_POLL_JOB_REF: Final = "scheduler.forge_jobs:forge_poll"
FORGE_TOKENS_JOB_ID: Final = "forge-app-tokens"
FORGE_TOKENS_JOB_REF: Final = "scheduler.forge_jobs:renew_forge_tokens"


def forge_poll_job_id(forge: str) -> str:
    """The id of ``forge``'s polling job."""
    return f"forge-poll:{forge}"


async def forge_watch(ctx: JobContext) -> None:
    """One round over the live forge runs."""
    if ctx.forges is not None:
        await ctx.forges.watch()


async def forge_poll(ctx: JobContext, forge: str) -> None:
    """One read of the polled forge ``forge``."""
    if ctx.forges is not None:
        await ctx.forges.poll(forge)


async def renew_forge_tokens(ctx: JobContext) -> None:
    """One renewal of the GitHub Apps' installation tokens for git."""
    if ctx.forges is not None:
        await ctx.forges.renew_tokens()
