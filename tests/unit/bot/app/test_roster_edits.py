"""Tests for bot.app.roster_edits: an edit from chat checked as a reload is, written only
when a reload would take it, refused over a hand edit, and undone when the reload after it
is refused — over the real fleet and the real reload."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.app import roster_edits
from bot.app.reload import reload_config
from bot.app.roster_edits import RosterKeeper, digests
from bot.commands.errors import CommandError
from bot.config import Offered, load_config
from bot.config.roster.edit import AddAgent, RemoveAgent, SetKey
from fleet.ledger import Ledger
from fleet.supervisor.fleet import Fleet, RosterDiff
from tests.unit.bot.app.reload_rig import fleet_on

CONFIG = "state_dir: ./state\nagents: roster.yaml\n"
ROSTER = "# Ours.\n- name: one   # the first\n  runtime: stub\n"
SECRET = "sk-ant-api03-" + "A1b2C3d4" * 6  # shaped like a key, no key


def keeper_of(tmp_path: Path, fleet: Fleet) -> RosterKeeper:
    """A keeper over ``tmp_path``'s config, reloading through the real reload."""
    config = load_config(tmp_path / "fleetwarden.yaml", os.environ)

    async def reload() -> RosterDiff:
        return await reload_config(config, os.environ, Offered(), fleet)

    return RosterKeeper(
        config,
        os.environ,
        Offered(),
        fleet,
        reload,
        None,
        digests(config, os.environ),
    )


async def test_an_edit_is_written_and_applied_a_refused_one_writes_nothing(
    tmp_path: Path, ledger: Ledger
) -> None:
    """An added agent is in the file and the fleet's roster; an unknown runtime or key
    is refused, the file byte for byte as it was."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    async with fleet_on(tmp_path, ledger, CONFIG) as fleet:
        keeper = keeper_of(tmp_path, fleet)
        diff = await keeper.edit(AddAgent("two", {"runtime": "stub"}))
        assert diff.added == ("two",)
        assert roster.read_text() == ROSTER + "- name: two\n  runtime: stub\n"
        assert {spec.name for spec in fleet.roster()} == {"one", "two"}
        before = roster.read_bytes()
        with pytest.raises(CommandError, match=r"nothing was written.*unknown runtime 'stbu'"):
            await keeper.edit(AddAgent("three", {"runtime": "stbu"}))
        with pytest.raises(CommandError, match="unknown agent key 'runtim'"):
            await keeper.edit(SetKey("two", "runtim", "stub"))
        assert roster.read_bytes() == before


async def test_a_hand_edit_since_the_last_read_is_never_overwritten(
    tmp_path: Path, ledger: Ledger
) -> None:
    """The file changed on disk: the edit is refused, saying to reload first; once the
    keeper has read it again, the edit keeps the hand edit too."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    async with fleet_on(tmp_path, ledger, CONFIG) as fleet:
        keeper = keeper_of(tmp_path, fleet)
        roster.write_text(ROSTER + "# typed on the host\n")
        with pytest.raises(CommandError, match=r"changed on disk .*`roster reload` first"):
            await keeper.edit(SetKey("one", "model", "m2"))
        assert roster.read_text() == ROSTER + "# typed on the host\n"
        keeper.remember()  # what a reload does once it has read the file
        await keeper.edit(SetKey("one", "model", "m2"))
        assert roster.read_text() == ROSTER + "  model: m2\n# typed on the host\n"


