"""The ledger's ``missions`` table (migration 28): missions by name, each part of at most
one other; a mission's tree is it and every sub-mission under it. A mission's title is
redacted as it is stored, as a task's words are (:mod:`fleet.ledger.stores.work.tasks`)."""

from __future__ import annotations

from collections.abc import Collection

from fleet.ledger.database.access import Access, Store
from fleet.ledger.database.engine import Row, insert_id
from fleet.ledger.records.epoch import from_epoch
from fleet.ledger.records.tasks import MissionRecord
from fleet.ledger.stores.work.marks import STALE, Marking, Redact, names_of, names_text


def _mission(row: Row) -> MissionRecord:
    return MissionRecord(
        id=int(row["id"]),
        name=str(row["name"]),
        title=str(row["title"]),
        parent=row["parent"],
        created_by=str(row["created_by"]),
        created_at=from_epoch(float(row["created_at"])),
        redacted=bool(row["redacted"]),
        redacted_for=names_of(row["redacted_for"]),
    )


class MissionsStore(Store):
    """Missions and their sub-missions."""

    def __init__(self, access: Access) -> None:
        super().__init__(access)
        self._marking = Marking()

    def redact_with(self, redact: Redact, *, names: Collection[str], whole: bool = True) -> None:
        """From now on, redact a mission's title with ``redact`` as it is stored, and mark
        its row ``redacted`` for ``names`` (the variables the config names as secrets)
        when ``redact`` knows each one's value (``whole``), as a task's."""
        self._marking = Marking(redact, whole, names_text(names))

    async def redact_stored(self) -> int:
        """Redact the title of every mission stored without the redactor, or before the
        config named a secret it now names, and mark it for the secrets named now; how
        many were. Nothing without a redactor that knows every secret."""
        marking = self._marking
        if not marking.vouched:
            return 0
        rows = await self._all(f"SELECT id, title FROM missions WHERE {STALE}", (marking.names,))
        if rows:
            async with self._transaction(f"redact the titles of {len(rows)} missions") as conn:
                for row in rows:
                    await conn.execute(
                        "UPDATE missions SET title = ?, redacted = 1, redacted_for = ?"
                        " WHERE id = ?",
                        (marking.clean(str(row["title"])), marking.names, row["id"]),
                    )
        return len(rows)

    async def add_mission(
        self, name: str, title: str, by: str, parent: int | None = None
    ) -> MissionRecord | None:
        """Make mission ``name`` (part of ``parent``); ``None`` when the name is taken."""
        async with self._transaction(f"record mission {name}") as conn:
            taken = await conn.execute_fetchall("SELECT id FROM missions WHERE name = ?", (name,))
            if taken:
                return None
            mission_id = await insert_id(
                conn,
                "INSERT INTO missions (name, title, parent, created_by, created_at, redacted,"
                " redacted_for) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, self._marking.clean(title), parent, by, self._epoch(None),
                 self._marking.vouched, self._marking.names),
            )  # fmt: skip
        return await self.mission(mission_id)

    async def mission(self, mission_id: int) -> MissionRecord | None:
        """Mission ``mission_id``, or ``None``."""
        row = await self._one("SELECT * FROM missions WHERE id = ?", (mission_id,))
        return None if row is None else _mission(row)

    async def mission_named(self, name: str) -> MissionRecord | None:
        """The mission named ``name``, or ``None``."""
        row = await self._one("SELECT * FROM missions WHERE name = ?", (name,))
        return None if row is None else _mission(row)

    async def missions(self) -> list[MissionRecord]:
        """Every mission, oldest first."""
        return [_mission(row) for row in await self._all("SELECT * FROM missions ORDER BY id", ())]

    async def tree(self, mission_id: int) -> list[MissionRecord]:
        """Mission ``mission_id`` and every mission under it, each before its own."""
        everything = await self.missions()
        under: dict[int | None, list[MissionRecord]] = {}
        for mission in everything:
            under.setdefault(mission.parent, []).append(mission)
        found = [m for m in everything if m.id == mission_id]
        seen = {m.id for m in found}
        i = 0
        while i < len(found):
            for child in under.get(found[i].id, []):
                if child.id not in seen:  # a loop in old data never hangs the walk
                    seen.add(child.id)
                    found.append(child)
            i += 1
        return found
