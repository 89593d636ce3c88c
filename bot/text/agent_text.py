"""Text an agent wrote, shown as the agent's: never as Fleetwarden's own words, never as
markup.

Everything an agent wrote that reaches chat — its messages and output lines in the feed,
``logs``, ``watch``, the last message in a run's summary, the reasons its CLI gives — is
rendered through here:

* :func:`escape` makes it plain characters in every dialect the connectors render
  (CommonMark with tables and strikethrough for Matrix's HTML and the console, Discord's
  markdown): a backslash before each character that could open markup anywhere in a line
  (emphasis, code, strikethrough, spoilers, links, autolinks and mentions, HTML entities)
  and before what opens a block at a line's start (headings, quotes, lists, rules,
  setext underlines); indentation becomes no-break spaces, so it is not an indented
  code block. A link stays as written, ``[label](https://…)``: its target shows, and
  nothing is clickable under another name.
* :func:`quoted` puts it in a block quote, every line marked, under a line naming the
  agent (its caller's): Fleetwarden's own notices are never quoted, so a line an agent
  prints that reads like one (``⏹ c1 stopped after 2s``) still shows as the agent's.

* :func:`said` puts a short text on one line of ours: a model's name, the reason a run
  ended (which the agent's host may have written), passed through the guard every surface
  uses (:mod:`fleet.redaction.guard`) and escaped.
* :func:`quotes_escaped` makes a message of Fleetwarden's own (an error's, a host's
  state) chat markdown: the words it quotes as another's (``host box2 says “…”``, already
  one guarded line: :func:`fleet.redaction.guard.says`) escaped, the rest kept as written.

Raw output lines go in a code block inside the quote (:func:`bot.render.fleet.code_block` picks a
fence no line can close; :func:`connectors.markdown_discord.to_discord` makes it one Discord
cannot be broken out of). Invisible and bidi-control characters are the redactor's to
remove (:mod:`fleet.redaction.invisible`): it sees every text on its way to chat. They
are removed here too, before the text is split into lines: a carriage return or a line
separator the redactor turns into a line break must not start a line that is not marked.
"""

from __future__ import annotations

import re
from typing import Final

from fleet.redaction.guard import SHORT, guarded
from fleet.redaction.invisible import visible

_ANYWHERE: Final = frozenset("\\`*_~[]<>&|")
_AT_START: Final = frozenset("#>+-=")
_NUMBERED: Final = re.compile(r"(\d{1,9})([.)])")
_NBSP: Final = "\u00a0"


def escape(text: str) -> str:
    """``text`` as plain characters in every markdown dialect chat uses (the module says
    how); its line breaks are kept, trailing spaces (a hard break) dropped."""
    return "\n".join(_escape_line(line) for line in visible(text).split("\n"))


def _escape_line(line: str) -> str:
    line = line.rstrip()
    body = line.lstrip(" \t")
    indent = line[: len(line) - len(body)].replace("\t", "    ").replace(" ", _NBSP)
    if not body:
        return ""
    out = [f"\\{c}" if c in _ANYWHERE else c for c in body]
    if body[0] in _AT_START:
        out[0] = "\\" + body[0]
    else:
        numbered = _NUMBERED.match(body)
        if numbered is not None:
            at = numbered.end(1)
            out[at] = "\\" + body[at]
    return indent + "".join(out)


def cut(text: str, limit: int, more: str = "") -> str:
    """``text`` escaped, cut to ``limit`` characters first, saying how much was left out
    (``more``: markdown of ours added to that note)."""
    if len(text) <= limit:
        return escape(text)
    rest = len(text) - limit
    return f"{escape(text[:limit].rstrip())}… ({rest:,} more characters{more})"


def said(text: str, limit: int = SHORT) -> str:
    """``text`` (a name or a reason an agent, its CLI or its host chose) as one line of
    escaped markdown, at most about ``limit`` characters: a line break in it shows as
    ``⏎`` and starts no line of its own."""
    return escape(guarded(text, limit=limit))


_QUOTE: Final = re.compile(r"“([^“”]*)”")


def quotes_escaped(message: str) -> str:
    """``message`` (Fleetwarden's words, which may quote another's) as chat markdown: what
    stands between curly quotes — only ever words quoted as another's — escaped."""
    return _QUOTE.sub(lambda found: f"“{escape(found[1])}”", message)


def quoted(markdown: str) -> str:
    """``markdown`` (already the agent's, escaped or in code) as a block quote: every line
    marked, blank lines too, so nothing in it can end the quote early."""
    # Every kind of line break is a line feed first (a lone carriage return, a line
    # separator): each line it starts must be marked too. "> " on a blank line: Discord
    # ends a quote at a line of a bare ">".
    lines = visible(markdown).split("\n")
    return "\n".join(f"> {line}" if line.strip() else "> " for line in lines)
