"""The dashboard's CSV downloads (``/usage.csv``, ``/changes.csv``): rows written as CSV
with every cell safe from a spreadsheet's formulas, since a model's name, which a cell may
hold, comes from the agent."""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence

from aiohttp import web

from bot.dashboard.pages.shapes import Json


def csv_download(rows: Sequence[Json], fields: Sequence[str], filename: str) -> web.Response:
    """``rows`` as a CSV download, every cell formula-safe (:func:`csv_safe`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_safe(v) for k, v in row.items()})
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


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
