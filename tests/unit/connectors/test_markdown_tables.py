"""Tables rendered without a whole parse read exactly as the parsed ones do."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render.fleet import table
from connectors import markdown, markdown_discord
from connectors.markdown_tables import find_tables

_CELL_TEXT = st.sampled_from(
    [
        "a001",
        "running",
        "",
        "  spaced  ",
        "x \\| y",
        "`code`",
        "`a | b`",
        "**bold**",
        "~~gone~~",
        "_it_",
        "[link](http://x.y)",
        "<http://x.y>",
        "&amp;",
        '"quoted"',
        "漢字",
        "e\u0301",
        "–",
        "a\\b",
        "\\",
    ]
)
_ALIGN = st.sampled_from(["---", ":--", "--:", ":-:", "-"])


@st.composite
def _table(draw: st.DrawFn) -> str:
    columns = draw(st.integers(1, 4))
    head = [draw(_CELL_TEXT) or "h" for _ in range(columns)]
    lead, trail = draw(st.booleans()), draw(st.booleans())

    def row(cells: list[str]) -> str:
        return ("| " if lead else "") + " | ".join(cells) + (" |" if trail else "")

    delimiter = draw(st.sampled_from(["|", ""])) + "|".join(draw(_ALIGN) for _ in head) + "|"
    if draw(st.integers(0, 9)) == 0:
        delimiter = "|" + "|".join("---" for _ in range(columns + 1)) + "|"  # a count mismatch
    body = [
        row([draw(_CELL_TEXT) for _ in range(draw(st.integers(0, columns + 1)))])
        for _ in range(draw(st.integers(0, 4)))
    ]
    return "\n".join(["| " + " | ".join(head) + " |", delimiter, *body])


_BLOCK = st.one_of(
    _table(),
    st.sampled_from(
        [
            "plain text",
            "text with a | pipe",
            "# heading",
            "- item\n- item",
            "- item\n\n  ```\n  | in | fence |\n  |---|---|",
            "> quoted | pipe\n> |---|",
            "```\n| a | b |\n|---|---|\n```",
            "~~~\n| a |\n|---|",
            "````\n```\n| a |\n|---|\n````",
            "    | indented | code |\n    |---|---|",
            "[ref]: http://x.y",
            "see [ref]",
            "---",
            "| not | a table |",
            "a\r\nb",
            "- |---|",
            "1. ```\n   code",
            "- item\n\n      code",
            "> ```\n> x",
            "   ```\n| a |\n|---|\n   ```",
            "use ```x``` inline",
            "- a\n\n  - b",
        ]
    ),
)


@st.composite
def _message(draw: st.DrawFn) -> str:
    blocks = draw(st.lists(_BLOCK, min_size=1, max_size=5))
    out = blocks[0]
    for block in blocks[1:]:
        out += draw(st.sampled_from(["\n", "\n\n", "\n\n\n"])) + block
    return out + draw(st.sampled_from(["", "\n"]))


def _discord_whole(text: str) -> str:
    if "|" not in text and "``" not in text and "~~~" not in text:
        return text
    return markdown_discord._discord_whole(text)


@settings(max_examples=800, deadline=None)
@given(_message())
def test_every_rendering_equals_the_whole_parse(text: str) -> None:
    assert markdown.to_plain(text) == markdown._plain_whole(text)
    assert markdown.to_html(text) == markdown._html_whole(text)
    assert markdown_discord.to_discord(text) == _discord_whole(text)


def test_a_reply_table_is_found_without_a_parse() -> None:
    reply = (
        "Fleet:\n\n" + table(["name", "state"], [["a1", "running"], ["a|2", "`x`"]]) + "\n\n2 of 2"
    )
    found = find_tables(reply.split("\n"))
    assert found is not None and len(found) == 1
    assert found[0].head == ("name", "state")
    assert found[0].body == (("a1", "running"), ("a|2", "`x`"))
    assert markdown.to_plain(reply) == (
        "Fleet:\n\nname  state\n----  -------\na1    running\na|2   x\n\n2 of 2"
    )


def test_what_a_scan_cannot_settle_is_parsed_whole() -> None:
    after_paragraph = "text\n| a | b |\n|---|---|\n| 1 | 2 |"
    assert find_tables(after_paragraph.split("\n")) is None
    run_on = "| a |\n|---|\n| 1 |\nlazy row"
    assert find_tables(run_on.split("\n")) is None
    for text in (after_paragraph, run_on):
        assert markdown.to_plain(text) == markdown._plain_whole(text)
