"""Where an agent's workdir may lie on a host: refused at launch, with the fix, inside or
around another agent's workdir there, in the host's state dir (but for its own default),
in a home's hidden directories; and what `check-config` can tell from the config alone."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.hosts.place import HostPlace
from fleet.hosts.sandbox import wrap
from fleet.hosts.schema import HostEntry
from fleet.hosts.workdirs import HostAgent, config_problems
from fleet.model import AgentSpec, LaunchPlan
from fleet.names import AgentName

STATE = "/home/fw/.fleetwarden-agents"
PLACE = HostPlace(
    "box2",
    "/home/fw",
    STATE,
    {8100: 41001},
    has_bwrap=True,
    system_hidden=("/root", "/home"),
    workdirs="/srv/agents",
)


def spec() -> AgentSpec:
    return AgentSpec(name=AgentName("c1"), runtime="stub", host="box2", egress_allow=())


def launch(
    workdir: str, others: list[str] | None = None, real: dict[str, str] | None = None
) -> tuple[LaunchPlan, dict[str, int | str]]:
    plan = LaunchPlan(argv=("python3", "agent.py"), env={"PATH": "/usr/bin"}, cwd=Path(workdir))
    return wrap(spec(), plan, PLACE, [], [Path(p) for p in others or []], real=real)


@pytest.mark.parametrize(
    ("workdir", "other", "said"),
    [
        (
            "/srv/agents/a/c1",
            "/srv/agents/a",
            "its workdir /srv/agents/a/c1 lies inside /srv/agents/a, another agent's workdir "
            "there, whose sandbox binds it back whole, this one's with it; give each agent a "
            "directory of its own side by side (e.g. /srv/agents/c1)",
        ),
        (
            "/srv/agents/a",
            "/srv/agents/a/b",
            "its workdir /srv/agents/a holds /srv/agents/a/b, another agent's workdir there, "
            "which its sandbox would bind back with its own; give each agent a directory of "
            "its own side by side (e.g. /srv/agents/b)",
        ),
    ],
)
def test_a_workdir_inside_or_around_another_agents_is_refused_with_the_fix(
    workdir: str, other: str, said: str
) -> None:
    with pytest.raises(LaunchFailed) as refused:
        launch(workdir, ["/srv/agents/z", other])
    assert str(refused.value) == f"c1 cannot start on host box2: {said}"


def test_nesting_is_judged_where_the_workdirs_really_lie() -> None:
    """The other agent's workdir named through a symlink that leads into this one's."""
    real = {"/home/fw/link": "/srv/agents/mine/theirs"}
    with pytest.raises(LaunchFailed, match="holds /srv/agents/mine/theirs, another agent's"):
        launch("/srv/agents/mine", ["/home/fw/link"], real=real)


def test_side_by_side_and_shared_workdirs_start() -> None:
    """Beside another's, or the very same directory (shared on purpose, as here)."""
    for others in (["/srv/agents/a", "/home/fw/b"], ["/srv/agents/c1"]):
        wrapped, _ = launch("/srv/agents/c1", others)
        assert ("--bind", "/srv/agents/c1") in set(itertools.pairwise(wrapped.argv))


@pytest.mark.parametrize(
    "workdir",
    [
        f"{STATE}/lib",  # Fleetwarden's scripts: the shim runs as root on a root login
        f"{STATE}/lib/fleet/backends",
        f"{STATE}/agents/other/home",  # another agent's HOME
        f"{STATE}/agents/c1/runs/20250101T000000",  # its own runs
        f"{STATE}/agents/other/work",  # another agent's default workdir
        f"{STATE}/agents",
    ],
)
def test_a_workdir_in_the_hosts_state_dir_is_refused_but_its_own_default(workdir: str) -> None:
    with pytest.raises(LaunchFailed) as refused:
        launch(workdir)
    assert f"its workdir {workdir} lies in the host's state dir {STATE}, which holds" in str(
        refused.value
    )
    assert "leave `workdir` out for a directory of its own there" in str(refused.value)


def test_its_own_default_workdir_in_a_hidden_state_dir_starts() -> None:
    wrapped, _ = launch(PLACE.work_of("c1"))
    assert ("--bind", PLACE.work_of("c1")) in set(itertools.pairwise(wrapped.argv))


@pytest.mark.parametrize(
    ("workdir", "hidden"),
    [
        ("/home/fw/.ssh", "/home/fw/.ssh"),
        ("/home/fw/.config/gh", "/home/fw/.config"),
        ("/home/alice/.aws", "/home/alice/.aws"),
        ("/root/.gnupg/x", "/root/.gnupg"),
    ],
)
def test_a_workdir_in_a_homes_hidden_directory_is_refused(workdir: str, hidden: str) -> None:
    with pytest.raises(LaunchFailed) as refused:
        launch(workdir)
    assert (
        f"its workdir {workdir} lies in {hidden}, a hidden directory of a home, where keys "
        "and tokens are kept"
    ) in str(refused.value)


