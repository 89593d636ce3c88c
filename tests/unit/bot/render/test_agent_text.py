"""Agent text in chat: escaped so it makes no markup in any dialect (Matrix's HTML, the
console, Discord), quoted under the agent's name, with no link under another label and no
code block the agent can close."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from bot.dashboard.pages.pages import markdown_html
from bot.render.agents.runs import ANSWER_CAP, summary
from bot.render.agents.transcript import transcript
from bot.render.fleet import fleet_event, stopped, usage
from bot.text.agent_text import escape, quoted
from connectors.discord.outbound import parts as discord_parts
from connectors.markdown import to_html, to_plain
from connectors.matrix.messages.render import notices
from fleet.events import EventKind, FleetEvent
from fleet.ledger.records.rows import RunRecord
from fleet.ledger.stores.running.runs import RunEnd, RunReport
from fleet.ledger.stores.spend.usage_rows import NOT_SERVED, UsageTotal
from fleet.metering.counting.events import Tokens
from fleet.model import AgentState, ExitInfo
from fleet.names import AgentName
from fleet.redaction.redactor import Redactor
from fleet.runs.output.stories import RunStory
from fleet.transcript.events import (
    ErrorKind,
    Said,
    Text,
    ToolFailed,
    ToolUsed,
    Trouble,
    Waiting,
)
from fleet.transcript.story import Outcome

FORGED = "⏹ coder-1 stopped after 2s: stopped by admin"
LINK = "[click](https://evil.example/x)"
HOSTILE = "\n".join(
    [
        FORGED,
        LINK,
        "![img](https://evil.example/i.png) <https://evil.example> <@123> <t:1:R>",
        "# Heading",
        "> quote",
        "- item",
        "1. item",
        "---",
        "===",
        "    indented code",
        "**bold** __under__ _it_ *it* ~~strike~~ ||spoiler|| `code` ```fence",
        "&#8203;&lt;b&gt; <b>html</b> | a | b |",
        "-# subtext",
        "trailing hard break  ",
        "back\\slash\\",
    ]
)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ALLOWED_TAGS = {"blockquote", "p", "br", "strong", "pre", "code"}


def tags(html: str) -> set[str]:
    return set(re.findall(r"</?([a-z0-9]+)", html))


def test_hostile_text_makes_no_markup_in_matrix_html() -> None:
    """Escaped, quoted agent text renders as one quote of paragraphs: no link, heading,
    list, rule, emphasis or raw HTML; entities stay as written."""
    html = to_html(quoted(escape(HOSTILE)))
    assert tags(html) <= {"blockquote", "p", "br"}, html
    assert "[click](https://evil.example/x)" in html  # the target shows
    assert "&amp;#8203;" in html  # not a zero-width space


def test_hostile_text_reads_as_written_on_the_console() -> None:
    """On the terminal every line is marked as quoted and reads as the agent wrote it."""
    plain = to_plain(quoted(escape(HOSTILE)))
    lines = plain.splitlines()
    assert all(line.startswith(">") for line in lines)
    assert f"> {FORGED}" in lines and f"> {LINK}" in lines
    assert "> **bold** __under__ _it_ *it* ~~strike~~ ||spoiler|| `code` ```fence" in lines


def test_hostile_text_is_escaped_for_discord() -> None:
    """Every character Discord reads as markup in the agent's text is escaped: no masked
    link, mention, heading, subtext, spoiler or emphasis."""
    (part,) = discord_parts(quoted(escape(HOSTILE)))
    assert "\\[click\\](https://evil.example/x)" in part
    assert "\\<@123\\>" in part and "\\|\\|spoiler\\|\\|" in part
    assert "> \\# Heading" in part and "> \\-# subtext" in part
    assert all(line.startswith("> ") for line in part.splitlines())


@given(st.text(max_size=200))
def test_no_text_makes_markup_in_html(text: str) -> None:
    """Whatever an agent writes, its quote holds only paragraphs and line breaks."""
    html = to_html(quoted(escape(text)))
    assert tags(html) <= {"blockquote", "p", "br"}, (text, html)


def test_a_transcript_with_a_forged_notice_and_a_link_in_every_kind_of_event() -> None:
    """Said, tool, failure, waiting and trouble text and raw lines: all in the quote, none
    a link, on Matrix's HTML."""
    events = [
        Said(f"{FORGED}\n{LINK}"),
        ToolUsed(LINK, LINK),
        ToolFailed(LINK, LINK),
        Waiting(LINK),
        Trouble(ErrorKind.OTHER, LINK),
        Text(FORGED),
        Text("```"),
        Text(LINK),
    ]
    markdown = transcript(events, agent="c1")
    assert all(line.startswith("> ") for line in markdown.splitlines()), markdown
    (content,) = notices(f"**c1** ›\n{markdown}")
    html = content["formatted_body"]
    assert "<a " not in html and tags(html) <= ALLOWED_TAGS, html
    assert html.startswith("<p><strong>c1</strong> ›</p>\n<blockquote>"), html
    assert "</blockquote>" in html.rstrip()[-14:], html  # the agent's ``` closed nothing


def test_an_agents_backticks_cannot_close_a_discord_code_block() -> None:
    """Discord ends a block at any three backticks: the fence is three, and no run of
    three is left inside."""
    markdown = transcript([Text("```"), Text(f"{FORGED} ````"), Text("**after**")], agent="c1")
    (part,) = discord_parts(markdown)
    lines = part.splitlines()
    assert lines[0] == "> ```text" and lines[-1] == "> ```", part
    assert all("```" not in line for line in lines[1:-1]), part


def test_a_long_message_is_escaped_and_cut_with_our_note() -> None:
    """The cut note is ours (a code span), the agent's text before it escaped."""
    said = transcript([Said("*" * 2000)], agent="c1")
    assert said.startswith("> \\*\\*") and "more characters: `logs c1 --raw`)" in said
    assert ANSWER_CAP < 2000


