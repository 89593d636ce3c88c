"""Chat's word on forge work: a forge run's pull request opened (or not), an issue given to
no agent that can start there (:func:`teller`), and what is wrong with a forge's login at
start (:func:`checked`)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.render.forge import no_run_news, pull_news
from bot.text.agent_text import quotes_escaped
from fleet.forge.events.holds import ForgeHolds
from fleet.forge.facts import NoRunNews, PullNews
from fleet.forge.posts.publish import Tell
from fleet.forge.runs.work import ForgeWork
from fleet.names import is_agent_name
from fleet.notices import Delivery, Notice

log = logging.getLogger(__name__)


def teller(notify: Callable[[Notice], Awaitable[object]] | None) -> Tell | None:
    """Chat's word on a forge run's pull request, into the agent's threads and the home
    rooms: an alert when it could not be opened (someone must fix why); and a warning on an
    issue given to no agent that can start there."""
    if notify is None:
        return None

    async def tell(news: PullNews | NoRunNews) -> None:
        if isinstance(news, NoRunNews):
            agents = (news.agent,) if is_agent_name(news.agent) else ()
            await notify(Notice(no_run_news(news), tone="warning", agents=agents))
            return
        failed = news.pull is None
        await notify(
            Notice(
                pull_news(news),
                tone="warning" if failed else "ok",
                agents=(news.agent,),
                alert=failed,
            )
        )

    return tell


async def checked(
    work: ForgeWork,
    holds: ForgeHolds,
    forges: Sequence[str],
    notify: Callable[[Notice], Awaitable[object]] | None,
) -> None:
    """Each forge asked who its credential is, what is wrong said in chat (the home rooms
    and the console: an operator must act) — once: on the terminal's log lines only when no
    chat took it — then the deliveries kept from before the last stop."""
    for forge in forges:
        why = await holds.check_login(forge)
        if why is None:
            continue
        held = forge in holds.held
        said = None
        if notify is not None:  # the console is a connector: said there once, by this
            notice = Notice(
                f"⚠ {quotes_escaped(why)}", tone="error" if held else "warning", alert=held
            )
            said = await notify(notice)
        if not isinstance(said, Delivery) or not said.ok:  # no chat took it: the log says it
            log.log(logging.ERROR if held else logging.WARNING, "%s", why)
    await work.resume_kept()
