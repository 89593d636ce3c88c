"""Tests for fleet.metering.wire.sse: the incremental server-sent-events parser."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fleet.metering.counting.usage import DELTA_TEXT, SKIP_PREFIXES
from fleet.metering.wire import sse
from fleet.metering.wire.sse import MAX_EVENT, SseEvent, SseParser


def triples(events: list[SseEvent]) -> list[tuple[str | None, bytes, bytes]]:
    return [(event.name, event.data, event.raw) for event in events]


def feed_all(chunks: list[bytes]) -> tuple[list[SseEvent], bytes, SseParser]:
    parser = SseParser()
    events: list[SseEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events, parser.finish(), parser


# --- A generated stream, with the events a reader must see in it ------------------------

# Field values never hold a line ending; anything else goes, colons and spaces included.
_VALUE = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)))
_NAME = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), min_size=1
)
_EOL = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def _event(draw: st.DrawFn) -> tuple[str, str | None, str]:
    """One event's text, with the name and data a parser must read out of it."""
    eol = draw(_EOL)
    name = draw(st.none() | _NAME)
    data = draw(st.lists(_VALUE, max_size=3))
    lines = [f"data: {value}" for value in data]
    if name is not None:
        lines.insert(draw(st.integers(0, len(lines))), f"event: {name}")
    for _ in range(draw(st.integers(0, 2))):
        lines.insert(draw(st.integers(0, len(lines))), f": {draw(_VALUE)}")
    if not lines:
        lines = [": keep-alive"]
    return eol.join(lines) + eol + eol, name, "\n".join(data)


@st.composite
def _stream(draw: st.DrawFn) -> tuple[bytes, list[tuple[str | None, bytes]], list[bytes]]:
    """A stream (maybe ending mid-event), its events' (name, data), and a chunking of it."""
    events = draw(st.lists(_event(), max_size=6))
    text = "".join(event for event, _, _ in events)
    tail = draw(st.sampled_from(["", "data: unfinished", "event: x\ndata: half\n"]))
    stream = (text + tail).encode()
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    expected = [(name, data.encode()) for _, name, data in events]
    return stream, expected, chunks


@given(_stream())
def test_any_chunking_yields_the_same_events_and_loses_no_byte(
    case: tuple[bytes, list[tuple[str | None, bytes]], list[bytes]],
) -> None:
    """However a stream is cut into chunks, the events are the same, and their raw bytes
    plus what finish() returns are exactly the stream."""
    stream, expected, chunks = case
    whole, whole_rest, _ = feed_all([stream])
    events, rest, parser = feed_all(chunks)
    assert events == whole
    assert rest == whole_rest
    assert [(event.name, event.data) for event in events] == expected
    assert b"".join(event.raw for event in events) + rest == stream
    assert parser.broken is None


# --- The wire format, case by case --------------------------------------------------------


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_each_line_ending_separates_events(eol: bytes) -> None:
    """LF, CRLF and CR line endings each end lines, and a blank line ends an event."""
    first = b"event: message_start" + eol + b'data: {"a":1}' + eol + eol
    second = b'data: {"b":2}' + eol + eol
    events, rest, _ = feed_all([first + second])
    assert triples(events) == [
        ("message_start", b'{"a":1}', first),
        (None, b'{"b":2}', second),
    ]
    assert rest == b""


def test_crlf_blank_line_split_between_chunks_is_found() -> None:
    """A CRLF blank line cut after its first CR still ends the event once complete."""
    parser = SseParser()
    assert parser.feed(b"data: x\r\n\r") == []
    assert triples(parser.feed(b"\n")) == [(None, b"x", b"data: x\r\n\r\n")]
    assert parser.finish() == b""


def test_comments_are_skipped_but_kept_in_raw() -> None:
    """Lines starting with ':' are comments: not data, yet part of the raw bytes."""
    raw = b": ping\ndata: hello\n: another\n\n"
    assert triples(feed_all([raw])[0]) == [(None, b"hello", raw)]


