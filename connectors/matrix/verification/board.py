"""The verifications waiting for an admin, shared by the running bot and
``fleetwarden matrix verify`` through files in the crypto store.

``<crypto dir>/verifications/<id>.json`` is written by the bot (who asks, from which
device, the emojis and decimals, the state); ``<id>.answer`` is written by whoever answers
(``yes`` or ``no``: the CLI, or a console admin's ``verify`` command). Each file has one
writer and is replaced atomically (a temporary file, then ``os.replace``), so a reader never
sees half a file and no lock is needed; the bot looks for answers every second. Files,
not the ledger: this is the Matrix connector's own state beside ``trust.json``, which the
CLI already writes the same way, and it needs no schema change. The directory is 0700 and
each file 0600, like the rest of the store; a finished verification's files are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.private_files import write_private

_ID = re.compile(r"[a-z0-9]{6}")
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
MAX_FILE_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Pending:
    """One verification as the board shows it."""

    id: str
    user: str
    device: str
    emojis: tuple[tuple[str, str], ...]
    decimals: tuple[int, ...]
    state: str

    def describe(self) -> str:
        lines = [f"{self.id}  {self.user} (device {self.device}): {self.state}"]
        if self.emojis:
            lines.append("  emojis:   " + "   ".join(f"{e} {name}" for e, name in self.emojis))
            lines.append("  numbers:  " + " ".join(str(d) for d in self.decimals))
        return "\n".join(lines)


class Board:
    """The directory of pending verifications."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _ready(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    def new_id(self) -> str:
        while True:
            candidate = "".join(secrets.choice(_ALPHABET) for _ in range(6))
            if not (self.directory / f"{candidate}.json").exists():
                return candidate

    def show(self, pending: Pending) -> None:
        """Publish (or update) a verification (an answer is taken only once it has emojis)."""
        self._ready()
        body = {
            "id": pending.id,
            "user": pending.user,
            "device": pending.device,
            "emojis": [list(e) for e in pending.emojis],
            "decimals": list(pending.decimals),
            "state": pending.state,
        }
        write_private(self.directory / f"{pending.id}.json", json.dumps(body, ensure_ascii=False))

    def remove(self, vid: str) -> None:
        for suffix in (".json", ".answer"):
            (self.directory / f"{vid}{suffix}").unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget everything (at start: the verifications of a previous run are over)."""
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def pending(self) -> list[Pending]:
        if not self.directory.is_dir():
            return []
        found = [self._read(p) for p in sorted(self.directory.glob("*.json"))]
        return [p for p in found if p is not None]

    def get(self, vid: str) -> Pending | None:
        if not _ID.fullmatch(vid):
            return None
        return self._read(self.directory / f"{vid}.json")

    def _read(self, path: Path) -> Pending | None:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                return None
            raw: Any = json.loads(path.read_text(encoding="utf8"))
            return Pending(
                id=str(raw["id"]),
                user=str(raw["user"]),
                device=str(raw["device"]),
                emojis=tuple((str(e), str(n)) for e, n in raw["emojis"]),
                decimals=tuple(int(d) for d in raw["decimals"]),
                state=str(raw["state"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def answer(self, vid: str, yes: bool) -> None:
        """An admin's answer to ``vid``. Raises ValueError naming what is wrong."""
        pending = self.get(vid)
        if pending is None:
            raise ValueError(
                f"no pending verification {vid!r}; `fleetwarden matrix verify` lists them"
            )
        if not pending.emojis:
            raise ValueError(f"verification {vid} has no emojis to compare yet; wait for them")
        write_private(self.directory / f"{vid}.answer", "yes" if yes else "no")

    def take_answer(self, vid: str) -> bool | None:
        """The answer given to ``vid`` (removed once read), or None."""
        path = self.directory / f"{vid}.answer"
        try:
            text = path.read_text(encoding="utf8")[:8].strip()
        except (FileNotFoundError, OSError):
            return None
        path.unlink(missing_ok=True)
        if text in ("yes", "no"):
            return text == "yes"
        return None
