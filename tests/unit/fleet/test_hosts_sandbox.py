"""The sandbox of an agent on another host, as far as it is pure: the layout made of the
host's paths, its doors, and what is refused; and the config's checks of agents' hosts."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleet.errors import LaunchFailed
from fleet.hosts.place import HostPlace
from fleet.hosts.probe import HostFacts, Tool
from fleet.hosts.sandbox import wrap
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


def test_a_host_without_bubblewrap_or_a_locked_allow_list_is_refused_with_the_fix() -> None:
    no_bwrap = HostPlace("box2", "/home/fw", "/home/fw/s", {}, has_bwrap=False)
    with pytest.raises(LaunchFailed, match="has no bubblewrap — install it there"):
        wrap(spec(), plan(), no_bwrap, URLS, [])
    with pytest.raises(LaunchFailed, match="set `egress_allow: \\[\\]`"):
        wrap(spec(egress_allow=("github.com",)), plan(), PLACE, URLS, [])


def test_the_config_names_an_unknown_host_and_a_locked_allow_list_on_a_host() -> None:
    hosts = [SimpleNamespace(name="box2")]
    defaults = SimpleNamespace(sandbox="bwrap", egress="locked", egress_allow=("github.com",))

    def agent(**fields: object) -> SimpleNamespace:
        base = {"host": "box2", "sandbox": None, "egress": None, "egress_allow": None}
        return SimpleNamespace(**{**base, **fields})

    agents = [
        agent(host="local"),
        agent(host="box9"),
        agent(),
        agent(egress_allow=()),
        agent(sandbox="none"),
        agent(egress="open"),
    ]
    problems = list(placement_problems(hosts, agents, defaults))  # type: ignore[arg-type]
    assert [loc for loc, _ in problems] == [("agents", 1, "host"), ("agents", 2, "host")]
    assert "no host 'box9' in the config's hosts (known: box2)" in problems[0][1]
    assert "set `egress_allow: []`" in problems[1][1]


def test_the_hosts_cli_install_is_bound_back_where_a_hidden_path_covers_it() -> None:
    """An npm CLI under the private /tmp (or a hidden home): its bin directory and the
    outermost node_modules its link leads into are bound back read-only."""
    facts = HostFacts(
        "/home/fw",
        None,
        2,
        None,
        None,
        None,
        (
            Tool(
                "claude",
                "/tmp/clis/node_modules/.bin/claude",
                "2.1 (Claude Code)",
                "/tmp/clis/node_modules/@anthropic-ai/claude-code/cli.js",
            ),
        ),
    )
    wrapped, _ = wrap(spec(), plan(), PLACE, URLS, [], facts)
    pairs = set(itertools.pairwise(wrapped.argv))
    assert ("--ro-bind-try", "/tmp/clis/node_modules/.bin") in pairs
    assert ("--ro-bind-try", "/tmp/clis/node_modules") in pairs