def test_a_comment_only_event_has_no_name_and_no_data() -> None:
    """A keep-alive comment on its own is an event with nothing in it."""
    assert triples(feed_all([b": keep-alive\n\n"])[0]) == [(None, b"", b": keep-alive\n\n")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    """Several data: lines make one payload, joined by LF whatever the line ending."""
    raw = b"data: one\r\ndata: two\r\ndata:\r\ndata: four\r\n\r\n"
    assert triples(feed_all([raw])[0]) == [(None, b"one\ntwo\n\nfour", raw)]


def test_only_one_leading_space_is_dropped_from_a_value() -> None:
    """`data:x` and `data: x` are the same; a second space belongs to the value."""
    events, _, _ = feed_all([b'data:x\n\ndata:  x\n\nevent:named\ndata: {"k": 1}\n\n'])
    assert [(event.name, event.data) for event in events] == [
        (None, b"x"),
        (None, b" x"),
        ("named", b'{"k": 1}'),
    ]


def test_last_event_line_names_the_event_and_other_fields_are_ignored() -> None:
    """The last `event:` wins; `id:`, `retry:` and unknown fields carry no data."""
    raw = b"event: a\nid: 7\nretry: 100\nevent: b\nfoo: bar\ndata: d\n\n"
    assert triples(feed_all([raw])[0]) == [("b", b"d", raw)]


def test_an_invalid_utf8_event_name_is_replaced_not_fatal() -> None:
    """A name that is not UTF-8 decodes with replacement characters."""
    events, _, _ = feed_all([b"event: \xff\ndata: x\n\n"])
    assert events[0].name == "\ufffd"


def test_unterminated_last_event_is_returned_by_finish_once() -> None:
    """The start of an event the stream never finished comes back from finish(), once."""
    parser = SseParser()
    assert triples(parser.feed(b"data: done\n\ndata: half")) == [(None, b"done", b"data: done\n\n")]
    assert parser.finish() == b"data: half"
    assert parser.finish() == b""


def test_an_event_of_exactly_max_event_bytes_is_still_parsed() -> None:
    """The limit is inclusive: MAX_EVENT buffered bytes do not break the parser."""
    parser = SseParser()
    body = b"data: " + b"x" * (MAX_EVENT - 6)
    assert parser.feed(body) == []
    assert parser.broken is None
    assert triples(parser.feed(b"\n\n")) == [(None, b"x" * (MAX_EVENT - 6), body + b"\n\n")]


def test_an_over_long_event_breaks_the_parser_and_finish_returns_its_bytes() -> None:
    """Past MAX_EVENT bytes without a blank line, the parser stops parsing for good;
    finish() returns what it held, events completed before it were still returned."""
    parser = SseParser()
    head = b"data: ok\n\n"
    long = b"data: " + b"y" * (MAX_EVENT - 5)  # one byte over
    assert triples(parser.feed(head + long)) == [(None, b"ok", head)]
    assert parser.broken == f"an event longer than {MAX_EVENT} bytes"
    assert parser.feed(b"\n\ndata: later\n\n") == []  # the caller passes these on itself
    assert parser.finish() == long
    assert parser.broken is not None


def test_the_limit_applies_to_what_is_buffered_not_to_a_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk far over the limit made of small events is fine; a small leftover that
    grows past the limit over several chunks is not."""
    monkeypatch.setattr(sse, "MAX_EVENT", 16)
    parser = SseParser()
    events = parser.feed(b"data: 0123456789\n\n" * 5)
    assert [event.data for event in events] == [b"0123456789"] * 5
    assert parser.broken is None
    assert parser.feed(b"data: 01234") == []
    assert parser.broken is None
    assert parser.feed(b"567890") == []
    assert parser.broken == "an event longer than 16 bytes"
    assert parser.finish() == b"data: 01234567890"


def test_skipped_prefixes_are_not_returned_but_parsing_goes_on() -> None:
    """Events starting with a skip prefix are dropped whole; the rest parse as usual,
    across chunk boundaries."""
    stream = (
        b"event: message_start\ndata: {}\n\n"
        b'event: content_block_delta\ndata: {"t": 1}\n\n'
        b"event: ping\ndata: {}\n\n"
        b"event: message_stop\ndata: {}\n\n"
    )
    parser = SseParser((b"event: content_block_delta", b"event: ping"))
    events = [event for i in range(0, len(stream), 5) for event in parser.feed(stream[i : i + 5])]
    assert [event.name for event in events] == ["message_start", "message_stop"]
    assert parser.finish() == b""


# --- mixed line endings and big events ----------------------------------------------------

MIXED = [
    (b"data: a\r\n\n", [b"a"]),  # CRLF then LF: a blank line
    (b"data: a\n\r\n", [b"a"]),  # LF then CRLF
    (b"data: a\r\n\r", [b"a"]),  # CRLF then CR
    (b"data: a\r\ndata: b\rdata: c\n\r", [b"a\nb\nc"]),
    (b"data: a\n\rdata: b\r\r\n", [b"a", b"b"]),
]


@pytest.mark.parametrize(("stream", "datas"), MIXED)
def test_line_endings_mixed_in_one_stream_frame_events_at_blank_lines(
    stream: bytes, datas: list[bytes]
) -> None:
    """CRLF, LF and CR may be mixed in one stream: any of them ends a line, and an empty
    line ends the event, whichever way the stream is cut into chunks."""
    for cut in range(len(stream) + 1):
        events, rest, _ = feed_all([stream[:cut], stream[cut:]])
        seen = [event.data for event in events if event.raw.strip(b"\r\n")]
        if rest.strip(b"\r\n"):  # a last CR may be half a CRLF: the stream's end decides
            seen.append(SseEvent(rest).data)
        assert seen == datas, cut
        assert b"".join(event.raw for event in events) + rest == stream


def test_a_crlf_split_between_chunks_is_one_line_ending() -> None:
    """A CR ending one chunk and an LF starting the next are one line ending, not a
    line and a blank line."""
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r") == []
    assert [e.data for e in parser.feed(b"\n\r\n")] == [b"a\nb"]


def _feed_time(size: int, chunk: int = 1024) -> float:
    parser = SseParser(max_event=64 * 1024 * 1024)
    body = b"data: " + b"x" * size
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    started = time.process_time()
    for piece in pieces:
        assert parser.feed(piece) == []
    [event] = parser.feed(b"\r\n\r\n")
    elapsed = time.process_time() - started
    assert len(event.raw) == len(body) + 4
    return elapsed


def test_a_big_event_in_small_chunks_costs_time_linear_in_its_size() -> None:
    """A 10 MB event fed in 1 KiB chunks costs about ten times a 1 MB one, not a hundred
    times: the buffer is neither copied nor scanned again on each chunk."""
    small = min(_feed_time(1_000_000) for _ in range(5))
    big = min(_feed_time(10_000_000) for _ in range(3))
    assert big < 40 * small, f"10 MB took {big / small:.0f}x 1 MB"  # quadratic: ~100x


# --- Counting the deltas' text as it passes ---------------------------------------------


@example(['say "text":"x" \\', "é\n"], [3, 7], {})
@example(["🎉 \u2028", '"text": "y"'], [5], {})
@given(
    st.lists(st.text(max_size=40), max_size=12),
    st.lists(st.integers(min_value=1, max_value=64), max_size=30),
    st.sampled_from(
        [
            {"separators": (",", ":"), "ensure_ascii": False},
            {"separators": (",", ":")},
            {},
            {"separators": (" ,\t", " \t: ")},
        ]
    ),
)
def test_count_sums_each_deltas_text_however_the_stream_is_cut(
    texts: list[str], cuts: list[int], spelling: dict[str, Any]
) -> None:
    """Every delta's text is counted once, as the UTF-8 bytes of the text its JSON string
    stands for, skipped events too, whatever the chunks and however the JSON is spaced or
    escaped; a quote or ``"text":"`` inside the text is text."""
    head = b'event: message_start\ndata: {"type":"message_start","message":{"content":[]}}\n\n'
    deltas = [
        b"event: content_block_delta\ndata: "
        + json.dumps(
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": t}},
            **spelling,
        ).encode()
        + b"\n\n"
        for t in texts
    ]
    stream = head + b"".join(deltas)
    parser = SseParser(SKIP_PREFIXES["anthropic"], count=DELTA_TEXT["anthropic"])
    at = 0
    for size in [*cuts, len(stream)]:
        parser.feed(stream[at : at + size])
        at += size
    assert parser.counted == sum(len(t.encode()) for t in texts)


def test_text_size_counts_escapes_as_what_they_stand_for() -> None:
    """``\\u00e9`` counts as é's two bytes, a surrogate pair as its emoji's four, ``\\n``
    as one; text that is not JSON after all counts as its bytes."""
    assert sse.text_size([b"caf\\u00e9", b"caf\xc3\xa9", b"\\ud83c\\udf89\\n"]) == 5 + 5 + 5
    assert sse.text_size([b"\\x", b"ok"]) == 4


# --- LF-only streams, cut a chunk at a time ---------------------------------------------


def _framed(stream: bytes) -> tuple[list[bytes], bytes]:
    """The events of an LF-only stream by the rule itself, a line at a time: an event
    ends at an empty line (so a blank line right after an event's end is an event)."""
    events: list[bytes] = []
    start = at = 0
    while (end := stream.find(b"\n", at)) >= 0:
        if end == at:  # an empty line
            events.append(stream[start : end + 1])
            start = end + 1
        at = end + 1
    return events, stream[start:]


_LF_LINE = st.sampled_from(
    [b"", b"", b"event: ping", b"event: content_block_delta", b"event: message_delta",
     b'data: {"text":"a"}', b"data: x", b": note"]
)  # fmt: skip


@given(
    st.lists(_LF_LINE, max_size=30),
    st.lists(st.integers(1, 40), max_size=20),
    st.sampled_from([(), (b"event: content_block_delta", b"event: ping")]),
)
def test_lf_streams_are_framed_by_their_empty_lines_however_cut(
    lines: list[bytes], cuts: list[int], skip: tuple[bytes, ...]
) -> None:
    """An LF-only stream with empty events, runs of blank lines and skipped events gives
    the events the line-by-line rule gives, whatever its chunks; skipped ones left out."""
    stream = b"".join(line + b"\n" for line in lines) + b"data: tail"
    expected, rest = _framed(stream)
    parser = SseParser(skip)
    events: list[SseEvent] = []
    at = 0
    for size in [*cuts, len(stream)]:
        events += parser.feed(stream[at : at + size])
        at += size
    assert [event.raw for event in events] == [
        raw for raw in expected if not (skip and raw.startswith(skip))
    ]
    assert parser.finish() == rest


def test_a_cr_after_lf_only_chunks_carries_on_mid_event() -> None:
    """A stream that was LF-only and then uses CR goes on from where the last line began."""
    parser = SseParser()
    assert parser.feed(b"event: a\ndata: x") == []
    assert parser.feed(b"y\r\r") == [SseEvent(b"event: a\ndata: xy\r\r")]
    assert parser.feed(b"data: z\n\n") == [SseEvent(b"data: z\n\n")]


def test_the_count_is_exact_past_what_is_held_for_it() -> None:
    """Deltas beyond COUNT_HELD bytes are searched as they go and the sum stays exact."""
    delta = b'event: content_block_delta\ndata: {"delta":{"text":"abcd"}}\n\n'
    parser = SseParser(SKIP_PREFIXES["anthropic"], count=DELTA_TEXT["anthropic"])
    times = 2 * sse.COUNT_HELD // len(delta) + 3
    for _ in range(times):
        parser.feed(delta)
        assert parser._held <= sse.COUNT_HELD
    parser.feed(delta * 3)
    assert parser.counted == 4 * (times + 3)
