"""What a run's branch holds, as plain facts: its commits, its files with their ``+/−``,
how far its base has moved, whether it applies to the base and which live runs it clashes
with — what the run summary, ``diff``, ``branches`` and the dashboard show.

Every string here that came from the repository (file names, commit subjects, branch
names of other runs) is the agent's text: the renderers escape it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class CommitLine:
    """One commit on a branch: its short id and subject (the agent's text)."""

    sha: str
    subject: str


@dataclass(frozen=True, slots=True)
class FileStat:
    """One file the branch changes: lines added and removed (``None`` for a binary file)."""

    path: str
    added: int | None
    removed: int | None
    status: str = "M"  # A, M, D, R (git's letters)


@dataclass(frozen=True, slots=True)
class Clash:
    """Another live run on the same repository whose branch conflicts with this one."""

    agent: str
    branch: str
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """A line's branch against its base, as of now."""

    repo: str
    agent: str
    branch: str
    base_ref: str
    fork_sha: str  # where the branch left the base
    base_sha: str  # the base's tip now
    head_sha: str | None  # the branch's tip (None: nothing accepted yet)
    base_moved: int  # commits on the base since the fork
    commits: tuple[CommitLine, ...] = ()
    more_commits: int = 0  # past those listed
    files: tuple[FileStat, ...] = ()
    more_files: int = 0
    applies: bool = True
    conflicts: tuple[str, ...] = ()  # files that conflict with the base
    clashes: tuple[Clash, ...] = ()
    secrets: str = "clean"  # the secret scan's verdict (never a value)
    refused: tuple[str, ...] = ()  # why the door refused this line's pushes lately
    unkept: str = ""  # why the last run's end is not on the branch, when no refusal says
    copied: tuple[str, ...] = ()  # gitignored paths copied into the checkout
    not_copied: str = ""  # what of the config's `copy` was not there to copy in
    pushed: bool = False  # the branch tip is on the upstream
    unpushed: str = ""  # why the run's end was not pushed (its approval is of another commit)
    merged: bool = False
    disk_bytes: int | None = None  # the checkout's size on disk
    fleetwarden: str = ""  # the version of Fleetwarden that made the summary
    arrived: bool | None = None  # a run's change: whether it brought the branch new commits

    @property
    def added(self) -> int:
        return sum(f.added or 0 for f in self.files)

    @property
    def removed(self) -> int:
        return sum(f.removed or 0 for f in self.files)


@dataclass(frozen=True, slots=True)
class Landed:
    """What ``merge`` did: the base's new tip, or why it refused (nothing changed then)."""

    base_ref: str
    new_sha: str | None
    strategy: str
    conflicts: tuple[str, ...] = ()
    refused: str | None = None


def change_to_json(change: Change) -> str:
    """``change`` as JSON, for the ledger."""
    return json.dumps(asdict(change), separators=(",", ":"))


def change_from_json(text: str | None) -> Change | None:
    """A change the ledger kept (``None`` when none or unreadable)."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        raw["commits"] = tuple(CommitLine(**c) for c in raw.get("commits", ()))
        raw["files"] = tuple(FileStat(**f) for f in raw.get("files", ()))
        raw["clashes"] = tuple(
            Clash(c["agent"], c["branch"], tuple(c["files"])) for c in raw.get("clashes", ())
        )
        for key in ("conflicts", "refused", "copied"):
            raw[key] = tuple(raw.get(key, ()))
        return Change(**raw)
    except (ValueError, TypeError, KeyError):
        return None
