"""Tests for fleet.forge.posts.sticky: the one status comment says where the run is, what the
agent does now, the approvals waiting, the spend against the cap, the usual cost and then
this run's, the pull request, and ends with the footer; hostile text in it is escaped, and
it never outgrows a forge comment."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.budgets.runs.estimate import RunEstimate
from fleet.forge.posts.sticky import STICKY_CAP, StickyState, status_text
from tests.unit.fleet.forge.posts.test_footer import live_mentions, provenance


def state(**fields: object) -> StickyState:
    values: dict[str, object] = {
        "agent": "coder",
        "state": "working",
        "done_signal": None,
        "done_status": None,
        "doing": None,
        "last_operation": "read file src/login.py",
        "approvals_waiting": 0,
        "tokens": 12_345,
        "cost_usd": 0.12,
        "cap": "$2.50",
        "estimate": RunEstimate(runs=5, tokens=(100_000, 300_000), usd=(0.3, 0.9), priced=5),
        "over": False,
        "pull_url": None,
        "provenance": provenance(),
    }
    values.update(fields)
    return StickyState(**values)  # type: ignore[arg-type]


def test_a_working_run_says_what_it_does_and_spends() -> None:
    """Working: what the agent does now, the spend so far against the cap, the usual cost,
    then the footer."""
    text = status_text(state())
    assert text.startswith("**coder** · 🛠 Working.")
    assert "Now: read file src/login.py" in text
    assert "Spend so far: 12,345 tokens, $0.12 against its cap of \\$2.50." in text
    assert "A run like this costs $0.30 (median), $0.90 (p90), from 5 past runs." in text
    assert text.endswith("</details>") and text.count("<details>") == 1


@pytest.mark.parametrize(
    ("fields", "line"),
    [
        ({"state": "queued", "doing": "coder works on acme/app#3"}, "⏳ Queued"),
        ({"approvals_waiting": 2}, "✋ Waiting for approval."),
        ({"state": "waiting", "done_signal": "agent", "done_status": "ok"}, "✅ Done"),
        ({"state": "waiting", "done_signal": "watchdog"}, "⏱ No done signal"),
        ({"state": "waiting"}, "💬 Waiting for review."),
        ({"state": "failed", "doing": "tests do not pass"}, "❌ Failed"),
        ({"state": "stopped"}, "⏹ Stopped: the issue was unassigned or unlabelled."),
        ({"state": "ended"}, "🏁 Ended."),
        ({"state": "ended", "ended": "its pull request was merged"},
         "🏁 Ended: its pull request was merged."),
    ],
)  # fmt: skip
def test_each_state_has_its_line(fields: dict[str, object], line: str) -> None:
    """Queued, waiting for approval, done, gone quiet, waiting, failed, stopped, ended."""
    assert status_text(state(**fields)).startswith(f"**coder** · {line}")


def test_why_it_waits_or_failed_and_the_summary_are_said() -> None:
    """A queued or failed run says why; a done one gives the agent's summary, escaped."""
    queued = status_text(state(state="queued", doing="coder works on acme/app#3"))
    assert "Why: coder works on `acme/app#3`" in queued and "Now:" not in queued
    done = status_text(state(state="waiting", done_status="ok", doing="Fixed *it* @bob"))
    assert "Summary: Fixed \\*it\\* `@bob`" in done


def test_approvals_waiting_are_counted_and_answered_in_chat() -> None:
    """The count, and where to answer."""
    assert "✋ 2 approvals waiting: answer in chat" in status_text(state(approvals_waiting=2))
    assert "✋ 1 approval waiting" in status_text(state(approvals_waiting=1))


def test_over_the_run_tells_its_own_cost_beside_the_estimate() -> None:
    """A run over for now says what it cost, next to what such runs cost."""
    text = status_text(state(state="waiting", done_status="ok", over=True, cost_usd=1.5))
    assert "This run: 12,345 tokens, $1.50 against its cap of \\$2.50." in text
    assert "A run like this costs" in text


def test_an_estimate_without_prices_is_in_tokens_and_no_cap_is_said() -> None:
    """Unpriced past runs give tokens; no cap says so; no history says so."""
    text = status_text(
        state(estimate=RunEstimate(runs=1, tokens=(1000.0, 1000.0)), cap=None, cost_usd=None)
    )
    assert "A run like this takes 1,000 tokens (median), 1,000 (p90), from 1 past run." in text
    assert "cost not priced (no cap)" in text
    assert "A run like this: no history yet" in status_text(state(estimate=None))


