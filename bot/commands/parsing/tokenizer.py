"""The tokenizer under the command grammar: shell-like words read one at a time.

Quoting is shell-like but small: whitespace separates; ``'...'`` is literal; ``"..."``
allows ``\\"`` and ``\\\\``; outside quotes a backslash escapes ``"``, ``'`` and ``\\``
and is otherwise literal (so ``C:\\work`` survives); quotes join adjacent text
(``--prompt="a b"``). A token records its raw first character, since one that starts
with a quote is never a flag. The :class:`Lexer` reads a token at a time so that
:mod:`bot.commands.parsing.grammar` can take the raw remainder of a line untokenized.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["QUOTES", "Lexer", "Token", "Unterminated", "unwrap_quotes"]

QUOTES = "'\""
"""The characters that open a quoted run."""


class Unterminated(Exception):
    """A quote was opened and never closed (the grammar turns it into a ParseError)."""

    def __init__(self, quote: str) -> None:
        super().__init__(quote)
        self.quote = quote


@dataclass(frozen=True, slots=True)
class Token:
    """One word of the text: its unquoted ``value`` and where it sat (``text[start:end]``)."""

    value: str
    start: int
    end: int
    first: str  # the raw first character: a token starting with a quote is never a flag


def _scan_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the quoted run opening at ``start``: its content and the index after it."""
    quote = text[start]
    if quote == "'":
        close = text.find("'", start + 1)
        if close < 0:
            raise Unterminated(quote)
        return text[start + 1 : close], close + 1
    out: list[str] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\':
            out.append(text[pos + 1])
            pos += 2
        elif ch == '"':
            return "".join(out), pos + 1
        else:
            out.append(ch)
            pos += 1
    raise Unterminated(quote)


class Lexer:
    """Reads tokens one at a time, so the raw remainder can be taken untokenized."""

    __slots__ = ("pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_space(self) -> bool:
        """Move past whitespace; whether anything is left."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1
        return self.pos < len(self.text)

    def word(self) -> str:
        """The raw characters up to the next whitespace, without consuming them."""
        end = self.pos
        while end < len(self.text) and not self.text[end].isspace():
            end += 1
        return self.text[self.pos : end]

    def skip_word(self) -> None:
        """Consume the raw word :meth:`word` returns."""
        self.pos += len(self.word())

    def remainder(self) -> str:
        """Consume and return the rest of the text, raw."""
        rest = self.text[self.pos :]
        self.pos = len(self.text)
        return rest

    def token(self) -> Token | None:
        """Consume and return the next token, or ``None`` at the end."""
        if not self.skip_space():
            return None
        text, start = self.text, self.pos
        out: list[str] = []
        pos = start
        while pos < len(text) and not text[pos].isspace():
            ch = text[pos]
            if ch in QUOTES:
                chunk, pos = _scan_quoted(text, pos)
                out.append(chunk)
            elif ch == "\\" and pos + 1 < len(text) and text[pos + 1] in "\"'\\":
                out.append(text[pos + 1])
                pos += 2
            else:
                out.append(ch)
                pos += 1
        self.pos = pos
        return Token("".join(out), start, pos, text[start])


def unwrap_quotes(rest: str) -> str:
    """Strip one pair of quotes wrapping the whole of ``rest``; otherwise keep it as is."""
    if len(rest) >= 2 and rest[0] in QUOTES:
        try:
            content, end = _scan_quoted(rest, 0)
        except Unterminated:
            return rest
        if end == len(rest):
            return content
    return rest
