"""Tests for the agents' peers where operators read them: the `roster` table (bot.render.fleet)
with each agent's role and talks_to, defused, and `check-config`'s summary."""

from __future__ import annotations

from pathlib import Path

from bot.cli.check.summary import summary as _summary
from bot.config import parse_config
from bot.render import fleet as render
from fleet.model import AgentSpec
from fleet.names import AgentName


def agent(name: str, *talks_to: str, purpose: str | None = None) -> AgentSpec:
    return AgentSpec(
        name=AgentName(name),
        runtime="stub",
        purpose=purpose,
        talks_to=tuple(AgentName(t) for t in talks_to),
    )


def test_the_roster_shows_role_and_talks_to_when_set() -> None:
    shown = render.roster(
        [agent("coder", "reviewer", "tester", purpose="writes *the* code"), agent("tester")]
    )
    lines = shown.splitlines()
    assert lines[0] == (
        "| name | runtime | class | backend | restart | autostart | role | talks to |"
    )
    assert lines[2] == (
        "| coder | stub | – | subprocess | never | no | writes \\*the\\* code | reviewer, tester |"
    )
    assert lines[3] == "| tester | stub | – | subprocess | never | no | – | – |"


def test_the_roster_without_peers_keeps_its_columns() -> None:
    assert render.roster([agent("a")]).splitlines()[0] == (
        "| name | runtime | class | backend | restart | autostart |"
    )


def test_a_hostile_role_stays_in_its_cell() -> None:
    """A role from a spec the ledger holds (never checked by the config): one line, its
    markup and pipes escaped, its hidden characters gone."""
    shown = render.roster([agent("a", purpose="x | y\n# heading\u202e [link](https://e.x)")])
    row = shown.splitlines()[2]
    assert len(shown.splitlines()) == 3
    assert "\u202e" not in row and "\n" not in row
    assert "x \\\\| y ⏎ # heading \\[link\\](https://e.x)" in row


def test_check_config_mentions_the_peers() -> None:
    config = parse_config(
        "agents:\n"
        "  - name: coder\n    role: writes code\n    talks_to: [tester]\n"
        "  - name: tester\n",
        "fleetwarden.yaml",
        base_dir=Path("/srv/fw"),
    )
    summary = _summary(config, []).splitlines()
    assert "  peers:      coder → tester (writes code)" in summary
    assert not any("tester →" in line for line in summary)
    plain = parse_config("agents:\n  - name: a\n", "f.yaml", base_dir=Path("/srv/fw"))
    assert not any(line.startswith("  peers:") for line in _summary(plain, []).splitlines())
