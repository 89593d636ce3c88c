"""The dashboard's CSV downloads (``/usage.csv``, ``/changes.csv``): rows written as CSV
with every cell safe from a spreadsheet's formulas, since a model's name, which a cell may
hold, comes from the agent."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from aiohttp import web

from bot.dashboard.pages.shapes import Json
from bot.text.cells import csv_safe


def csv_download(rows: Sequence[Json], fields: Sequence[str], filename: str) -> web.Response:
    """``rows`` as a CSV download, every cell formula-safe (:func:`~bot.text.cells.csv_safe`)."""
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
