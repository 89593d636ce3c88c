"""The sandbox of an agent on another host, as far as it is pure: the layout made of the
host's paths, its doors, and what is refused; and the config's checks of agents' hosts."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from fleet.errors import LaunchFailed
from fleet.hosts.place import HostPlace
from fleet.hosts.sandbox import EGRESS, asked_dirs, wrap
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


def hidden_whole(argv: list[str] | tuple[str, ...], path: str) -> bool:
    """Whether ``path`` is under a tmpfs of ``argv`` (its own, or one over a parent: a
    hidden path inside another gets none of its own)."""
    covers = {Path(b) for a, b in itertools.pairwise(argv) if a == "--tmpfs"}
    return any(Path(path).is_relative_to(top) for top in covers)


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
    assert hidden_whole(argv, "/home/fw/agents-state")  # the state dir out of sight
    assert ("--tmpfs", "/home/fw/agents-state") not in pairs  # under /home: no mount point
    assert ("--tmpfs", "/root") in pairs and ("--tmpfs", "/srv/other") in pairs
    assert ("--bind", PLACE.work_of("c1")) in pairs and ("--bind", PLACE.home_of("c1")) in pairs
    assert ("--ro-bind-try", PLACE.lib) in pairs  # the forwarder's copy, bound back
    assert ("--ro-bind-try", "/home/fw/.npm-global/bin") in pairs  # the host said nothing more
    assert ("--ro-bind-try", "/home/fw/.npm-global") not in pairs
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


def test_every_sandbox_on_a_host_hides_the_same_directories_whatever_agents_it_knows() -> None:
    """Agents there share one uid: the state dir, the remote user's home, the entry's
    `workdirs` and /root, /home are hidden whole by every sandbox, known agents or not, and
    only the agent's own workdir and HOME are bound back (a known agent's workdir in
    `workdirs` gets no mount point beside its own)."""
    place = replace(PLACE, home="/var/lib/fw", workdirs="/srv/agents")
    mine = replace(plan(), cwd=Path("/srv/agents/c1"))
    argv = wrap(spec(), mine, place, URLS, [])[0].argv
    alone = set(itertools.pairwise(argv))
    for whole in ("/home/fw/agents-state", "/var/lib/fw", "/srv/agents", "/root", "/home"):
        assert hidden_whole(argv, whole), whole
    assert ("--bind", "/srv/agents/c1") in alone
    knowing = set(
        itertools.pairwise(wrap(spec(), mine, place, URLS, [Path("/srv/agents/b")])[0].argv)
    )
    assert {p for p in knowing if p[0] == "--tmpfs"} >= {p for p in alone if p[0] == "--tmpfs"}
    assert ("--tmpfs", "/srv/agents/b") not in knowing  # its name never shows beside c1


@pytest.mark.parametrize(
    ("workdir", "real", "said"),
    [
        ("/opt/proj", None, "its workdir /opt/proj lies outside what every sandbox there hides"),
        ("/home/fw/link", "/opt/proj", "its workdir /opt/proj lies outside"),  # a symlink out
        ("/home/fw", None, "its workdir /home/fw is or holds /home/fw"),  # the login's home
        ("/home", None, "its workdir /home is or holds /home/fw/agents-state"),
    ],
)
def test_a_workdir_no_sandbox_there_hides_is_refused_with_the_fix(
    workdir: str, real: str | None, said: str
) -> None:
    found = {workdir: real} if real is not None else {}
    with pytest.raises(LaunchFailed, match="c1 cannot start on host box2: ") as refused:
        wrap(spec(), replace(plan(), cwd=Path(workdir)), PLACE, URLS, [], real=found)
    assert said in str(refused.value)
    if "outside" in said:
        assert "or name its parent in the host's `workdirs:`" in str(refused.value)


def test_a_workdir_below_the_home_or_the_hosts_workdirs_is_accepted_where_it_really_lies() -> None:
    place = replace(PLACE, workdirs="/srv/agents")
    for named, real in (("/home/fw/proj", "/home/fw/proj"), ("/home/fw/w", "/srv/agents/w")):
        found = {named: real}
        wrapped, _ = wrap(spec(), replace(plan(), cwd=Path(named)), place, URLS, [], real=found)
        argv = list(wrapped.argv)
        assert ("--bind", real) in set(itertools.pairwise(argv))
        assert argv[argv.index("--chdir") + 1] == real
    assert place.hidden_whole == (
        "/home/fw/agents-state", "/home/fw", "/srv/agents", "/root", "/home"
    )  # fmt: skip


def test_a_path_directory_under_a_hidden_path_brings_back_what_the_host_says_it_needs() -> None:
    """The host answers for the PATH directories under what it hides (a ``bin`` with its
    install); those come back as it said, the rest with their prefix as before."""
    path = "/home/fw/.npm-global/bin:/home/fw/tools:/opt/node/bin:/usr/bin"
    asked = asked_dirs(path, PLACE.hidden_whole)
    assert asked == [("/home/fw/.npm-global/bin", True), ("/home/fw/tools", False)]
    needs = {"/home/fw/.npm-global/bin": ["/home/fw/.npm-global/bin", "/home/fw/.npm-global/lib"]}
    wrapped, _ = wrap(spec(), replace(plan(), env={"PATH": path}), PLACE, URLS, [], needs=needs)
    bound = {b for a, b in itertools.pairwise(wrapped.argv) if a == "--ro-bind-try"}
    assert {"/home/fw/.npm-global/lib", "/home/fw/tools"} <= bound  # /opt is not hidden
    assert "/home/fw/.npm-global" not in bound and "/home/fw/.npm-global/etc" not in bound
