"""What the git door refused of each line's current run, as that run's summary tells it:
each refusal once — the run's end brings the checkout's commits to the branch through the
same checks, so a commit the agent's own push had refused is refused again, in the same
words — and only the current run's: a new run on the line starts with none. Also the
secret scan's verdict, read from them (never a value)."""

from __future__ import annotations

from typing import Final

SHOWN: Final = 5
"""Refusals a run's change lists (the newest)."""


class RunRefusals:
    """Each live line's refusals of its current run: ``(kind, why)``, in order, once each."""

    def __init__(self) -> None:
        self._by_line: dict[int, list[tuple[str, str]]] = {}
        self._last: dict[int, tuple[str, str | None]] = {}  # line → (why, its tip then)

    def new_run(self, line_id: int) -> None:
        """A run starts on line ``line_id``: what the door refused its earlier runs is
        theirs."""
        self._by_line.pop(line_id, None)
        self._last.pop(line_id, None)

    def refused_at(self, line_id: int, why: str, tip: str | None) -> None:
        """The door refused a push of line ``line_id``'s run for ``why``, its branch at
        ``tip`` (None: no commit yet) after it."""
        self._last[line_id] = (why, tip)

    def still_refused(self, line_id: int, tip: str | None) -> str | None:
        """Why the door refused the run's last push, while nothing has reached its branch
        since (it is still at ``tip``); None when none was refused, or one was taken since."""
        last = self._last.get(line_id)
        return last[0] if last is not None and last[1] == tip else None

    def add(self, line_id: int, kind: str, why: str) -> bool:
        """Keep one refusal of line ``line_id``'s run; False when that run was refused so
        already (the same commit, pushed again)."""
        found = self._by_line.setdefault(line_id, [])
        if (kind, why) in found:
            return False
        found.append((kind, why))
        return True

    def shown(self, line_id: int) -> tuple[str, ...]:
        """Why the door refused the run, the newest :data:`SHOWN`."""
        return tuple(why for _kind, why in self._by_line.get(line_id, [])[-SHOWN:])

    def verdict(self, line_id: int) -> str:
        """The secret scan's verdict on the run's pushes."""
        secrets = sum(1 for kind, _why in self._by_line.get(line_id, []) if kind == "secret")
        if secrets:
            return f"refused {secrets} push{'es' if secrets != 1 else ''} holding a secret"
        return "no secret found in what the door accepted"
