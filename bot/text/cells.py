"""Cells of a table a spreadsheet opens: text anyone wrote (a model's name, a task's title)
kept from running as a formula."""

from __future__ import annotations

import unicodedata

_FORMULA = frozenset("=+-@\u2212")  # U+2212 MINUS SIGN: what NFKC makes of ⁻ and ₋


def csv_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula: one that starts with a tab or a
    carriage return, or whose first visible character is, or looks like (NFKC: full-width
    ＝＋－＠, small ﹦﹢﹣﹫, super- and subscript signs), one of ``= + - @``, after any
    spaces, line breaks, zero-width or other invisible characters, is prefixed with ``'``.
    An agent's name cannot start with one, but a model name comes from the agent."""
    if not isinstance(value, str):
        return value
    if value[:1] in ("\t", "\r"):
        return "'" + value
    for char in value:
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            continue
        return "'" + value if unicodedata.normalize("NFKC", char)[:1] in _FORMULA else value
    return value
