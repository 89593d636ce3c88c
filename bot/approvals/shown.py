"""What an ask shows the operator, made visible: the text an answer binds to, with nothing in
it hidden, forged or pushed out of sight.

An agent writes the tool's name, the command line, the path and the diff of its asks; an
answer allows exactly that (:func:`fleet.ledger.records.approvals.ask_digest`). So before any of it
reaches an alert:

* characters chat would hide (zero-width, bidi controls, tag characters, controls but tab
  and line feed) and blanks other than the space and the tab (a no-break space, U+3000)
  are shown as their code points, ``[U+200B]``;
* a word mixing scripts (``gіthub.com`` with a Cyrillic ``і``) shows its letters outside
  ASCII as code points too, so a homoglyph cannot pass for the letter it mimics (both by
  :func:`fleet.redaction.invisible.reveal`, the rule every surface shows them by);
* a tool's name is one line, short: a line break in it cannot forge a second line of the
  alert (``✅ Allowed once by …``);
* long runs of blanks (any, Unicode's included) and of empty lines are shown counted
  (``⟪1,600 spaces⟫``), so no padding pushes the end of a command out of view;
* a text too long for one message is cut in the middle, its head and its tail both shown,
  with what was cut counted: the dangerous part of a command is as often at its end.

Pure: text in, text out; and who started the agent that asked, the one person besides
operators who answers it (:func:`is_starter`, :func:`starter_id`).
"""

from __future__ import annotations

import re
from typing import Final

from connectors.base import UserId
from fleet.ledger.records.approvals import ApprovalRequest
from fleet.notices import who_on
from fleet.redaction.invisible import reveal

SHOWN_LINES: Final = 40
SHOWN_CHARS: Final = 1500
"""How much of a command or diff the message shows (the ledger keeps it all): with the
rest of the message, it fits one Discord embed (4,096 characters), so a reaction on the one
message answers it."""
TOOL_CHARS: Final = 64  # a tool's name longer than this is cut, in the middle
BLANK_RUN: Final = 8  # this many spaces or tabs in a row and more are shown counted
EMPTY_RUN: Final = 3  # this many empty lines in a row and more are shown counted

_BLANKS: Final = re.compile(f"[^\\S\\n]{{{BLANK_RUN},}}")  # any blank but a line break
_EMPTIES: Final = re.compile(f"\n(?:[^\\S\\n]*\n){{{EMPTY_RUN},}}")


def tool_name(tool: str) -> str:
    """A tool's name on one line: line breaks and tabs shown as code points, like every
    hidden character, and cut in the middle past :data:`TOOL_CHARS`."""
    flat = reveal(tool).replace("\n", "[U+000A]").replace("\t", "[U+0009]")
    return one_line(flat, TOOL_CHARS)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line (blank runs made one space), revealed, and cut in the middle
    past ``limit`` characters with both ends shown."""
    flat = " ".join(reveal(text).split())
    if len(flat) <= limit:
        return flat
    head = (limit - 1) // 2
    tail = limit - 1 - head
    return f"{flat[:head]}…{flat[len(flat) - tail :]}"


def inline_code(text: str) -> str:
    """``text`` on one line as inline code no backtick in it can close, invisible
    characters shown (a pattern, a command in a one-line notice)."""
    flat = " ".join(reveal(text).split())
    longest = max((len(m) for m in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def shown_lines(text: str) -> list[str]:
    """The lines of ``text`` as an alert's code block shows them: revealed, long blank runs
    counted, and cut in the middle (head and tail kept) past :data:`SHOWN_LINES` lines or
    :data:`SHOWN_CHARS` characters, saying how much was cut."""
    counted = _BLANKS.sub(_count_blanks, _EMPTIES.sub(_count_empties, text))
    shown = reveal(counted)
    lines = shown.split("\n")
    if len(lines) > SHOWN_LINES:
        head = lines[: SHOWN_LINES // 2]
        tail = lines[len(lines) - (SHOWN_LINES // 2 - 1) :]
        cut = lines[len(head) : len(lines) - len(tail)]
        chars = sum(len(line) + 1 for line in cut)
        lines = [*head, f"⟪… {len(cut):,} lines ({chars:,} characters) cut here …⟫", *tail]
    return _cut_chars(lines)


def _cut_chars(lines: list[str]) -> list[str]:
    total = sum(len(line) + 1 for line in lines) - 1
    if total <= SHOWN_CHARS:
        return lines
    text = "\n".join(lines)
    keep = SHOWN_CHARS // 2
    head, tail = text[:keep], text[len(text) - keep :]
    marker = f"⟪… {len(text) - 2 * keep:,} characters cut here …⟫"
    return f"{head}\n{marker}\n{tail}".split("\n")


def _count_blanks(found: re.Match[str]) -> str:
    run = found.group(0)
    what = "spaces" if set(run) == {" "} else "blanks"
    return f" ⟪{len(run):,} {what}⟫ "


def _count_empties(found: re.Match[str]) -> str:
    empties = found.group(0).count("\n") - 1
    return f"\n⟪{empties:,} empty lines⟫\n"


def is_starter(request: ApprovalRequest, connector: str, sender: str) -> bool:
    """Whether ``sender`` on ``connector`` started the agent that asked."""
    who = who_on(request.starter)
    return who is not None and who == (sender, connector)


def starter_id(request: ApprovalRequest, connector: str) -> UserId | None:
    """The agent's starter, when they used ``connector``: the user an alert mentions."""
    who = who_on(request.starter)
    return UserId(who[0]) if who is not None and who[1] == connector else None
