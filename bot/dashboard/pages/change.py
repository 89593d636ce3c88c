"""The change on an agent's page: its live branch against the base (the commits, the files
with their ``+/−``, whether it applies and what it clashes with) and each file's diff, as
plain JSON-able data for ``/api/agents/NAME`` and the page.

Everything in it the repository holds is the agent's text — file names, commit subjects,
the diff's lines: a short one passes the guard every surface uses (redacted, one line,
bounded, nothing hidden: :func:`fleet.redaction.guard.guarded`); a diff is redacted whole
and what hides in it is shown as code points (a bidi override in code reads ``[U+202E]``,
never reorders a line the reviewer reads). The page escapes all of it as text, a diff
inside ``<pre>``.

The page is rendered twice a second while someone watches it; the change is read from the
desk at most every :data:`CHANGE_EVERY`, and a file's diff again only when the branch,
its fork or the base moved. Past :data:`DIFF_FILES` files, :data:`DIFF_LINES` lines or
:data:`DIFF_CHARS` characters of one file, a diff is cut and the page says so.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Protocol

from bot.dashboard.pages.shapes import Json, Redacted
from fleet.ledger.records.lines import LineRecord
from fleet.redaction.guard import HIDDEN
from fleet.redaction.invisible import reveal, visible
from fleet.repos.desk import NoLine, RepoError
from fleet.repos.facts import Change, FileStat
from fleet.timing.clock import Clock

CHANGE_EVERY: Final = timedelta(seconds=5)
"""How stale a page's change may be: reading it runs git (stat, merge-tree, clash checks)."""
DIFF_FILES: Final = 50
"""Files whose diff the page shows; the rest are listed with their ``+/−``."""
DIFF_LINES: Final = 400
DIFF_CHARS: Final = 40_000
PATH_CHARS: Final = 300
"""Characters of a file's path or a commit's subject on its line."""
_AGENTS: Final = 64  # agents whose change is remembered: the pages open now, and a few more

Identity = tuple[str, str, str, str | None]  # branch, fork, base tip, branch tip


class ChangeDesk(Protocol):
    """What the page reads of the repositories (:class:`fleet.repos.desk.RepoDesk` has it)."""

    async def line_of(self, agent: str) -> LineRecord | None: ...

    async def change(self, agent: str) -> Change: ...

    async def diff(self, agent: str, path: str | None = None) -> str: ...


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the desk said of one agent's change last, and when."""

    at: float
    identity: Identity | None
    shown: Json | None
    rows: dict[str, Json]  # a file's path in the repository -> its row, with its diff


