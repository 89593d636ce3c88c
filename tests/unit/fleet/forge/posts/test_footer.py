"""Tests for fleet.forge.posts.footer: the provenance footer is one collapsed ``<details>`` block
saying everything the run did, and no value in it — a model's name, an approval, an
operation's line — can close it, open another, mention anyone or grow it unbounded."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from html import unescape

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from fleet.forge.posts.footer import FOOTER_CAP, OPERATIONS_SHOWN, Provenance, footer

T0 = datetime(2026, 11, 25, 14, 3, tzinfo=UTC)
_MENTION = re.compile(r"(?<![A-Za-z0-9_`])@[A-Za-z0-9_]")
_PARSER = MarkdownIt("commonmark", {"html": True})


def provenance(**fields: object) -> Provenance:
    values: dict[str, object] = {
        "agent": "coder",
        "runtime": "claude-code",
        "models": ("claude-x (12 requests)", "claude-y served as claude-z (2)"),
        "run_id": 41,
        "requester": "alice",
        "started_at": T0,
        "duration": 725.0,
        "exit": "finished",
        "done_signal": "agent",
        "approvals": (("bash: npm publish", "@dana:matrix.org"),),
        "tokens": 123_456,
        "cost_usd": 0.4213,
        "cap": "$2.50",
        "secret_scan": "clean",
        "egress": "deny by default; allowed: pypi.org; refused: 1",
        "operations": ("read issue #12", "commented on #12", "refused: comment on #3"),
        "version": "1.4.0",
    }
    values.update(fields)
    return Provenance(**values)  # type: ignore[arg-type]


def live_mentions(markdown: str) -> list[str]:
    """Mentions a forge would notify: in the text of the markdown (each run of text read
    as one, code aside) and of its HTML blocks (``<code>`` aside, entities decoded)."""
    found: list[str] = []
    for token in _PARSER.parse(markdown):
        if token.type == "html_block":
            found += _MENTION.findall(unescape(re.sub(r"<code>.*?</code>", "", token.content)))
        texts = [""]
        for child in token.children or ():
            if child.type == "text":
                texts[-1] += child.content
            else:
                texts.append("")
        found += [m for text in texts for m in _MENTION.findall(text)]
    return found


def test_the_footer_says_everything_the_run_did() -> None:
    """Agent, runtime, models, run, requester, start, duration, exit, done signal,
    approvals, spend against the cap, secret scan, egress, operations, version."""
    text = footer(provenance())
    assert text.startswith("<details><summary>Fleetwarden · agent coder · run 41</summary>\n\n")
    assert text.endswith("\n\n</details>")
    for said in (
        "**Agent** coder on claude-code",
        "**Models** claude-x (12 requests); claude-y served as claude-z (2)",
        "**Run** 41, asked by alice; started 2026-11-25 14:03 UTC; took 12m05s; exit: finished",
        "**Done signal** the agent (`fw-forge done`)",
        "**Approvals granted** bash: npm publish (by `@dana:matrix.org`)",
        "**Spend** 123,456 tokens, $0.42; cap: \\$2.50",
        "**Secret scan** clean",
        "**Egress** deny by default; allowed: pypi.org; refused: 1",
        "**Forge operations**\n  - read issue `#12`\n  - commented on `#12`\n"
        "  - refused: comment on",
        "**Fleetwarden** 1.4.0",
    ):
        assert said in text


def test_a_run_not_started_or_still_running_says_so() -> None:
    """No run yet, no duration, no exit, no done signal, nothing spent: each said."""
    text = footer(
        provenance(
            run_id=None,
            duration=None,
            exit=None,
            done_signal=None,
            approvals=(),
            models=(),
            cost_usd=None,
            cap=None,
            operations=(),
        )
    )
    assert "<summary>Fleetwarden · agent coder · no run yet</summary>" in text
    assert "still running; exit: —" in text and "**Done signal** none yet" in text
    assert "**Models** none served yet" in text and "**Approvals granted** none" in text
    assert "cost not priced; cap: none" in text and "**Forge operations** none" in text


def test_the_watchdog_is_named_when_no_done_came() -> None:
    """``watchdog``: the footer says the agent did not say done."""
    assert "the watchdog: the agent did not say done" in footer(provenance(done_signal="watchdog"))


def test_a_start_in_another_zone_is_shown_in_utc() -> None:
    """Times are UTC, whatever zone they came in."""
    start = datetime(2026, 11, 25, 16, 3, tzinfo=timezone(timedelta(hours=2)))
    assert "started 2026-11-25 14:03 UTC" in footer(provenance(started_at=start))


def test_hostile_values_cannot_break_fake_or_ping() -> None:
    """A model named to close the block, open another, mention people or start a table is
    escaped: one ``<details>``, one ``</details>``, no live mention, no raw HTML."""
    evil = "x</details>\n\n<details><summary>ok</summary> @admin | ``` <!--"
    text = footer(
        provenance(
            agent="@root</summary>",
            models=(evil,),
            approvals=((evil, evil),),
            operations=(evil,),
            version=evil,
            egress=evil,
        )
    )
    assert text.count("<details>") == 1 and text.count("</details>") == 1
    assert text.startswith("<details>") and text.endswith("</details>")
    assert live_mentions(text) == []
    assert "<!--" not in text
    inline_html = [
        c.content for t in _PARSER.parse(text) for c in t.children or () if c.type == "html_inline"
    ]
    assert inline_html == []


def test_operations_beyond_thirty_are_counted() -> None:
    """At most 30 operations are listed; the rest are counted."""
    text = footer(provenance(operations=tuple(f"read issue #{n}" for n in range(45))))
    assert "read issue `#29`" in text and "read issue #30" not in text
    assert f"  - … and {45 - OPERATIONS_SHOWN} more" in text


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=400),
    st.lists(st.text(max_size=400), max_size=40),
    st.lists(st.tuples(st.text(max_size=300), st.text(max_size=100)), max_size=25),
)
def test_whatever_the_values_the_footer_is_one_closed_block(
    value: str, lines: list[str], approvals: list[tuple[str, str]]
) -> None:
    """For any text in any field: exactly one ``<details>`` and one ``</details>``, at the
    footer's two ends, no raw ``@login`` mention, and a bounded size."""
    text = footer(
        replace(
            provenance(),
            agent=value,
            runtime=value,
            models=tuple(lines),
            requester=value,
            exit=value,
            approvals=tuple(approvals),
            cap=value,
            secret_scan=value,
            egress=value,
            operations=tuple(lines),
            version=value,
        )
    )
    assert text.startswith("<details><summary>") and text.endswith("</details>")
    assert text.count("<details") == 1 and text.count("</details") == 1
    assert live_mentions(text) == []
    assert len(text) <= FOOTER_CAP
