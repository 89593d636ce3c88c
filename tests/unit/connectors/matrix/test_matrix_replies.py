"""Tests for connectors.matrix.messages.replies: the text of a reply after its fallback, in
linear time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.matrix.inbound.translate import Identity, to_inbound
from connectors.matrix.messages.replies import (
    after_fallback,
    html_after_fallback,
    is_reply,
    strip_body_fallback,
    strip_mx_reply,
)

BOT = "@bot:hs"
ME = Identity.of(BOT)
ROOM = "!room:hs"

# Exactly what Element sends when replying to the bot's message "text\nmore" with "reply".
ELEMENT_BODY = f"> <{BOT}> text\n> more\n\nreply"
ELEMENT_HTML = (
    '<mx-reply><blockquote><a href="https://matrix.to/#/!room/$ev">In reply to</a> '
    f'<a href="https://matrix.to/#/{BOT}">{BOT}</a><br>text</blockquote></mx-reply>reply'
)


def element(reply: str) -> tuple[str, str]:
    """Element's body and formatted body for a reply saying ``reply``."""
    return ELEMENT_BODY.removesuffix("reply") + reply, ELEMENT_HTML.removesuffix("reply") + reply


def reply_content(body: str, html: str | None = None, **relation: Any) -> dict[str, Any]:
    content: dict[str, Any] = {
        "msgtype": "m.text",
        "body": body,
        "m.relates_to": {"m.in_reply_to": {"event_id": "$ev"}, **relation},
    }
    if html is not None:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = html
    return content


def event(content: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "sender": "@ann:hs",
        "event_id": "$reply",
        "origin_server_ts": 1_740_830_400_000,
        "content": content,
    }


def test_element_fallback_body_and_html_agree_on_the_reply() -> None:
    """Element's reply: the body after its quote and the HTML after mx-reply both say "reply"."""
    assert element("reply") == (ELEMENT_BODY, ELEMENT_HTML)
    content = reply_content(*element("!ps"))
    assert after_fallback(content, reply=True) == "!ps"
    assert html_after_fallback(content) == "!ps"


def test_a_reply_to_the_bot_runs_the_command_after_the_fallback() -> None:
    """A reply's command is read after the quote: not ``>``, not the quoted text."""
    content = reply_content(*element("!logs demo"))
    inbound = to_inbound(event(content), ROOM, ME)
    assert inbound is not None
    assert inbound.text == "!logs demo"


def test_the_mention_is_stripped_after_the_fallback() -> None:
    """``@bot:hs: ps`` written after the quote addresses the bot and leaves ``ps``."""
    inbound = to_inbound(event(reply_content(f"> <{BOT}> hi\n\n{BOT}: ps")), ROOM, ME)
    assert inbound is not None
    assert (inbound.text, inbound.addressed) == ("ps", True)


def test_a_reply_without_a_fallback_is_taken_as_it_is() -> None:
    """The current spec sends no fallback: the body is the command."""
    inbound = to_inbound(event(reply_content("!ps")), ROOM, ME)
    assert inbound is not None
    assert inbound.text == "!ps"


def test_a_quote_in_a_message_that_is_no_reply_is_kept() -> None:
    """Without ``m.in_reply_to`` a leading quote is the person's own text."""
    content = {"msgtype": "m.text", "body": "> look\n\nat this"}
    assert after_fallback(content, reply=is_reply(content)) == "> look\n\nat this"


def test_a_threads_own_fallback_relation_is_no_reply() -> None:
    """A plain message in a thread carries ``m.in_reply_to`` only as ``is_falling_back``."""
    thread = reply_content("> hello", rel_type="m.thread", event_id="$root", is_falling_back=True)
    assert not is_reply(thread)
    assert is_reply(reply_content("x", rel_type="m.thread", event_id="$root"))


