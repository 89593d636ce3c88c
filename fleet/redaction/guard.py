"""The one guard for short texts an agent (or a host, or a provider) chose — a model name,
a tool's name, an ask's subject, an exit reason, a CLI's version a host reports — before
any surface shows them: chat, the dashboard's pages, their JSON, ``/usage.csv``,
``/metrics``, a terminal.

:func:`guarded` makes such a text one plain line:

* **without a secret**: it passes the app's redactor (:mod:`fleet.redaction.redactor`:
  the agents' ``secret_env`` values, every key Fleetwarden holds, every credential shape)
  where the caller has it; a chat renderer has not, and needs not: every message it makes
  passes that redactor whole on its way (:mod:`bot.chat.redacting`);
* **nothing hidden**: where no secret was found, the characters a reader cannot see —
  bidi overrides, zero-width characters, a terminal's escapes (ESC, the C1 controls) —
  are shown as their code points, ``[U+202E]`` (:func:`~fleet.redaction.invisible.reveal`).
  Where a secret was found, or a redaction is still to come, they are taken out instead:
  shown, they would split a secret the redactor must see whole. With a secret found, the
  text then starts ``[hidden characters taken out]``, so a look-alike letter or a hidden
  space in the rest is never passed off as plain;
* **one line**: a line break shows as ``⏎`` and any run of blanks as one space, so
  nothing written on a second line can pass for a line of Fleetwarden's own
  (``✅ payroll finished after 2s``);
* **bounded**: past ``limit`` characters it is cut in the middle, both ends shown around
  ``…`` (where a redaction follows, it finds a secret cut at ``…`` or ``⏎`` too:
  :mod:`fleet.redaction.values`).

It never makes markup, and escapes none: that is each surface's own (Jinja's autoescape
on pages, :func:`bot.text.agent_text.escape` in chat markdown, the CSV and Prometheus writers,
a JSON encoder).

What another machine wrote into a message of ours — a host's error output, the reason a
run there ended, an SSH server's word — is quoted as theirs by :func:`says`
(``host box2 says “…”``): guarded, between curly quotes nothing of it can close.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from fleet.redaction.invisible import reveal, visible

SHORT: Final = 200
"""Characters of a guarded text at most, unless its caller says otherwise."""
LONGEST: Final = 64 * 1024
"""A longer text (a model's name of a megabyte) is cut to this before the redactor reads
it: its middle is cut away by the bound anyway, and a secret whole within this length (a
PEM key) is still found whole where the bound leaves any of it."""
LINE_BREAK: Final = "⏎"
HIDDEN: Final = "[hidden characters taken out]"
"""What starts a guarded text that held a secret and characters a reader cannot see: shown
as code points they would split the secret, so they are taken out, and this says so."""
_ANY_BREAK: Final = re.compile(r"\r\n?|[\u2028\u2029\x85]")  # as visible() reads them
_BREAKS: Final = re.compile(r"\s*\n\s*")
_BLANKS: Final = re.compile(r"\s+")


def guarded(
    text: str | None, redact: Callable[[str], str] | None = None, limit: int = SHORT
) -> str:
    """``text`` as one plain line of at most ``limit`` characters, redacted by ``redact``
    (the app's redactor; :func:`~fleet.redaction.invisible.visible` where there is none
    and nothing redacts after, as in a terminal) or, without one, ready for the redaction
    that follows (the module says how)."""
    if not text:
        return ""
    if len(text) > LONGEST:
        text = cut(text, LONGEST)
    text = _ANY_BREAK.sub("\n", text)  # every kind of line break is one, shown as ⏎
    if redact is None:
        shown = visible(text)
    else:
        redacted, seen = redact(text), visible(text)
        if redacted == seen:
            shown = reveal(text)
        elif seen != text:  # taken out to find the secret whole: said, never silent
            shown = f"{HIDDEN} {redacted}"
        else:
            shown = redacted
    return cut(one_line(shown), limit)


def says(who: str, text: str | None, limit: int = SHORT) -> str:
    """What ``who`` (``host box2``) wrote, quoted as its words on a line of ours:
    ``host box2 says “…”``, the words guarded (one line, bounded, nothing hidden; ready for
    the redaction that follows) and their own curly quotes made straight, so the quote ends
    where ours does. Chat escapes what is quoted so (:func:`bot.text.agent_text.quotes_escaped`):
    Fleetwarden's own messages put nothing else between curly quotes."""
    return f"{who} says {quote(text, limit)}"


def quote(text: str | None, limit: int = SHORT) -> str:
    """``text``, another's words, between curly quotes on a line of ours: guarded as
    :func:`says` guards them, so chat escapes them whole and the quote ends where ours does."""
    return f"“{guarded(text, limit=limit).translate(_STRAIGHT)}”"


_STRAIGHT: Final = str.maketrans("“”", '""')


def one_line(text: str) -> str:
    """``text`` with each line break (and the blanks around it) shown as `` ⏎ ``, and
    every other run of blanks made one space."""
    flat = _BREAKS.sub(f" {LINE_BREAK} ", text.strip())
    return _BLANKS.sub(" ", flat)


def cut(text: str, limit: int) -> str:
    """``text``, or past ``limit`` characters its head and tail around ``…``."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    tail = limit - 1 - head
    return f"{text[:head]}…{text[len(text) - tail :]}" if tail else text[:head] + "…"
