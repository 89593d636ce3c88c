"""The sandbox of an agent on another host, as far as it is pure: the layout made of the
host's paths, its doors, and what is refused; and the config's checks of agents' hosts."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleet.errors import LaunchFailed
from fleet.hosts.place import HostPlace
from fleet.hosts.sandbox import EGRESS, wrap
from fleet.hosts.schema import placement_problems
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName

PLACE = HostPlace(
    "box2",
    "/home/fw",
    "/home/fw/agents-state",
    {8100: 41001, 8200: 41002},
    has_bwrap=True,
    system_hidden=("/root", "/home"),
    secret_files=("/etc/shadow",),
)
URLS = ["http://127.0.0.1:41001/a/c1/anthropic/k", "http://127.0.0.1:41002/heartbeat/c1"]


def plan() -> LaunchPlan:
    return LaunchPlan(
        argv=("claude", "-p", "hi"),
        env={"PATH": "/home/fw/.npm-global/bin:/usr/bin"},
        cwd=Path(PLACE.work_of("c1")),
    )


def spec(**changes: object) -> AgentSpec:
    fields: dict[str, object] = {
        "name": AgentName("c1"),
        "runtime": "claude",
        "host": "box2",
        "egress_allow": (),
    }
    fields.update(changes)
    return AgentSpec(**fields)  # type: ignore[arg-type]


def test_a_locked_agent_on_a_host_gets_its_hosts_layout_and_a_door_per_url() -> None:
    wrapped, doors = wrap(spec(), plan(), PLACE, URLS, [Path("/srv/other"), Path("/home/fw/x")])
    argv = list(wrapped.argv)
    assert wrapped.sandboxed and wrapped.run_as is None and wrapped.cgroups == ()
    assert argv[0] == "bwrap" and "--share-net" not in argv  # a network of its own
    pairs = set(itertools.pairwise(argv))
    assert ("--tmpfs", "/home/fw/agents-state") in pairs  # the state dir out of sight
    assert ("--tmpfs", "/root") in pairs and ("--tmpfs", "/srv/other") in pairs
    assert ("--bind", PLACE.work_of("c1")) in pairs and ("--bind", PLACE.home_of("c1")) in pairs
    assert ("--ro-bind-try", PLACE.lib) in pairs  # the forwarder's copy, bound back
    assert ("--ro-bind-try", "/home/fw/.npm-global") in pairs  # the CLI's prefix
    assert ("--ro-bind", "/dev/null") in pairs  # the host's key files shown empty
    door_dir = f"{PLACE.agent_dir('c1')}/doors"
    assert doors == {f"{door_dir}/tcp-41001.sock": 41001, f"{door_dir}/tcp-41002.sock": 41002}
    assert "--door" in argv


def test_an_open_agent_on_a_host_shares_its_network_and_has_no_doors() -> None:
    wrapped, doors = wrap(spec(egress="open"), plan(), PLACE, URLS, [])
    assert "--share-net" in wrapped.argv and doors == {}


def test_a_host_without_bubblewrap_is_refused_with_the_fix() -> None:
    no_bwrap = HostPlace("box2", "/home/fw", "/home/fw/s", {}, has_bwrap=False)
    with pytest.raises(LaunchFailed, match="has no bubblewrap — install it there"):
        wrap(spec(), plan(), no_bwrap, URLS, [])


def test_a_locked_allow_list_on_a_host_is_a_door_to_its_forward_proxy_here() -> None:
    """The allow-list's forward proxy answers at a door too: HTTPS_PROXY points there, and
    the door leads to the agent's allow-list door here."""
    wrapped, doors = wrap(spec(egress_allow=("github.com",)), plan(), PLACE, URLS, [])
    assert doors[f"{PLACE.agent_dir('c1')}/doors/egress.sock"] == EGRESS
    assert "3128=/run/fw/egress.sock" in " ".join(wrapped.argv)
    assert wrapped.env["HTTPS_PROXY"].endswith(":3128")


def test_the_config_names_an_unknown_host_and_any_without_hosts() -> None:
    hosts = [SimpleNamespace(name="box2")]
    agents = [SimpleNamespace(host=h) for h in ("local", "box9", "box2", "any")]
    problems = list(placement_problems(hosts, agents))  # type: ignore[arg-type]
    assert [loc for loc, _ in problems] == [("agents", 1, "host")]
    assert "no host 'box9' in the config's hosts (known: box2)" in problems[0][1]
    alone = list(placement_problems([], [SimpleNamespace(host="any")]))  # type: ignore[arg-type]
    assert "`host: any` picks one of the config's hosts, and it lists none" in alone[0][1]