def test_the_persons_own_quote_after_the_fallback_is_kept() -> None:
    """Only the quote before the blank line is the fallback; a quote after it is theirs."""
    body = f"> <{BOT}> text\n\n> what you said\nis wrong"
    assert strip_body_fallback(body) == ("> what you said\nis wrong", True)


def test_a_fallback_without_its_blank_line_defers_to_the_html() -> None:
    """A quote not ended by a blank line is ambiguous: the text after mx-reply decides."""
    content = reply_content(f"> <{BOT}> text\n> !ps\n!ps", "<mx-reply>q</mx-reply>!ps")
    assert strip_body_fallback(str(content["body"])) == ("!ps", False)
    assert after_fallback(content, reply=True) == "!ps"
    no_html = reply_content(f"> <{BOT}> text\n!status")
    assert after_fallback(no_html, reply=True) == "!status"


def test_a_body_of_nothing_but_quote_is_empty() -> None:
    """A reply that only quotes says nothing."""
    assert strip_body_fallback(f"> <{BOT}> a\n> b") == ("", True)
    assert strip_body_fallback("> a\n\n") == ("", True)


def test_nested_mx_reply_blocks_are_stripped_whole() -> None:
    """An mx-reply holding another is removed as one block; an unclosed one is not a fallback."""
    html = "<mx-reply>a<mx-reply>b</mx-reply>c</mx-reply>!ps"
    assert strip_mx_reply(html) == "!ps"
    assert strip_mx_reply("<mx-reply>never closed") is None
    assert strip_mx_reply("!ps<mx-reply>x</mx-reply>") is None


def test_html_entities_and_breaks_become_text() -> None:
    """The HTML after the fallback is read as text: entities decoded, ``<br>`` a new line."""
    content = reply_content("", "<mx-reply>q</mx-reply>!send a &lt;b&gt;<br>c")
    assert html_after_fallback(content) == "!send a <b>\nc"


@given(st.text(alphabet="> \n<@abc!", max_size=200))
def test_any_body_is_read_without_error(body: str) -> None:
    """Whatever the body, the reading returns a suffix of it."""
    assert body.endswith(after_fallback(reply_content(body), reply=True))


def _nested(levels: int) -> str:
    """A reply chain ``levels`` deep, each level quoting all the ones before it again."""
    lines = [f"{'> ' * depth}<@u{depth}:hs> level {depth}" for depth in range(levels, 0, -1)]
    return "\n".join(lines) + "\n\n!ps"


def _megabytes(size: int) -> str:
    return f"> <{BOT}> " + "> " * (size // 2) + "\n\n!ps"


def _nested_html(levels: int) -> str:
    return "<mx-reply>" * levels + "q" + "</mx-reply>" * levels + "!ps"


def _body(text: str) -> str | None:
    return after_fallback(reply_content(text), reply=True)


def _seconds(read: Callable[[str], str | None], text: str) -> float:
    """The best of three readings of ``text``."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        read(text)
        runs.append(time.perf_counter() - start)
    return max(min(runs), 1e-6)


@pytest.mark.parametrize(
    ("make", "read", "small"),
    [(_nested, _body, 125), (_megabytes, _body, 250_000), (_nested_html, strip_mx_reply, 10_000)],
    ids=["nested-chain", "megabytes", "nested-mx-reply"],
)
def test_a_huge_fallback_is_read_in_linear_time(
    make: Callable[[int], str], read: Callable[[str], str | None], small: int
) -> None:
    """A chain of 1,000 nested quotes, megabytes of quote, or thousands of nested mx-reply
    blocks: time grows with the input's length. An 8× longer reply chain is 64× the text,
    so a reading quadratic in it would take 64× as long per character; the bound allows
    a generous 8× (timing on a busy machine is noisy)."""
    short, long = make(small), make(small * 8)
    assert read(long) == "!ps"
    per_char = (_seconds(read, long) / len(long)) / (_seconds(read, short) / len(short))
    assert per_char < 8
