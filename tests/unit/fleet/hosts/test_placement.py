"""Where an agent runs: a named host's room under max_agents, and `host: any` picking the
host with the most room that is up and has the agent's CLI, or saying why none will do."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.hosts.place import HostPlace
from fleet.hosts.probe import HostFacts, Tool
from fleet.hosts.schema import HostEntry
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.runs.launch.placement import place


class FakeHosts:
    """Hosts as placing sees them: ``up`` the ones connected, ``clis`` what each has."""

    def __init__(self, limits: dict[str, int], up: set[str], clis: dict[str, set[str]]) -> None:
        self._entries = {
            name: HostEntry(
                name=name,
                ssh=f"fw@10.0.0.{i + 2}",
                key_file=Path("/k"),
                known_hosts=Path("/kh"),
                max_agents=limit,
            )
            for i, (name, limit) in enumerate(limits.items())
        }
        self._up = up
        self._clis = clis

    def names(self) -> list[str]:
        return list(self._entries)

    def entry(self, name: str) -> HostEntry | None:
        return self._entries.get(name)

    def place(self, name: str) -> HostPlace | None:
        return HostPlace(name, "/home/fw", "/home/fw/s") if name in self._up else None

    def facts(self, name: str) -> HostFacts | None:
        tools = tuple(Tool(t, f"/usr/bin/{t}", "1.0") for t in sorted(self._clis.get(name, ())))
        return HostFacts("/home/fw", None, 2, None, None, None, tools)


def spec(host: str, runtime: str = "claude") -> AgentSpec:
    return AgentSpec(name=AgentName("c1"), runtime=runtime, host=host)


HOSTS = FakeHosts(
    {"box2": 4, "box3": 6, "box4": 10, "box5": 10},
    up={"box2", "box3", "box4"},
    clis={"box2": {"claude"}, "box3": {"claude", "codex"}, "box4": {"codex"}},
)


def test_any_picks_the_up_host_with_the_most_room_that_has_the_cli() -> None:
    # box4 has the most room but no claude; box5 is down; box3 has 6 - 1 = 5 > 4 - 0.
    placed = place(spec("any"), HOSTS, {"box3": 1})
    assert (placed.host, placed.backend) == ("box3", "subprocess")  # its own backend, there
    assert place(spec("any"), HOSTS, {"box3": 5}).host == "box2"
    assert place(spec("any", "stub"), HOSTS, {}).host == "box4"  # the stub needs Python only


def test_any_says_why_no_host_will_do() -> None:
    with pytest.raises(LaunchFailed) as caught:
        place(spec("any"), HOSTS, {"box2": 4, "box3": 6})
    assert str(caught.value) == (
        "c1 cannot start on any host: box2 is full; box3 is full; box4 has no claude; "
        "box5 cannot be reached"
    )


def test_a_named_host_that_is_full_is_refused_with_the_fix() -> None:
    assert place(spec("box2"), HOSTS, {"box2": 3}).host == "box2"
    with pytest.raises(LaunchFailed, match=r"host box2 is full \(4 of its max_agents 4"):
        place(spec("box2"), HOSTS, {"box2": 4})
