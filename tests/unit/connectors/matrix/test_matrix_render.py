"""Tests for connectors.matrix.messages.render: notices, relations, size-checked splitting,
PNG images, files."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.markdown import to_html
from connectors.matrix.messages import render

THREAD = "$thread-root-event-id-aaaaaaaaaaaaaaaaaaaaaaaaaaa"
REPLY = "$replied-to-event-id-bbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def png(width: int, height: int) -> bytes:
    """A complete, valid grey-scale PNG of ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def encoded_size(content: Any) -> int:
    """Bytes of ``content`` as compact UTF-8 JSON, computed independently of the module."""
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def visible(text: str) -> str:
    """``text`` without whitespace: what splitting must keep (it may drop blanks at cuts)."""
    return "".join(text.split())


# --- relation ------------------------------------------------------------------------------


def test_relation_none_outside_thread_and_reply() -> None:
    """A message neither in a thread nor replying carries no relation."""
    assert render.relation(None, None) is None
    assert render.relation(None, None, first=False) is None


def test_relation_plain_reply() -> None:
    """Outside a thread, a reply is a bare ``m.in_reply_to``."""
    assert render.relation(None, REPLY) == {"m.in_reply_to": {"event_id": REPLY}}


def test_relation_later_parts_of_plain_reply_have_none() -> None:
    """Outside a thread only the first part of a split reply is a reply."""
    assert render.relation(None, REPLY, first=False) is None


def test_relation_thread_without_reply_falls_back_to_root() -> None:
    """In a thread with no reply target, ``m.in_reply_to`` is the root and is a fallback."""
    assert render.relation(THREAD, None) == {
        "rel_type": "m.thread",
        "event_id": THREAD,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": THREAD},
    }


def test_relation_thread_reply_is_genuine_on_first_part() -> None:
    """A reply inside a thread names its target and is not a fallback."""
    assert render.relation(THREAD, REPLY) == {
        "rel_type": "m.thread",
        "event_id": THREAD,
        "is_falling_back": False,
        "m.in_reply_to": {"event_id": REPLY},
    }


def test_relation_thread_reply_later_parts_fall_back() -> None:
    """Later parts of a thread reply carry the fallback to the root, not the reply target."""
    assert render.relation(THREAD, REPLY, first=False) == {
        "rel_type": "m.thread",
        "event_id": THREAD,
        "is_falling_back": True,
        "m.in_reply_to": {"event_id": THREAD},
    }


# --- notice ------------------------------------------------------------------------------


def test_notice_is_m_notice_with_html() -> None:
    """A notice has the markdown as body and its HTML rendering as formatted_body."""
    content = render.notice("**done** <now>", None)
    assert content == {
        "msgtype": "m.notice",
        "body": "**done** <now>",
        "format": "org.matrix.custom.html",
        "formatted_body": to_html("**done** <now>"),
    }
    assert "<strong>done</strong>" in content["formatted_body"]
    assert "&lt;now&gt;" in content["formatted_body"]


def test_notice_without_relation_has_no_relates_to() -> None:
    """No relation means no ``m.relates_to`` key at all (not a null)."""
    assert "m.relates_to" not in render.notice("hi", None)


def test_notice_carries_relation() -> None:
    """A given relation is put under ``m.relates_to`` unchanged."""
    relation = render.relation(THREAD, REPLY)
    assert render.notice("hi", relation)["m.relates_to"] == relation


def test_content_size_counts_compact_utf8_json() -> None:
    """Size is bytes of compact JSON with non-ASCII kept as UTF-8, not ``\\u`` escapes."""
    assert render.content_size({"body": "é"}) == len('{"body":"é"}'.encode())
    assert render.content_size({"body": "漢"}) == 14


# --- splitting ---------------------------------------------------------------------------


def test_short_markdown_is_one_notice() -> None:
    """Markdown that fits gives one notice with the text unchanged."""
    [content] = render.notices("hello *world*", thread_id=THREAD, in_reply_to=REPLY)
    assert content["body"] == "hello *world*"
    assert content["m.relates_to"] == render.relation(THREAD, REPLY)


def test_blank_markdown_gives_no_notices() -> None:
    """Nothing to say, nothing posted."""
    assert render.notices("  \n\n ") == []
    assert render.parts("") == []


