"""The register as data for scripts and spreadsheets, as ``fleetwarden tasks --json`` and
``fleetwarden tasks --csv`` print it: one row per task, its fields named by :data:`FIELDS`
(the JSON adds each task's body, and the missions). Pure: the tasks and missions are passed
in as they may be shown (redacted, or withheld: ``words_withheld`` says so).

Every cell of the CSV is safe from a spreadsheet's formulas, as the dashboard's downloads
are (:func:`~bot.text.cells.csv_safe`): a title is anyone's text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Mapping, Sequence
from typing import Final

from bot.text.cells import csv_safe
from fleet.ledger.records.tasks import MissionRecord, Pair
from fleet.tasks.views import TaskView

FIELDS: Final = (
    "id",
    "name",
    "title",
    "state",
    "mission",
    "agent",
    "runtime",
    "repo",
    "source",
    "source_ref",
    "asked_by",
    "why",
    "branch",
    "pull_url",
    "created_at",
    "started_at",
    "ended_at",
    "projected_tokens",
    "projected_tokens_p90",
    "projected_usd",
    "projected_usd_p90",
    "actual_tokens",
    "actual_usd",
    "runs",
    "words_withheld",
)
"""The columns of the CSV, and the fields of each task in the JSON, in order."""

Row = dict[str, object]


def _median(pair: Pair | None) -> float | None:
    return None if pair is None else pair[0]


def _p90(pair: Pair | None) -> float | None:
    return None if pair is None else pair[1]


def task_row(view: TaskView, missions: Mapping[int, str], withheld: bool) -> Row:
    """One task's fields (:data:`FIELDS`); ``missions``: names by id."""
    task, actual = view.task, view.actual
    projection = task.projection
    return {
        "id": task.id,
        "name": task.name,
        "title": task.title,
        "state": task.state,
        "mission": None if task.mission is None else missions.get(task.mission),
        "agent": task.agent,
        "runtime": task.runtime,
        "repo": task.repo,
        "source": task.source,
        "source_ref": task.source_ref,
        "asked_by": task.asked_by,
        "why": task.why,
        "branch": task.branch,
        "pull_url": task.pull_url,
        "created_at": task.created_at.isoformat(),
        "started_at": None if task.started_at is None else task.started_at.isoformat(),
        "ended_at": None if task.ended_at is None else task.ended_at.isoformat(),
        "projected_tokens": _median(projection.tokens),
        "projected_tokens_p90": _p90(projection.tokens),
        "projected_usd": _median(projection.usd),
        "projected_usd_p90": _p90(projection.usd),
        "actual_tokens": actual.tokens,
        "actual_usd": None if actual.usd is None else round(actual.usd, 6),
        "runs": actual.runs,
        "words_withheld": withheld,
    }


def register_json(
    tasks: Sequence[TaskView],
    missions: Sequence[MissionRecord],
    held_tasks: Collection[int] = (),
    held_missions: Collection[int] = (),
) -> str:
    """``{"tasks": [...], "missions": [...]}``: each task's fields and its body, each
    mission's id, name, title and parent's name."""
    names = {mission.id: mission.name for mission in missions}
    return (
        json.dumps(
            {
                "tasks": [
                    {**task_row(v, names, v.task.id in held_tasks), "body": v.task.body}
                    for v in tasks
                ],
                "missions": [
                    {
                        "id": m.id,
                        "name": m.name,
                        "title": m.title,
                        "parent": None if m.parent is None else names.get(m.parent),
                        "words_withheld": m.id in held_missions,
                    }
                    for m in missions
                ],
            },
            indent=2,
        )
        + "\n"
    )


def register_csv(
    tasks: Sequence[TaskView], missions: Sequence[MissionRecord], held: Collection[int] = ()
) -> str:
    """The tasks as CSV: a header of :data:`FIELDS`, then a row per task, formula-safe."""
    names = {mission.id: mission.name for mission in missions}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(FIELDS))
    writer.writeheader()
    for view in tasks:
        row = task_row(view, names, view.task.id in held)
        writer.writerow({key: csv_safe(value) for key, value in row.items()})
    return out.getvalue()