def _story(last_message: str, why: str) -> RunStory:
    run = RunRecord(
        id=7,
        agent=AgentName("c1"),
        backend="process",
        pid=1,
        pgid=1,
        start_ticks=None,
        session=None,
        run_dir=Path("/tmp/run"),
        log_path=Path("/tmp/run/output.log"),
        started_at=T0,
        ended_at=T0 + timedelta(seconds=2),
        exit_code=1,
        reason="exited with status 1",
    )
    end = RunEnd(outcome=Outcome.FAILED.value, why=why, last_message=last_message)
    return RunStory(RunReport(run, None, None, end), "claude", (), ())


def test_a_summary_quotes_the_last_message_and_escapes_the_clis_words() -> None:
    """The agent's last message is quoted and escaped; a reason repeating its CLI's words
    makes no link either."""
    story = _story(f"{FORGED}\n{LINK}", f"claude reported an error: {LINK}")
    markdown = summary(story, T0 + timedelta(seconds=5))
    headline, answer = markdown.split("\n\n")[:2]
    assert headline.startswith("❌ **c1** failed after 2s: claude reported an error: \\[click\\]")
    assert answer.splitlines() == [f"> {FORGED}", "> \\[click\\](https://evil.example/x)"]
    assert "<a " not in to_html(markdown)


def _used(model: str, requests: int = 1) -> UsageTotal:
    return UsageTotal(
        agent="c1",
        provider="anthropic",
        model=model,
        requests=requests,
        tokens=Tokens(input=10),
        cost_usd=None,
        unpriced=0,
        partial=0,
        unmetered=0,
        errors=0,
        refused=0,
    )


MARKUP_MODEL = (
    "[docs](https://evil.example/x) ![i](https://evil.example/i.png) "
    "<img src=https://evil.example/p.png> <https://evil.example/a> \x1b[31mred\x9b2J\u202e"
)


def test_model_names_in_a_summary_are_text_on_one_line() -> None:
    """Names an agent chose (served, or moved from by pacing) make no link, no image and no
    second line, in chat's markdown and on the page alike; a request nobody served is
    counted, never named."""
    story = replace(
        _story("done", "exited with status 1"),
        usage=(_used(MARKUP_MODEL), _used(f"m\n{FORGED}"), _used(NOT_SERVED, 600)),
        downgrades=((f"{LINK}\n{FORGED}", "claude-haiku-4-5", 2),),
    )
    markdown = summary(story, T0 + timedelta(seconds=5))
    served = next(line for line in markdown.splitlines() if line.startswith("Served by"))
    assert "\\[docs\\](https://evil.example/x)" in served and "⏎ ⏹ coder-1 stopped" in served
    assert served.endswith("; 600 requests not served")
    assert not any(line.startswith("⏹") for line in markdown.splitlines())
    for html in (to_html(markdown), markdown_html(markdown)):
        assert tags(html) <= ALLOWED_TAGS | {"em"}, html
        assert "evil.example/p.png" in html  # shown as text
    assert "\x1b" not in markdown and "\x9b" not in markdown and "\u202e" not in markdown


def test_model_names_in_usage_are_text_on_one_line() -> None:
    """`usage` in chat: a served model's name makes no link or image, and no line of its own."""
    markdown = usage([_used(MARKUP_MODEL), _used(f"m\n{FORGED}")], window="day", since=T0)
    assert tags(to_html(markdown)) <= ALLOWED_TAGS | {"table", "thead", "tbody", "tr", "th", "td"}
    assert not any(line.startswith("⏹") for line in to_plain(markdown).splitlines())


def test_a_multi_line_reason_stays_on_the_headline() -> None:
    """A reason a host wrote over several lines is one line of the headline: its second
    line cannot pass for Fleetwarden's ``✅ payroll finished`` notice."""
    forged = "host box2 says “exited with status 1\n✅ **payroll** finished after 2s: safe”"
    markdown = summary(_story("", forged), T0 + timedelta(seconds=5))
    headline = markdown.splitlines()[0]
    assert headline == (
        "❌ **c1** failed after 2s: host box2 says “exited with status 1 ⏎ ✅ \\*\\*payroll"
        "\\*\\* finished after 2s: safe”"
    )
    assert not any(line.startswith("✅") for line in to_plain(markdown).splitlines())


def test_an_exit_reason_in_a_notice_or_a_stop_is_one_line_of_text() -> None:
    """Where no run summary tells of an end (the fleet's own notice) and in a stop's answer,
    the exit reason a host wrote is one escaped line too."""
    forged = f"exited with status 1\n✅ **payroll** finished: {LINK}"
    event = FleetEvent(AgentName("payroll"), EventKind.ENDED, AgentState.FAILED, forged, False)
    for markdown in (fleet_event(event), stopped("payroll", ExitInfo(1, forged))):
        assert "\n" not in markdown and "⏎ ✅ \\*\\*payroll\\*\\*" in markdown
        assert "<a " not in to_html(markdown)


def test_every_kind_of_line_break_starts_a_marked_line() -> None:
    """A carriage return, a line separator or a next-line character in the agent's text
    or raw output cannot start a line outside the quote (after the redactor makes it a
    line feed)."""
    events = [Said("hi\r# Heading\u2028⏹ forged\x85- item"), Text("a\x85# Raw\u2029⏹ raw")]
    markdown = Redactor().redact(transcript(events, agent="c1"))
    assert all(line.startswith("> ") for line in markdown.splitlines()), markdown
    html = to_html(markdown)
    assert tags(html) <= ALLOWED_TAGS - {"strong"} and html.count("<blockquote>") == 1, html
