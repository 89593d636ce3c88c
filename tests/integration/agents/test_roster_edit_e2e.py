"""The roster grown from chat, durably, through the real ``fleetwarden run``: `roster add`,
`roster set` and `roster remove` write the roster file with its comments kept, take effect
as a reload does and survive a restart; a refused edit, a hand edit since the last reload
and a non-admin leave the file byte for byte as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.integration.console_bot import ROSTER_HEAD, ConsoleBot, clean_env

pytestmark = pytest.mark.integration

ROSTER = """\
# The agents, kept by hand and from chat.

# the first one: keep it
- name: keep      # always here
  runtime: stub
  prompt: count to 2
"""


def test_roster_edits_from_chat_are_written_applied_and_kept_across_a_restart(
    tmp_path: Path,
) -> None:
    """add, set (then spawn on the new model), remove (refused while running), a refused
    runtime and a hand edit leave the file as it was; after a restart the added agent is
    there and the file's comments are intact."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(ROSTER_HEAD.format().removesuffix("agents:\n") + "agents: roster.yaml\n")
    roster = tmp_path / "roster.yaml"
    roster.write_text(ROSTER)
    roster.chmod(0o640)
    with ConsoleBot(tmp_path, "--config", str(config), env=clean_env()) as bot:
        bot.command(
            "roster add extra --runtime stub --model m1", r"Roster file updated\. .*added: extra\."
        )
        bot.command("roster", r"extra\s+stub / m1\s")
        assert roster.read_text() == ROSTER + "- name: extra\n  runtime: stub\n  model: m1\n"
        assert roster.stat().st_mode & 0o777 == 0o640

        before = roster.read_bytes()
        bot.command(
            "roster add odd --runtime stbu", r"unknown runtime 'stbu' — did you mean 'stub'"
        )
        bot.command("roster set extra modle m2", r"unknown agent key 'modle': did you mean 'model'")
        bot.command("roster add keep --runtime stub", r"'keep' is already in the roster")
        bot.command("roster set extra env {GITHUB_TOKEN: abc}", r"not changed.*GITHUB_TOKEN")
        assert roster.read_bytes() == before

        bot.command("roster set extra model m2", r"Roster file updated\. .*changed: extra\.")
        bot.command("spawn extra", r"Agent extra started \(stub\)")
        bot.command("ps", r"extra\s+stub / m2\s+running")
        bot.command("roster remove extra", r"'extra' is running: `?stop extra`? first")
        bot.command("stop extra", r"Stopped extra")
        bot.command("roster remove extra", r"removed: extra\.")
        bot.command("roster add late --runtime stub", r"added: late\.")

        roster.write_text(roster.read_text() + "# a note typed on the host\n")
        edited = roster.read_bytes()
        bot.command(
            "roster set late model x", r"changed on disk since .*run `?roster reload`? first"
        )
        assert roster.read_bytes() == edited
        bot.command("roster reload", r"Roster reloaded")
        bot.command("roster set late model m3", r"changed: late\.")
        assert bot.close() == 0

    expected = ROSTER + "- name: late\n  runtime: stub\n  model: m3\n# a note typed on the host\n"
    assert roster.read_text() == expected
    with ConsoleBot(tmp_path, "--config", str(config), env=clean_env()) as again:
        again.command("roster", r"late\s+stub / m3\s")
        assert again.close() == 0


def test_the_roster_in_the_config_file_is_edited_there_and_only_by_an_admin(
    tmp_path: Path,
) -> None:
    """With the agents in the config file itself, an edit lands there with the rest kept;
    an operator's edit is refused and writes nothing."""
    config = tmp_path / "fleetwarden.yaml"
    head = ROSTER_HEAD.format()
    config.write_text(head + "  # the worker\n  - name: w   # one\n    runtime: stub\n")
    with ConsoleBot(tmp_path, "--config", str(config), env=clean_env()) as bot:
        bot.command("roster set w allow [Read, Edit]", r"changed: w\.")
        assert bot.close() == 0
    assert config.read_text() == head + (
        "  # the worker\n  - name: w   # one\n    runtime: stub\n    allow: [Read, Edit]\n"
    )

    config.write_text(config.read_text().replace("  console: {}", "  console: {role: operator}"))
    before = config.read_bytes()
    with ConsoleBot(tmp_path, "--config", str(config), env=clean_env()) as bot:
        bot.command(
            "roster add x --runtime stub",
            r"`?roster add`? changes the fleet and needs the admin role",
        )
        bot.command("roster remove w", r"needs the admin role")
        assert bot.close() == 0
    assert config.read_bytes() == before
    assert audited(tmp_path, "roster %") == [
        ("roster set", "ok"),
        ("roster add", "denied"),
        ("roster remove", "denied"),
    ]


def audited(root: Path, like: str) -> list[tuple[str, str]]:
    """The audit trail's commands matching ``like``, with their outcomes, in order."""
    ledger = sqlite3.connect(root / "state" / "ledger.db")
    try:
        query = "SELECT command, outcome FROM audit WHERE command LIKE ? ORDER BY id"
        return [(str(c), str(o)) for c, o in ledger.execute(query, (like,))]
    finally:
        ledger.close()