def test_split_notices_in_thread_first_replies_rest_fall_back() -> None:
    """Of a split thread reply, the first part replies; the rest fall back to the root."""
    markdown = "\n".join(f"line {n} " + "x" * 50 for n in range(100))
    contents = render.notices(markdown, thread_id=THREAD, in_reply_to=REPLY, limit=500)
    assert len(contents) > 1
    assert contents[0]["m.relates_to"] == render.relation(THREAD, REPLY)
    for content in contents[1:]:
        assert content["m.relates_to"] == render.relation(THREAD, REPLY, first=False)


def test_split_notices_outside_thread_only_first_replies() -> None:
    """Of a split plain reply, only the first part has a relation."""
    markdown = "\n".join(f"line {n} " + "x" * 50 for n in range(100))
    contents = render.notices(markdown, in_reply_to=REPLY, limit=500)
    assert len(contents) > 1
    assert contents[0]["m.relates_to"] == {"m.in_reply_to": {"event_id": REPLY}}
    assert all("m.relates_to" not in content for content in contents[1:])


def test_split_respects_markdown_limit() -> None:
    """Each part is at most ``limit`` characters of markdown."""
    markdown = "\n".join("word " * 20 for _ in range(200))
    split = render.parts(markdown, limit=300)
    assert len(split) > 1
    assert all(len(part) <= 300 for part in split)
    assert visible("".join(split)) == visible(markdown)


@pytest.mark.parametrize(
    "line",
    ["<&>" * 30, "漢字仮名交じり文" * 10, "\"'<>&" * 20, "😀🎉" * 40],
    ids=["html-escapes", "cjk", "quotes", "emoji"],
)
def test_heavy_content_stays_under_default_byte_budget(line: str) -> None:
    """Content whose HTML and UTF-8 outgrow the markdown still fits 48,000 bytes per event."""
    markdown = "\n".join([line] * 1500)
    assert len(markdown.encode()) > render.MAX_CONTENT_BYTES
    contents = render.notices(markdown, thread_id=THREAD, in_reply_to=REPLY)
    assert len(contents) > 1
    assert all(encoded_size(content) <= render.MAX_CONTENT_BYTES for content in contents)
    assert visible("".join(content["body"] for content in contents)) == visible(markdown)


def test_html_heavy_part_is_split_below_markdown_limit() -> None:
    """A part within the character limit is split again when its encoding is over budget."""
    markdown = "\n".join(["<&>" * 20] * 100)  # 6,099 characters, one part by the char limit
    by_chars = render.parts(markdown, max_bytes=10**9)
    by_bytes = render.parts(markdown, max_bytes=8_000)
    assert by_chars == [markdown]
    assert len(by_bytes) > 1
    assert all(render.content_size(render.notice(part, None)) <= 8_000 for part in by_bytes)


@pytest.mark.parametrize("max_bytes", [1_000, 1_500])
def test_later_parts_fit_when_thread_root_id_is_longer_than_reply_target(max_bytes: int) -> None:
    """Parts after the first, whose fallback names the longer root id, still fit the budget."""
    thread, reply = "$" + "t" * 200 + ":example.org", "$r:hs"
    markdown = "\n".join(f"line {n} " + "x" * 50 for n in range(40))
    contents = render.notices(
        markdown, thread_id=thread, in_reply_to=reply, limit=1_000, max_bytes=max_bytes
    )
    assert len(contents) > 2
    assert all(encoded_size(content) <= max_bytes for content in contents)


_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("<&>\"'\\ \n\t#*_-|[]()!"),
        st.sampled_from("漢字かなカナ한글😀é"),
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
    ),
    max_size=6_000,
)
_EVENT_ID = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789:.-", min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(
    markdown=_TEXT.filter(lambda text: "`" not in text and "~" not in text),
    max_bytes=st.integers(min_value=1_500, max_value=20_000),
    thread=st.none() | _EVENT_ID.map(lambda tail: "$" + tail),
    reply=st.none() | _EVENT_ID.map(lambda tail: "$" + tail),
)
def test_split_property_every_event_fits_and_nothing_is_lost(
    markdown: str, max_bytes: int, thread: str | None, reply: str | None
) -> None:
    """Every notice's encoded JSON fits ``max_bytes`` and the parts keep all visible text."""
    contents = render.notices(
        markdown, thread_id=thread, in_reply_to=reply, limit=1_000, max_bytes=max_bytes
    )
    assert all(encoded_size(content) <= max_bytes for content in contents)
    assert all(content["body"].strip() for content in contents)
    assert visible("".join(content["body"] for content in contents)) == visible(markdown)