def test_the_pull_request_is_linked_and_an_odd_address_is_not() -> None:
    """The forge's address of the pull request is a link; one that does not read as a
    web address is shown as text."""
    text = status_text(state(pull_url="https://github.com/acme/app/pull/18"))
    assert "Pull request: [#18](https://github.com/acme/app/pull/18)" in text
    odd = status_text(state(pull_url="javascript:alert(1)//) [x](y"))
    assert "](javascript" not in odd and "Pull request: javascript:alert(1)//) \\[x\\](y" in odd


def test_hostile_activity_is_one_escaped_line() -> None:
    """What the agent does now is its text: one line, escaped, mentions defused."""
    text = status_text(state(last_operation="read #1\n\n## @admin </details> <!--"))
    assert "Now: read `#1` ⏎ ## `@admin` &lt;/details&gt; &lt;!--" in text
    assert live_mentions(text) == []


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=5_000), st.lists(st.text(max_size=300), max_size=40))
def test_the_comment_fits_a_forge_comment_whatever_the_text(text: str, lines: list[str]) -> None:
    """Every hostile value at its longest: the comment stays within the cap, with one
    footer block and no live mention."""
    out = status_text(
        state(
            agent=text,
            doing=text,
            last_operation=text,
            cap=text,
            pull_url=text,
            provenance=replace(provenance(), models=tuple(lines), operations=tuple(lines)),
        )
    )
    assert len(out) <= STICKY_CAP
    assert out.count("<details") == 1 and out.count("</details") == 1
    assert live_mentions(out) == []


def test_a_mention_or_reference_is_coded_without_the_punctuation_after_it() -> None:
    """`@ann,` and `#2:` in Fleetwarden's own lines: the code span holds the mention or
    the reference only, the comma and the colon read after it."""
    text = status_text(
        state(
            state="ended",
            doing="the pull request was merged by @ann, its branch deleted",
            last_operation="review by @ann on #2: no session to continue",
        )
    )
    assert "Summary: the pull request was merged by `@ann`, its branch deleted" in text
    text = status_text(state(last_operation="review by @ann on #2: no session to continue"))
    assert "Now: review by `@ann` on `#2`: no session to continue" in text
    assert live_mentions(text.split("<details>")[0]) == []


def test_a_run_asking_at_its_cap_says_how_to_answer_on_the_issue() -> None:
    """Paused at its cap: the state line says so, and how a comment answers; the ask is
    not counted again among the approvals."""
    text = status_text(state(approvals_waiting=1, asking=True))
    assert "💸 Paused at its cap, asking for more." in text
    assert "`raise +AMOUNT` (`+$2`, `+50k`) or `stop`" in text
    assert "approval" not in text


@pytest.mark.parametrize(
    ("paused", "line"),
    [
        ("unanswered", "⏸ Paused at its cap: nobody answered in time — an operator's `raise`"),
        ("cap", "⏸ Paused at its cap — an operator's `raise` in chat continues it."),
        ("budget", "⏸ Paused: the fleet's budgets do not allow more now."),
        ("operator", "⏸ Paused by an operator."),
    ],
)
def test_a_frozen_run_says_why_in_its_own_words(paused: str, line: str) -> None:
    """Frozen and no longer asking (its cap nobody answered, its cap, a budget's limit, an
    operator's `freeze`): the state line says which, in Fleetwarden's words alone."""
    text = status_text(state(paused=paused))
    assert line in text
    assert "🛠 Working" not in text


def test_its_review_agents_last_word_is_said_on_its_line() -> None:
    """Which commit the review agent approved, and a head that changed since, on one
    escaped line; none without a review."""
    said = "review 3 by reviewer: approved at a1b2c3d4e5f6; the head 9f8e7d6c5b4a changed"
    text = status_text(state(state="waiting", done_status="ok", review=said))
    assert f"Review agent: {said}" in text
    assert "Review agent" not in status_text(state(state="waiting", done_status="ok"))
    hostile = status_text(state(state="waiting", review="@octocat fixes #9\nline two"))
    assert "Review agent: `@octocat` fixes `#9` ⏎ line two" in hostile  # nothing live, one line