async def test_a_reload_refused_after_the_write_puts_the_file_back(
    tmp_path: Path, ledger: Ledger
) -> None:
    """Were the reload after the write refused, the file is as it was before the edit."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    async with fleet_on(tmp_path, ledger, CONFIG) as fleet:
        config = load_config(tmp_path / "fleetwarden.yaml", os.environ)

        async def refused() -> RosterDiff:
            raise CommandError("the roster was not reloaded; nothing changed: refused")

        keeper = RosterKeeper(
            config, os.environ, Offered(), fleet, refused, None,
            digests(config, os.environ),
        )  # fmt: skip
        with pytest.raises(CommandError, match="refused"):
            await keeper.edit(RemoveAgent("one"))
        assert roster.read_text() == ROSTER


async def test_a_hand_edit_saved_during_the_check_is_not_overwritten(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file saved by hand while the edit is being checked: the edit is refused as
    changed on disk, and the hand edit stands."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    real = roster_edits.checked
    hand = ROSTER + "# typed on the host meanwhile\n"

    async def saved_meanwhile(*args: Any, **kwargs: Any) -> Any:
        checked = await real(*args, **kwargs)
        roster.write_text(hand)  # the operator saves while the check runs
        return checked

    async with fleet_on(tmp_path, ledger, CONFIG) as fleet:
        keeper = keeper_of(tmp_path, fleet)
        monkeypatch.setattr(roster_edits, "checked", saved_meanwhile)
        with pytest.raises(CommandError, match=r"nothing was written: .*changed on disk"):
            await keeper.edit(SetKey("one", "model", "m2"))
        assert roster.read_text() == hand


async def test_a_linked_or_odd_roster_file_is_refused_not_replaced(
    tmp_path: Path, ledger: Ledger
) -> None:
    """A roster file that is a symlink is left a link to its untouched target, the
    refusal naming the target to point `agents:` at; a directory is refused too."""
    real = tmp_path / "etc" / "roster.yaml"
    real.parent.mkdir()
    real.write_text(ROSTER)
    link = tmp_path / "roster.yaml"
    link.symlink_to(real)
    async with fleet_on(tmp_path, ledger, CONFIG) as fleet:
        keeper = keeper_of(tmp_path, fleet)
        with pytest.raises(CommandError, match=rf"roster.yaml is a link to {real}: .*`agents:`"):
            await keeper.edit(AddAgent("two", {"runtime": "stub"}))
        assert link.is_symlink()
        assert real.read_text() == ROSTER
        link.unlink()
        link.mkdir()
        with pytest.raises(CommandError, match="is not a regular file"):
            await keeper.edit(AddAgent("two", {"runtime": "stub"}))


async def test_a_refusal_never_carries_a_pasted_secret(tmp_path: Path, ledger: Ledger) -> None:
    """A credential pasted where a name or a value goes is neither written nor echoed: the
    refusal shows it redacted, the file is untouched."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    async with fleet_on(tmp_path, ledger, CONFIG) as fleet:
        keeper = keeper_of(tmp_path, fleet)
        with pytest.raises(CommandError) as by_name:
            await keeper.edit(SetKey(SECRET, "model", "m2"))
        assert SECRET not in str(by_name.value)
        assert "[redacted" in str(by_name.value)
        with pytest.raises(CommandError, match="looks like a credential") as by_value:
            await keeper.edit(SetKey("one", "env", f"{{FOO: {SECRET}}}"))
        assert SECRET not in str(by_value.value)
        assert roster.read_text() == ROSTER


async def test_a_hand_edit_during_the_reload_is_not_rolled_back_over(
    tmp_path: Path, ledger: Ledger
) -> None:
    """The reload after the write refused and the file saved by hand meanwhile: it is not
    put back over the hand edit, and the refusal says the file changed on disk."""
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    hand = ROSTER + "# typed on the host during the reload\n"
    async with fleet_on(tmp_path, ledger, CONFIG) as fleet:
        config = load_config(tmp_path / "fleetwarden.yaml", os.environ)

        async def saved_then_refused() -> RosterDiff:
            roster.write_text(hand)
            raise CommandError("the roster was not reloaded; nothing changed: refused")

        keeper = RosterKeeper(
            config, os.environ, Offered(), fleet, saved_then_refused, None,
            digests(config, os.environ),
        )  # fmt: skip
        with pytest.raises(CommandError, match=r"refused; .*changed on disk"):
            await keeper.edit(SetKey("one", "model", "m2"))
        assert roster.read_text() == hand
