"""What is looked at again and again, as jobs: the agent feed's read of the followed logs,
the dashboard's live sessions, the hosts' probe and the refused egress told. What each look
does is its owner's (:class:`scheduler.context.Looking`); how often is the caller's to say.
Each job does nothing when the app has no such part."""

from __future__ import annotations

from typing import Final

from scheduler.context import JobContext

FEED_JOB_ID: Final = "feed-look"
FEED_JOB_REF: Final = "scheduler.looking_jobs:feed_look"
SESSIONS_JOB_ID: Final = "dashboard-sessions"
SESSIONS_JOB_REF: Final = "scheduler.looking_jobs:refresh_sessions"
HOSTS_JOB_ID: Final = "hosts-probe"
HOSTS_JOB_REF: Final = "scheduler.looking_jobs:probe_hosts"
REFUSALS_JOB_ID: Final = "egress-refusals"
REFUSALS_JOB_REF: Final = "scheduler.looking_jobs:tell_refusals"


async def feed_look(ctx: JobContext) -> None:
    """One look at every log the agent feed follows."""
    if ctx.looking.feed is not None:
        await ctx.looking.feed.look()


async def refresh_sessions(ctx: JobContext) -> None:
    """The dashboard's live sessions, read again while anyone watches a page."""
    if ctx.looking.sessions is not None:
        await ctx.looking.sessions.refresh_sessions()


async def probe_hosts(ctx: JobContext) -> None:
    """One probe of every host whose link is up."""
    if ctx.looking.hosts is not None:
        await ctx.looking.hosts.probe_up()


async def tell_refusals(ctx: JobContext) -> None:
    """The refused egress written to the ledger, and told where a notice is due."""
    if ctx.looking.refusals is not None:
        await ctx.looking.refusals.tell()
