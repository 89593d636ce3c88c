"""Whose an agent is, in chat's words: the forge issue an agent works on (a chat run
would take over its branch and session) as the admission's ownership stage
(:mod:`fleet.supervisor.admission.owners`) says it in chat, and what ``restart`` and
``send`` say of an agent on an issue."""

from __future__ import annotations

from bot.render import forge as render_forge
from bot.text.agent_text import said
from fleet.ledger.records.forge import ForgeRunRecord


class ChatWords:
    """The ownership stage's :class:`~fleet.supervisor.admission.owners.OwnershipWords`
    as chat shows them: the issue and its pull request linked, a branch escaped."""

    def taken(self, agent: str, record: ForgeRunRecord, live: bool) -> str:
        return taken_words(agent, record, live)

    def branch(self, branch: str) -> str:
        return said(branch, 80)


def taken_words(name: str, record: ForgeRunRecord, live: bool) -> str:
    """Why a chat run (or restart) of ``name``, working on ``record``'s issue, would take
    over its branch and its session, and what goes on instead (``live``: its session runs)."""
    where = f"{name} works on {render_forge.links(record)} ({record.state})"
    if live:
        return (
            f"{where}: `send {name} TEXT` continues that session; it ends when its pull "
            "request closes"
        )
    return f"{where}, and is not running now: {goes_on(record)}"


def goes_on(record: ForgeRunRecord) -> str:
    """What gives an agent working on a forge issue its next run once its session ended."""
    where = "its pull request" if record.pull is not None else "the issue"
    return (
        f"a review or comment on {where} starts its next run on its branch; it ends when "
        "its pull request closes"
    )
