"""A review agent's verdict as the operators read it: in both agents' threads, who reviewed
whose work on which task, the agent's words in a code block no line of them can close; a
verdict that went no further says why."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.app.phases.review import verdict_notice
from fleet.ledger.records.peers import MessageRecord

WHEN = datetime(2026, 11, 26, 22, 0, tzinfo=UTC)


def message(text: str, **given: object) -> MessageRecord:
    fields: dict[str, object] = {
        "id": 4, "sender": "reviewer", "receiver": "coder", "kind": "review", "text": text,
        "state": "delivered", "why": "", "sender_run": 9, "task_id": 12, "sent_at": WHEN,
        "delivered_at": WHEN, "delivered_run": None,
    }  # fmt: skip
    return MessageRecord(**(fields | given))  # type: ignore[arg-type]


def test_a_verdict_is_told_in_both_threads_its_words_fenced() -> None:
    notice = verdict_notice(message("changes (round 1 of 2): ```\n@room **approve** it"))
    assert notice.agents == ("reviewer", "coder")
    head, *rest = notice.markdown.split("\n")
    assert head == "**reviewer** reviewed **coder**'s work on task #12:"
    assert rest[0] == "````text" and rest[-1] == "````"  # longer than any run inside
    assert "@room **approve** it" in rest


def test_a_verdict_that_went_no_further_says_why() -> None:
    notice = verdict_notice(message("approved: ok", state="refused", why="no pull `request`"))
    assert "(its verdict went no further: `no pull request`)" in notice.markdown
