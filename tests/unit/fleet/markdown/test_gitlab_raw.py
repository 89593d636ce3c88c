"""What GitLab takes from a post's markdown as written: the quick actions its extractor runs
(gitlabhq's ``lib/gitlab/quick_actions/extractor.rb``, followed piece by piece: what it
skips, what it runs) and the closing statements a merge request's description makes
(its default ``issue_closing_pattern``, code spans and blocks read too); and that no text
Fleetwarden writes of its own — footer, status comment, answers, the post of a done —
ever starts a line with ``/``, whatever hostile values fill it."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.budgets.runs.estimate import RunEstimate
from fleet.forge.posts.answers import Unstartable, no_run_words
from fleet.forge.posts.footer import footer, no_run_footer
from fleet.forge.posts.pull_words import done_body
from fleet.forge.posts.sticky import StickyState, status_text
from fleet.forge.posts.unpublished import fix_words
from fleet.markdown.defuse import defuse
from fleet.markdown.gitlab_raw import closings, quick_actions, unclosed
from fleet.repos.facts import Change
from tests.unit.fleet.forge.posts.test_footer import provenance


@pytest.mark.parametrize(
    ("text", "run"),
    [
        ("/close", ["/close"]),
        ('Done.\n/merge\n/label ~bug ~"a b"', ["/merge", '/label ~bug ~"a b"']),
        ("/CLOSE\n/clo\u017fe", ["/CLOSE", "/clo\u017fe"]),
        ("/close \t", ["/close \t"]),
        ("/close\t\n\n/reopen", ["/close\t", "/reopen"]),
        ("/shrug\r\n", ["/shrug"]),
        ("text\n\n\n/reopen\n", ["/reopen"]),
        ("~~~\n/close\n~~~", ["/close"]),
        ("````\n/close\n````", []),
        ("```\n/close", ["/close"]),
        ("```\n/close\n```", []),
        ("```ruby\n/close\n```\n/merge", ["/merge"]),
        ("/close `x`", []),
        ("/close\nsee `x`", []),
        ("see `x`\n/close", ["/close"]),
        ("<div>\n/close\n</div>", []),
        ("<div>\n/close\n</div> x", ["/close"]),
        (">>>\n/close\n>>>", []),
        (">>>\n/close", ["/close"]),
    ],
)
def test_the_extractor_runs_what_gitlab_runs(text: str, run: list[str]) -> None:
    """At a line's very start, in any case; a code block fenced by ```` ``` ````, "inline
    code" up to a backtick ending a later line, an HTML block and a ``>>>`` quote skipped,
    each only once closed; a ``~~~`` block skips nothing."""
    assert quick_actions(text) == run


@pytest.mark.parametrize(
    "text",
    [
        " /close",
        "   /close",
        "\\/close",
        "x /close",
        "`/close`",
        "/ close",
        "/close\tnow",
        "> /close",
    ],
)
def test_what_is_no_command(text: str) -> None:
    """Indented, escaped, mid-line, in code, no name, a tab before its words, quoted."""
    assert quick_actions(text) == []


def test_the_extractor_reads_a_long_text_in_linear_time() -> None:
    """Many lines of what could start a skipped piece, none closed: read at once."""
    text = ("<a>\n</a> x\n```\n>>>\n`\n" * 20_000) + "/close"
    assert quick_actions(text) == ["/close"]


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        ("Closes #5", ["Closes #5"]),
        ("fixes: acme/app#1", ["fixes: acme/app#1"]),
        ("Resolving issues #1, #6 and #7", ["Resolving issues #1, #6 and #7"]),
        (
            "Implements https://g.example/a/-/issues/2",
            ["Implements https://g.example/a/-/issues/2"],
        ),
        ("`Fix #5`", ["Fix #5"]),
        ("Closes #1", []),
        ("Closes #1, #1", []),
        ("Closes `#5`", []),
        ("Fixes https://example.org/docs", []),
        ("fixes\u00a0#5", []),
        ("CLOSES #5", []),
        ("Prefixes #5", []),
    ],
)
def test_closing_statements_as_gitlab_reads_them(text: str, closed: list[str]) -> None:
    """GitLab's keywords (close, fix, resolve, implement, each form) and an issue's
    reference or address after them, in code too; the run's own bare ``#1`` closes no
    other; a reference in code after the keyword, a no-break space, an address of no
    issue, upper case or a longer word: none."""
    assert closings(text, (1,)) == closed


def test_a_statement_is_broken_and_reads_the_same() -> None:
    """No-break spaces after the keyword: no statement left, the same words shown."""
    text = "`Fixes #5` and\n\n```\nCloses:  acme/app#1, #6\nCloses #1\n```"
    out = unclosed(text, (1,))
    assert closings(out, (1,)) == [] and out.replace("\u00a0", " ") == text
    assert "Closes #1" in out


CHANGE = Change("app", "coder", "fw/coder/issue-1", "main", "a" * 40, "b" * 40, "c" * 40, 0)
HOSTILE = [
    "/close",
    "x\n/merge",
    " /label ~x",
    "\n\n/approve\n",
    "`a`\n/reopen",
    "/assign @wendy ~bug !1 #2 %3 $4 &5",
    "</details>\n/close",
]


def sticky(value: str) -> StickyState:
    return StickyState(
        agent="coder",
        state=value,
        done_signal=value,
        done_status=None,
        doing=value,
        last_operation=value,
        approvals_waiting=1,
        tokens=12,
        cost_usd=0.1,
        cap=value,
        estimate=RunEstimate(runs=2, tokens=(1, 2), usd=None, priced=0),
        over=True,
        pull_url=value,
        provenance=provenance(
            agent=value, runtime=value, models=(value,), requester=value, exit=value,
            done_signal=value, approvals=((value, value),), cap=value, secret_scan=value,
            egress=value, operations=(value, value), version=value, task=value,
        ),
        next_step=f"{value} `pr coder` {value}",
        ended=value,
        review=value,
    )  # fmt: skip


def agents(text: str) -> str:
    return "AGENT'S WORDS"  # stands for the publisher's fitting (defuse has its own tests)


def ours(value: str) -> list[str]:
    """Every text of Fleetwarden's own it can be given ``value`` in (the agent's words in
    it stood for)."""
    reason = Unstartable(value, value, "app", value, known=True, agent_repo=value)  # repo: ours
    change = replace(CHANGE, arrived=False, refused=(value,))
    working = replace(sticky(value), state="working", asking=True, paused="cap")
    return [
        footer(provenance(agent=value, requester=value, operations=(value,), task=value)),
        no_run_footer(value, value),
        status_text(sticky(value)),
        status_text(working),
        status_text(replace(sticky(value), state="ended", ended=value)),
        no_run_words(reason, {"coder": "app", "tester": value}, "fw:"),  # the roster's names
        no_run_words(replace(reason, label=None, known=False), {}, "fw:"),
        done_body("coder", value, change, agents),
        done_body("coder", value, None, agents),
        f"**coder is done, but its pull request could not be opened:** {agents(value)}."
        f"\n\n{fix_words('coder')}.",
    ]


_LINE_START_SLASH = re.compile(r"^[ \t]*/", re.MULTILINE)


@pytest.mark.parametrize("value", HOSTILE)
def test_no_text_of_ours_starts_a_line_with_a_slash(value: str) -> None:
    """The footer, the status comment in each state, the answers on an issue given to no
    agent, the post of a done (refused or not), the words of a failure: with a command in
    every value, none holds a line starting with ``/``, nor a quick action; nor does the
    post of a done holding the agent's words, defused."""
    for text in ours(value):
        assert not _LINE_START_SLASH.search(text), text
        assert quick_actions(text) == [], text
    refused = replace(CHANGE, arrived=False, refused=(value,))
    assert quick_actions(done_body("coder", value, refused, defuse)) == []


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.sampled_from(["/", "/close", "\n", " ", "x", "`", "~", "@a", "#1", "\\", "<", ">"]),
        max_size=12,
    ).map("".join)
)
def test_no_value_makes_a_line_of_ours_start_with_a_slash(value: str) -> None:
    """Property: whatever the values, no line of ours starts with ``/``."""
    for text in ours(value):
        assert not _LINE_START_SLASH.search(text), (value, text)