# --- images ------------------------------------------------------------------------------


def test_png_size_reads_ihdr() -> None:
    """Width and height come from the IHDR chunk."""
    assert render.png_size(png(3, 2)) == (3, 2)
    assert render.png_size(png(1, 700)) == (1, 700)


def test_png_size_large_dimensions() -> None:
    """Dimensions are unsigned 32-bit big-endian."""
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 40000, 3)
    assert render.png_size(header) == (40000, 3)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n",
        png(2, 2)[:23],
        b"\xff\xd8\xff\xe0" + b"\0" * 40,
        b"GIF89a" + b"\0" * 40,
        png(2, 2)[:12] + b"IDAT" + png(2, 2)[16:],
    ],
    ids=["empty", "signature-only", "truncated", "jpeg", "gif", "no-ihdr-first"],
)
def test_png_size_rejects_non_png(data: bytes) -> None:
    """Anything without the PNG signature followed by IHDR is a ValueError."""
    with pytest.raises(ValueError, match="not a PNG"):
        render.png_size(data)


def test_image_content() -> None:
    """An ``m.image`` names the file and mxc URL and describes the PNG's type, size and pixels."""
    data = png(4, 3)
    assert render.image("chart.png", "mxc://hs/abc", data) == {
        "msgtype": "m.image",
        "body": "chart.png",
        "url": "mxc://hs/abc",
        "info": {"mimetype": "image/png", "size": len(data), "w": 4, "h": 3},
    }


def test_image_in_thread_carries_relation() -> None:
    """An image posted in a thread carries the thread relation."""
    relation = render.relation(THREAD, None)
    content = render.image("a.png", "mxc://hs/a", png(1, 1), relation)
    assert content["m.relates_to"] == relation


def test_image_rejects_non_png() -> None:
    """Building an image from bytes that are not a PNG raises ValueError."""
    with pytest.raises(ValueError):
        render.image("a.png", "mxc://hs/a", b"not a png")


def test_file_content_plain_and_encrypted() -> None:
    """An ``m.file`` names the file (body and filename), its type and size; in a thread it
    carries the relation; encrypted, ``file`` holds the URL with the keys and there is no
    plain ``url``."""
    relation = render.relation(THREAD, None)
    assert render.file("c1.diff", "text/x-diff", "mxc://hs/f", 12, relation) == {
        "msgtype": "m.file",
        "body": "c1.diff",
        "filename": "c1.diff",
        "info": {"mimetype": "text/x-diff", "size": 12},
        "url": "mxc://hs/f",
        "m.relates_to": relation,
    }
    keys = {"key": {"k": "K"}, "iv": "I", "hashes": {"sha256": "H"}, "v": "v2"}
    encrypted = render.file("c1.diff", "text/x-diff", "mxc://hs/e", 12, None, keys)
    assert encrypted["file"] == {**keys, "url": "mxc://hs/e"}
    assert "url" not in encrypted and "m.relates_to" not in encrypted


def test_an_alert_is_text_that_mentions_its_users_in_the_first_part_only() -> None:
    """m.text throughout; the first part has pills and m.mentions, later ones mention
    nobody (an empty m.mentions), and an alert naming nobody mentions nobody."""
    parts = render.notices("**x** failed\n\n" + "word " * 40, limit=64)
    assert len(parts) > 1
    first, *rest = render.alerting(parts, ["@ann:hs"])
    assert first["msgtype"] == "m.text"
    assert first["m.mentions"] == {"user_ids": ["@ann:hs"]}
    assert first["body"].startswith("@ann:hs: **x** failed")
    assert first["formatted_body"].startswith(
        '<p><a href="https://matrix.to/#/@ann:hs">@ann:hs</a>'
    )
    assert all(p["msgtype"] == "m.text" and p["m.mentions"] == {} for p in rest)
    (alone,) = render.alerting(render.notices("stalled"), [])
    assert alone["m.mentions"] == {} and alone["body"] == "stalled"
    assert parts[0]["msgtype"] == "m.notice"  # the routine form is untouched
