"""A register row is marked for the secrets it was redacted of; one named later is redacted."""

from __future__ import annotations

from fleet.ledger import Ledger
from fleet.ledger.records.tasks import NewTask
from fleet.ledger.stores.work.marks import covers
from fleet.redaction.known import EnvSecrets
from fleet.redaction.redactor import Redactor
from tests.unit.fleet.ledger.test_ledger_tasks import PROJECTED

VALUE = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2"
ENV = {"NEW_AGENT_KEY": VALUE}
LABEL = "[redacted: NEW_AGENT_KEY]"


async def test_a_new_secret_name_redacts_an_old_marked_title(ledger: Ledger) -> None:
    """Redacted and marked with no secret named; a reload names NEW_AGENT_KEY: the sweep
    redacts the stored title, marks it for that name, and makes its name anew (the old one,
    made from the title, held parts of the value)."""
    before = Redactor([EnvSecrets([], ENV)])
    ledger.tasks.redact_with(before.redact, names=[], whole=True)  # every secret named then: none
    task = await ledger.tasks.add_task(NewTask(f"Use {VALUE} for deploys", "chat", "op"), PROJECTED)
    assert task.redacted
    after = Redactor([EnvSecrets(["NEW_AGENT_KEY"], ENV)])  # the reload's redactor
    ledger.tasks.redact_with(after.redact, names=["NEW_AGENT_KEY"], whole=True)
    await ledger.tasks.redact_stored()
    stored = await ledger.tasks.task(task.id)
    assert stored is not None
    assert VALUE not in stored.title or not stored.redacted, stored.title
    assert stored.title == f"Use {LABEL} for deploys" and stored.redacted
    assert stored.redacted_for == {"NEW_AGENT_KEY"}
    assert task.name == "use-sk-live" and stored.name == "use-redacted-new-agent"  # made anew


async def test_a_mark_covers_only_the_names_it_was_made_for(ledger: Ledger) -> None:
    """A row marked before a secret was named is not trusted by a reader without it, nor is
    a mission's; a write under other names takes the mark away; a sweep with the same
    names does nothing twice."""
    before = Redactor([EnvSecrets([], ENV)])
    ledger.tasks.redact_with(before.redact, names=[])
    ledger.missions.redact_with(before.redact, names=[])
    task = await ledger.tasks.add_task(NewTask(f"Use {VALUE}", "chat", "op"), PROJECTED)
    mission = await ledger.missions.add_mission("ops", f"Keys {VALUE}", "op")
    assert mission is not None and mission.redacted and mission.redacted_for == frozenset()
    assert not covers(task.redacted, task.redacted_for, ["NEW_AGENT_KEY"])
    assert covers(task.redacted, task.redacted_for, [])  # a reader with every value redacts

    after = Redactor([EnvSecrets(["NEW_AGENT_KEY"], ENV)])
    ledger.tasks.redact_with(after.redact, names=["NEW_AGENT_KEY"])
    ledger.missions.redact_with(after.redact, names=["NEW_AGENT_KEY"])
    await ledger.tasks.move(task.id, "working", "started")  # before the sweep: mark lost
    moved = await ledger.tasks.task(task.id)
    assert moved is not None and not moved.redacted and VALUE in moved.title
    assert await ledger.tasks.redact_stored() == 1
    assert await ledger.missions.redact_stored() == 1
    assert await ledger.tasks.redact_stored() == 0
    assert await ledger.missions.redact_stored() == 0
    swept = await ledger.tasks.task(task.id)
    assert swept is not None and swept.title == f"Use {LABEL}" and swept.redacted
    assert covers(swept.redacted, swept.redacted_for, ["NEW_AGENT_KEY"])
    kept = await ledger.missions.mission_named("ops")
    assert kept is not None and kept.title == f"Keys {LABEL}"
    assert covers(kept.redacted, kept.redacted_for, ["NEW_AGENT_KEY"])
    await ledger.tasks.move(task.id, "todo", "again")  # same names: the mark stays
    again = await ledger.tasks.task(task.id)
    assert again is not None and again.redacted and again.redacted_for == {"NEW_AGENT_KEY"}