class ChangeView:
    """The agents' changes, read from the repositories' desk for their pages."""

    def __init__(self, desk: ChangeDesk, redacted: Redacted, clock: Clock) -> None:
        self._desk = desk
        self._redacted = redacted
        self._clock = clock
        self._seen: OrderedDict[str, _Seen] = OrderedDict()

    async def of(self, agent: str) -> Json | None:
        """``agent``'s change, or ``None`` when it has no live branch."""
        now = self._clock.monotonic()
        kept = self._seen.get(agent)
        if kept is not None and now - kept.at < CHANGE_EVERY.total_seconds():
            return kept.shown
        seen = await self._read(agent, now, kept)
        self._seen[agent] = seen
        self._seen.move_to_end(agent)
        while len(self._seen) > _AGENTS:
            self._seen.popitem(last=False)
        return seen.shown

    async def _read(self, agent: str, now: float, kept: _Seen | None) -> _Seen:
        try:
            if await self._desk.line_of(agent) is None:
                return _Seen(now, None, None, {})
            change = await self._desk.change(agent)
        except NoLine:
            return _Seen(now, None, None, {})
        except RepoError as exc:
            return _Seen(now, None, {"error": self._redacted.line(str(exc), PATH_CHARS)}, {})
        identity = (change.branch, change.fork_sha, change.base_sha, change.head_sha)
        before = kept.rows if kept is not None and kept.identity == identity else {}
        rows: dict[str, Json] = {}
        files = []
        for index, stat in enumerate(change.files):
            path = self._redacted.line(stat.path, PATH_CHARS)
            row = before.get(stat.path)
            if row is None and index < DIFF_FILES:
                row = rows[stat.path] = await self._file(agent, stat, path)
            elif row is not None:
                rows[stat.path] = row
            files.append(row if row is not None else _file_json(stat, path, None, None))
        return _Seen(now, identity, self._change_json(change, files), rows)

    async def _file(self, agent: str, stat: FileStat, path: str) -> Json:
        """One file's row with its diff, cut and made inert."""
        try:
            text = await self._desk.diff(agent, stat.path)
        except RepoError as exc:
            return _file_json(stat, path, None, self._redacted.line(str(exc), PATH_CHARS))
        diff, note = await asyncio.to_thread(shown_diff, text, self._redacted)
        return _file_json(stat, path, diff, note)

    def _change_json(self, change: Change, files: list[Json]) -> Json:
        line = self._redacted.line
        shown = sum(1 for f in files if f["diff"] is not None)
        return {
            "error": None,
            "repo": line(change.repo),
            "branch": line(change.branch, PATH_CHARS),
            "base_ref": line(change.base_ref, PATH_CHARS),
            "fork_sha": line(change.fork_sha),
            "base_sha": line(change.base_sha),
            "head_sha": line(change.head_sha) if change.head_sha else None,
            "base_moved": change.base_moved,
            "commits": [
                {"sha": line(c.sha), "subject": line(c.subject, PATH_CHARS)} for c in change.commits
            ],
            "more_commits": change.more_commits,
            "files": files,
            "more_files": change.more_files,
            "diffs_shown": shown,
            "added": change.added,
            "removed": change.removed,
            "applies": change.applies,
            "conflicts": [line(path, PATH_CHARS) for path in change.conflicts],
            "clashes": [
                {
                    "agent": line(clash.agent),
                    "branch": line(clash.branch, PATH_CHARS),
                    "files": [line(path, PATH_CHARS) for path in clash.files],
                }
                for clash in change.clashes
            ],
            "secrets": line(change.secrets, PATH_CHARS),
            "refused": [line(why, PATH_CHARS) for why in change.refused],
            "unkept": line(change.unkept, PATH_CHARS),
            "pushed": change.pushed,
            "merged": change.merged,
            "disk_bytes": change.disk_bytes,
        }


def _file_json(stat: FileStat, path: str, diff: str | None, note: str | None) -> Json:
    return {
        "path": path,
        "status": stat.status[:1] if stat.status[:1] in ("A", "M", "D", "R", "C", "T") else "?",
        "added": stat.added,
        "removed": stat.removed,
        "binary": stat.added is None,
        "diff": diff,
        "note": note,
    }


def shown_diff(text: str, redact: Callable[[str], str]) -> tuple[str, str | None]:
    """``text`` (one file's diff) as the page shows it, and a note when it was cut: its
    first :data:`DIFF_LINES` lines, redacted; where nothing was redacted, the characters a
    reader cannot see are shown as code points (:func:`~fleet.redaction.invisible.reveal`),
    and where something was, they are taken out, as the guard does, and the diff starts by
    saying so. Then cut to :data:`DIFF_CHARS` at a line's end."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    total = len(lines)
    head = "\n".join(lines[:DIFF_LINES])
    redacted, seen = visible(redact(head)), visible(head)
    cut = total > DIFF_LINES
    prefix = ""
    if redacted == seen:  # nothing secret in it: cut first, then everything hidden shown
        first = _cut(head)
        cut = cut or first != head
        body = reveal(first)
    else:
        body = redacted
        prefix = f"{HIDDEN}\n" if seen != head else ""
    kept = _cut(body)
    if not cut and kept == body:
        return prefix + kept, None
    shown = min(kept.count("\n") + 1 if kept else 0, total)
    return prefix + kept, (
        f"Cut: {shown:,} of its {total:,} lines are shown here; "
        "in chat, the diff command sends all of it."
    )


def _cut(text: str) -> str:
    """``text`` cut to :data:`DIFF_CHARS`, at the end of a line where one ends before."""
    if len(text) <= DIFF_CHARS:
        return text
    end = text.rfind("\n", 0, DIFF_CHARS)
    return text[: end if end > 0 else DIFF_CHARS]
