"""How a person reads an amount of tokens or dollars, the same on every surface (chat, the
CLI, the dashboard's pages, a forge's comments, the reports): one rule each, so a table
never shows ``$0.14`` beside ``$0.1350`` nor ``42000`` beside ``42,000``. Machine outputs
(JSON, CSV, ``/metrics``) keep the raw numbers and never come here.

- Tokens are a whole number with thousands separators: ``42,000``, never ``3115.0``; in
  a narrow column of a table (``ps``, the task list, the dashboard's tables) the short form
  ``12.3k``, ``1.2M``.
- Dollars are cents from one cent up (``$0.14``, ``$0.50``, ``$12.35``, ``$1,234.50``), and
  below a cent two significant digits, so a small spend stays visible (``$0.0059``,
  ``$0.00012``); only nothing at all is ``$0.00``.
"""

from __future__ import annotations

import math

__all__ = ["tokens", "tokens_short", "tokens_words", "usd"]

_SMALLEST = 1e-6  # below this, a cost shows as the smallest amount said


def tokens(amount: float) -> str:
    """``42,000``: a count of tokens, rounded to a whole one."""
    return f"{round(amount):,}"


def tokens_short(amount: float) -> str:
    """A token count for a narrow column: ``0``, ``999``, ``12.3k``, ``1.2M``, ``4G``."""
    n = round(amount)
    if abs(n) < 1000:
        return str(n)
    for unit, size in (("k", 1e3), ("M", 1e6)):
        if round(abs(n) / size, 1) < 1000:
            return f"{n / size:.1f}".removesuffix(".0") + unit
    return f"{n / 1e9:.1f}".removesuffix(".0") + "G"


def tokens_words(amount: float) -> str:
    """``42,000 tokens`` (``1 token``)."""
    whole = round(amount)
    return f"{whole:,} token{'' if whole == 1 else 's'}"


def usd(amount: float) -> str:
    """Dollars: ``$12.35``, ``$0.14``, ``$0.0059``, ``$0.0002``; ``$0.00`` for nothing;
    ``-$0.50``."""
    if amount == 0:
        return "$0.00"
    sign = "-" if amount < 0 else ""
    size = abs(amount)
    if size >= 0.00995:  # a cent, as two places round it
        return f"{sign}${size:,.2f}"
    if size < _SMALLEST:
        return f"{sign}<$0.000001"
    places = min(6, 1 - math.floor(math.log10(size)))  # two significant digits
    # ... and no trailing zero: ``$0.0002``, not ``$0.00020``
    return f"{sign}${size:.{places}f}".rstrip("0")