def test_a_symlink_into_the_logins_ssh_directory_is_refused_where_it_leads() -> None:
    real = {"/srv/agents/keys": "/home/fw/.ssh"}
    with pytest.raises(LaunchFailed, match=r"its workdir /home/fw/\.ssh lies in /home/fw/\.ssh"):
        launch("/srv/agents/keys", real=real)


def test_a_plain_directory_of_the_home_still_starts() -> None:
    wrapped, _ = launch("/home/fw/projects/x")
    assert ("--bind", "/home/fw/projects/x") in set(itertools.pairwise(wrapped.argv))


def entry(**fields: object) -> HostEntry:
    base: dict[str, object] = {
        "name": "box2",
        "ssh": "fw@10.0.0.2",
        "key_file": "/k",
        "known_hosts": "/kh",
    }
    return HostEntry.model_validate({**base, **fields})


def test_check_config_names_nested_workdirs_on_one_host_without_connecting() -> None:
    hosts = [entry(), entry(name="box3", ssh="fw@10.0.0.3")]
    agents = [
        HostAgent("a", "box2", Path("/srv/agents/a"), True),
        HostAgent("b", "box2", Path("/srv/agents/a/b"), False),
        HostAgent("c", "box3", Path("/srv/agents/a/c"), True),  # another host: no matter
        HostAgent("d", "box2", Path("/srv/agents/d"), True),
        HostAgent("e", "any", Path("/srv/agents/d/e"), True),  # placed at launch
        HostAgent("f", "box3", Path("/srv/x/f"), False),  # neither sandboxed
        HostAgent("g", "box3", Path("/srv/x/f/g"), False),
    ]
    assert config_problems(hosts, agents) == [
        "agent 'a' cannot start on host box2: its workdir /srv/agents/a holds "
        "/srv/agents/a/b, another agent's workdir there, which its sandbox would bind back "
        "with its own; give each agent a directory of its own side by side (e.g. "
        "/srv/agents/b)",
        "agent 'b' cannot start on host box2: its workdir /srv/agents/a/b lies inside "
        "/srv/agents/a, another agent's workdir there, whose sandbox binds it back whole, "
        "this one's with it; give each agent a directory of its own side by side (e.g. "
        "/srv/agents/b)",
    ]


def test_check_config_names_workdirs_in_or_around_an_absolute_state_dir() -> None:
    hosts = [entry(state_dir="/var/lib/fw", workdirs="/srv/agents")]
    agents = [
        HostAgent("a", "box2", Path("/var/lib/fw/lib"), True),
        HostAgent("b", "box2", Path("/var/lib"), True),
        HostAgent("c", "box2", Path("/var/lib/fw/agents/c/work"), True),  # its own default
        HostAgent("d", "box2", Path("/srv"), True),
        HostAgent("e", "box2", Path("/home/fw/.ssh"), True),
        HostAgent("f", "box2", Path("/home/fw/.ssh"), False),  # no sandbox: nothing to hold
    ]
    found = config_problems(hosts, agents)
    assert [line.split(":")[0] for line in found] == [
        "agent 'a' cannot start on host box2",
        "agent 'b' cannot start on host box2",
        "agent 'd' cannot start on host box2",
        "agent 'e' cannot start on host box2",
    ]
    assert "its workdir /var/lib/fw/lib lies in the host's state dir /var/lib/fw" in found[0]
    assert "its workdir /var/lib is or holds /var/lib/fw" in found[1]
    assert "its workdir /srv is or holds /srv/agents" in found[2]
    assert "lies in /home/fw/.ssh, a hidden directory of a home" in found[3]


@pytest.mark.parametrize(
    ("state_dir", "workdirs", "said"),
    [
        ("~/fw", "~/fw/work", "overlap"),
        ("/srv/fw", "/srv", "overlap"),
        (
            "~/.fleetwarden-agents",
            "~/.agents",
            "a hidden directory of the login's home (~/.agents)",
        ),
        ("/var/lib/fw", "~/work", None),  # where the home is decides: said at launch
        ("~/.fleetwarden-agents", "/srv/agents", None),
    ],
)
def test_check_config_names_a_hosts_workdirs_no_workdir_could_use(
    state_dir: str, workdirs: str, said: str | None
) -> None:
    found = config_problems([entry(state_dir=state_dir, workdirs=workdirs)], [])
    if said is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(f"host box2: its `workdirs: {workdirs}`")
        assert said in found[0]


def test_an_unplaced_or_local_agent_is_not_judged_as_a_hosts() -> None:
    agents = [
        HostAgent("a", "local", Path("/srv/a"), True),
        HostAgent("b", "local", Path("/srv/a/b"), True),
    ]
    assert config_problems([entry()], agents) == []
