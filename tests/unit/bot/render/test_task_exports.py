"""The register as `fleetwarden tasks --json` and `--csv` print it: a row per task with its
projection beside its actual, its mission by name and whether its words were withheld;
the JSON adds the body and the missions; no CSV cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
import json

from bot.render.work.task_exports import FIELDS, register_csv, register_json
from fleet.ledger.records.tasks import NO_PROJECTION, Actual
from fleet.tasks.views import TaskView
from tests.unit.bot.render.test_task_documents import mission, task

FOUND = [
    TaskView(task(1, "done", mission=1, body="the body"), Actual(8123, 0.41, 2)),
    TaskView(task(2, title='=HYPERLINK("http://x")', projection=NO_PROJECTION), Actual(0, None, 0)),
]
MISSIONS = [mission(1, "auth"), mission(2, "login", parent=1)]


def test_the_json_holds_each_task_with_its_body_and_each_mission() -> None:
    """Every field of :data:`FIELDS` and the body per task; missions with their parent's
    name; a withheld task or mission says so."""
    printed = json.loads(register_json(FOUND, MISSIONS, {2}, {2}))
    first, second = printed["tasks"]
    assert list(first) == [*FIELDS, "body"]
    assert first["mission"] == "auth" and first["body"] == "the body"
    assert (first["projected_tokens"], first["projected_tokens_p90"]) == (9000.0, 12000.0)
    assert (first["actual_tokens"], first["actual_usd"], first["runs"]) == (8123, 0.41, 2)
    assert not first["words_withheld"] and second["words_withheld"]
    assert second["projected_usd"] is None and second["mission"] is None
    assert printed["missions"] == [
        {"id": 1, "name": "auth", "title": "Auth", "parent": None, "words_withheld": False},
        {"id": 2, "name": "login", "title": "Login", "parent": "auth", "words_withheld": True},
    ]


def test_the_csv_is_a_row_per_task_and_no_cell_is_a_formula() -> None:
    """A header of :data:`FIELDS`, a row per task; a title a spreadsheet would run as a
    formula is written quoted with ``'``."""
    rows = list(csv.DictReader(io.StringIO(register_csv(FOUND, MISSIONS, {2}))))
    assert [list(row) for row in rows] == [list(FIELDS)] * 2
    assert rows[0]["title"] == "Fix the login page" and rows[0]["mission"] == "auth"
    assert rows[1]["title"] == '\'=HYPERLINK("http://x")'
    assert [row["words_withheld"] for row in rows] == ["False", "True"]
