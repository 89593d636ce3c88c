"""Tests for fleet.hosts.schema (a `hosts:` entry, the checks across entries, host names),
fleet.hosts.probe's parsers, fleet.hosts.link.backoff and the remote command line — all without
SSH."""

from __future__ import annotations

import random
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from fleet.hosts.errors import InvalidHostName
from fleet.hosts.link.backoff import Backoff
from fleet.hosts.link.known import host_pattern
from fleet.hosts.probe import (
    PROBE_SCRIPT,
    DiskSpace,
    Tool,
    parse_df,
    parse_loadavg,
    parse_probe,
    parse_tools,
    probe_argv,
)
from fleet.hosts.remote import remote_command
from fleet.hosts.schema import (
    HostEntry,
    SshTarget,
    host_name,
    parse_ssh_target,
    resolve_remote_path,
    section_problems,
)
from fleet.schema import SchemaContext

EXAMPLE = """
hosts:
  - name: box2
    ssh: fw@127.0.0.2:22
    key_file: /path/to/id_ed25519
    key_passphrase_env: FW_KEY_PASS
    known_hosts: /path/to/known_hosts
    max_agents: 20
    state_dir: /var/lib/fleetwarden-agents
"""
CONTEXT = SchemaContext(base_dir=Path("/srv/fw"), home="/home/op")
MINIMAL: dict[str, Any] = {
    "name": "box2",
    "ssh": "fw@127.0.0.2",
    "key_file": "/k/id",
    "known_hosts": "/k/known_hosts",
}


def entry(**changes: Any) -> HostEntry:
    data = {**MINIMAL, **changes}
    data = {key: value for key, value in data.items() if value is not None}
    return HostEntry.model_validate(data, context=CONTEXT)


def only_error(**changes: Any) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        entry(**changes)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return tuple(errors[0]["loc"]), errors[0]["msg"]


# --- A good entry -------------------------------------------------------------------------


def test_the_documented_example_validates_with_every_field() -> None:
    """The hosts guide's example entry reads as written: ssh taken apart, paths kept."""
    raw = yaml.safe_load(EXAMPLE)["hosts"][0]
    host = HostEntry.model_validate(raw, context=CONTEXT)
    assert host.name == "box2"
    assert host.target == SshTarget("fw", "127.0.0.2", 22)
    assert host.key_file == Path("/path/to/id_ed25519")
    assert host.agent is False
    assert host.key_passphrase_env == "FW_KEY_PASS"
    assert host.known_hosts == Path("/path/to/known_hosts")
    assert host.max_agents == 20
    assert host.state_dir == "/var/lib/fleetwarden-agents"


def test_defaults_and_local_paths_resolve_against_the_config_file() -> None:
    """Port 22, 10 agents and ~/.fleetwarden-agents by default; key_file and known_hosts
    are local paths (relative to the config file, ~ is the local home)."""
    host = entry(key_file="keys/id", known_hosts="~/.ssh/fw_known_hosts")
    assert host.target.port == 22
    assert host.max_agents == 10
    assert host.state_dir == "~/.fleetwarden-agents"
    assert host.key_file == Path("/srv/fw/keys/id")
    assert host.known_hosts == Path("/home/op/.ssh/fw_known_hosts")


def test_the_agent_can_log_in_instead_of_a_key_file() -> None:
    """`agent: true` without key_file is a complete entry."""
    host = entry(key_file=None, agent=True)
    assert host.agent and host.key_file is None


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("fw@127.0.0.2", SshTarget("fw", "127.0.0.2", 22)),
        ("fw@127.0.0.2:2222", SshTarget("fw", "127.0.0.2", 2222)),
        ("deploy.bot@box2.example.net:22", SshTarget("deploy.bot", "box2.example.net", 22)),
        ("fw@[::1]", SshTarget("fw", "::1", 22)),
        ("fw@[2001:db8::2]:2200", SshTarget("fw", "2001:db8::2", 2200)),
    ],
)
def test_ssh_targets_parse_into_user_address_and_port(text: str, target: SshTarget) -> None:
    """user@address[:port], the port 22 by default, an IPv6 address in brackets."""
    assert parse_ssh_target(text) == target
    assert parse_ssh_target(str(target)) == target  # written back, it reads the same


def test_an_entry_keeps_ssh_written_in_full() -> None:
    """The validated `ssh` value names the port even where the file left it out."""
    assert entry(ssh="fw@[::1]").ssh == "fw@[::1]:22"


# --- Bad entries: each says which field and what to write ---------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("Box2", "lowercase letter first"),
        ("2box", "lowercase letter first"),
        ("box_2", "lowercase letters, digits or '-'"),
        ("b" * 33, "1-32 characters"),
        ("local", "this machine"),
        ("any", "whichever host has room"),
    ],
)
def test_bad_names_are_refused_with_the_rule(name: str, words: str) -> None:
    """Names follow the agent-name pattern; `local` and `any` are reserved."""
    loc, message = only_error(name=name)
    assert loc == ("name",)
    assert words in message


@pytest.mark.parametrize(
    ("ssh", "words"),
    [
        ("127.0.0.2", "must be user@address[:port]"),
        ("@127.0.0.2", "is not a user name"),
        ("-oProxyCommand=x@127.0.0.2", "is not a user name"),
        ("fw@", "is not a host name or IPv4 address"),
        ("fw@::1", "an IPv6 address goes in brackets"),
        ("fw@[not-v6]:22", "is not an IPv6 address"),
        ("fw@box_2.example", "is not a host name"),
        ("fw@999.1.1.1", "is not a host name or IPv4 address"),
        ("fw@box2:0", "from 1 to 65535"),
        ("fw@box2:65536", "from 1 to 65535"),
        ("fw@box2:ssh", "must be a number"),
        ("fw@box2 ;rm", "is not a host name"),
    ],
)
def test_bad_ssh_targets_say_what_to_write(ssh: str, words: str) -> None:
    """A malformed `ssh` value is refused at `ssh`, with an example of the right form."""
    loc, message = only_error(ssh=ssh)
    assert loc == ("ssh",)
    assert words in message


def test_neither_key_file_nor_agent_asks_for_one() -> None:
    """An entry must say how to log in."""
    _, message = only_error(key_file=None)
    assert "key_file: /path/to/id_ed25519" in message and "agent: true" in message


def test_key_file_and_agent_together_are_refused() -> None:
    """Exactly one way to log in."""
    _, message = only_error(agent=True)
    assert "give `key_file` or `agent: true`, not both" in message


def test_a_passphrase_variable_needs_a_key_file() -> None:
    """The agent holds its keys unlocked: a passphrase variable there is a mistake."""
    _, message = only_error(key_file=None, agent=True, key_passphrase_env="FW_KEY_PASS")
    assert "remove key_passphrase_env" in message


def test_a_passphrase_itself_is_refused_and_not_echoed() -> None:
    """key_passphrase_env takes a variable's NAME; a pasted passphrase is not shown back."""
    loc, message = only_error(key_passphrase_env="hunter2 correct horse")
    assert loc == ("key_passphrase_env",)
    assert "NAME of an environment variable" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"known_hosts": None}, ("known_hosts",)),
        ({"max_agents": 0}, ("max_agents",)),
        ({"max_agents": "20"}, ("max_agents",)),
        ({"agent": "yes"}, ("agent",)),
        ({"port": 22}, ("port",)),
    ],
)
def test_missing_or_mistyped_fields_are_named(changes: dict[str, Any], loc: tuple[str]) -> None:
    """known_hosts is required, max_agents is a whole number >= 1, agent a boolean, and
    unknown keys are refused."""
    assert only_error(**changes)[0] == loc


@pytest.mark.parametrize(
    ("state_dir", "kept"),
    [
        ("/var/lib/fleetwarden-agents/", "/var/lib/fleetwarden-agents"),
        ("//srv//fw/./agents", "/srv/fw/agents"),
        ("~/fw-agents", "~/fw-agents"),
        ("~", "~"),
    ],
)
def test_state_dir_is_a_remote_path_normalised_not_expanded(state_dir: str, kept: str) -> None:
    """state_dir is the host's path: tidied, and `~` left for the host's home."""
    assert entry(state_dir=state_dir).state_dir == kept


@pytest.mark.parametrize(
    ("state_dir", "words"),
    [
        ("fleetwarden-agents", "absolute path on the host"),
        ("~fw/agents", "no ~user"),
        ("/srv/fw agents", "no spaces"),
        ("/srv/$(reboot)", "letters, digits"),
        ("/srv/../etc", "'..'"),
        ("/", "not be / itself"),
        ("", "absolute path on the host"),
    ],
)
def test_bad_state_dirs_are_refused(state_dir: str, words: str) -> None:
    """Only absolute or ~/ paths of plain characters, without '..'."""
    loc, message = only_error(state_dir=state_dir)
    assert loc == ("state_dir",)
    assert words in message


def test_the_remote_home_resolves_a_tilde_state_dir() -> None:
    """`~/x` is the host's home joined with x; an absolute path stays as it is."""
    assert resolve_remote_path("~/agents", "/home/fw") == "/home/fw/agents"
    assert resolve_remote_path("~", "/home/fw") == "/home/fw"
    assert resolve_remote_path("/srv/agents", "/home/fw") == "/srv/agents"
    with pytest.raises(ValueError, match="not an absolute path"):
        resolve_remote_path("~/agents", "")


def test_duplicate_names_and_accounts_across_entries_are_found() -> None:
    """Two entries with one name, or logging in to the same account on the same host,
    are each reported at the later entry, naming the earlier one."""
    hosts = [
        entry(),
        entry(name="box3", ssh="fw@127.0.0.3"),
        entry(ssh="other@127.0.0.9"),
        entry(name="box4", ssh="fw@127.0.0.3:22"),
    ]
    assert list(section_problems(hosts)) == [
        (("hosts", 2, "name"), "duplicate host name 'box2' (also hosts[0]): rename one"),
        (
            ("hosts", 3, "ssh"),
            "fw@127.0.0.3:22 is also hosts[1]: one entry per account on a host",
        ),
    ]
    assert list(section_problems(hosts[:2])) == []


def test_operator_typed_host_names_are_checked() -> None:
    """host_name() accepts a valid name and raises InvalidHostName otherwise."""
    assert host_name("box-2") == "box-2"
    with pytest.raises(InvalidHostName, match="means this machine"):
        host_name("local")
    with pytest.raises(InvalidHostName, match="not a host name"):
        host_name("box 2; reboot")


def test_every_field_has_a_description() -> None:
    """The configuration guide's reference is generated from the descriptions."""
    assert all(info.description for info in HostEntry.model_fields.values())


# --- Remote command lines and known_hosts names -------------------------------------------


def test_argv_becomes_a_line_a_shell_splits_back_into_it() -> None:
    """Each argument survives the remote shell as one literal word."""
    argv = ["printf", "%s\n", "$(touch /tmp/x); echo hi", "it's", "a b", "`id`", "\n", ""]
    assert shlex.split(remote_command(argv)) == argv


@pytest.mark.parametrize("argv", [[], "echo hi", ["echo", "a\0b"]])
def test_empty_string_or_nul_commands_are_refused(argv: Any) -> None:
    """A command is a non-empty list of strings without NUL: never a shell string."""
    with pytest.raises(ValueError, match="remote command"):
        remote_command(argv)


def test_known_hosts_names_a_non_default_port_in_brackets() -> None:
    """OpenSSH's form: the bare address on port 22, `[address]:port` elsewhere."""
    assert host_pattern("127.0.0.2", 22) == "127.0.0.2"
    assert host_pattern("127.0.0.2", 2222) == "[127.0.0.2]:2222"
    assert host_pattern("::1", 2222) == "[::1]:2222"


# --- Backoff ------------------------------------------------------------------------------


def test_backoff_doubles_from_one_second_to_the_cap_with_bounded_jitter() -> None:
    """About 1, 2, 4, … seconds, never under the first wait nor over the cap; reset
    starts again at the first."""
    backoff = Backoff(1.0, 30.0, rng=random.Random(7))
    waits = [backoff.next() for _ in range(100)]
    assert 1.0 <= waits[0] <= 1.2
    assert 1.6 <= waits[1] <= 2.4
    assert 3.2 <= waits[2] <= 4.8
    assert all(1.0 <= wait <= 30.0 for wait in waits)
    assert all(24.0 <= wait <= 30.0 for wait in waits[5:])
    assert len(set(waits[5:])) > 10  # jittered, not in step
    backoff.reset()
    assert backoff.next() <= 1.2


# --- Probe parsers ------------------------------------------------------------------------

PROBE_OUTPUT = """
@@fleetwarden-probe home
/home/fw

@@fleetwarden-probe uname
Linux 6.1.0-18-amd64 x86_64

@@fleetwarden-probe cpus
8

@@fleetwarden-probe loadavg
0.52 0.58 1.59 1/467 12345

@@fleetwarden-probe df
Filesystem     1024-blocks     Used Available Capacity Mounted on
/dev/nvme0n1p2   490617784 98304512 367293352      22% /

@@fleetwarden-probe tools
claude\t/usr/local/bin/claude\t2.0.14 (Claude Code)
tmux\t/usr/bin/tmux\ttmux 3.3a
bwrap\t/usr/bin/bwrap\t

@@fleetwarden-probe end
"""


def test_a_whole_probe_output_becomes_host_facts() -> None:
    """Every section read; the state dir resolved with the host's home."""
    facts = parse_probe(PROBE_OUTPUT, "~/.fleetwarden-agents")
    assert facts.home == "/home/fw"
    assert facts.system == "Linux 6.1.0-18-amd64 x86_64"
    assert facts.cpus == 8
    assert facts.load == (0.52, 0.58, 1.59)
    assert facts.state_dir == "/home/fw/.fleetwarden-agents"
    assert facts.disk == DiskSpace("/", 490617784 * 1024, 367293352 * 1024)
    assert facts.tool("claude") == Tool("claude", "/usr/local/bin/claude", "2.0.14 (Claude Code)")
    assert facts.has("tmux") and facts.has("bwrap") and not facts.has("codex")
    assert facts.tool("bwrap") == Tool("bwrap", "/usr/bin/bwrap", None)


def test_a_host_that_could_say_little_gives_nones() -> None:
    """No /proc, no df, no tools: those facts are None or empty, nothing raises."""
    text = (
        "@@fleetwarden-probe home\n/home/fw\n@@fleetwarden-probe loadavg\n@@fleetwarden-probe end\n"
    )
    facts = parse_probe(text, "/srv/agents")
    assert (facts.load, facts.disk, facts.cpus, facts.tools) == (None, None, None, ())
    assert facts.state_dir == "/srv/agents"


@pytest.mark.parametrize(
    ("text", "load"),
    [
        ("0.00 0.01 0.05 1/100 42\n", (0.0, 0.01, 0.05)),
        ("12.5 3 1.25", (12.5, 3.0, 1.25)),
        ("0.5 0.5", None),
        ("", None),
        ("a b c", None),
        ("-1 0 0", None),
    ],
)
def test_loadavg_lines(text: str, load: tuple[float, float, float] | None) -> None:
    """Three non-negative numbers first, or nothing."""
    assert parse_loadavg(text) == load


def test_df_rows_with_spaces_in_names_and_other_block_sizes() -> None:
    """The row is read from the right (a filesystem name or mount point may hold spaces),
    in the header's block size; a negative Available (root's reserve used) is 0."""
    text = (
        "Filesystem 512-blocks Used Available Capacity Mounted on\n"
        "map auto_home 2000 1000 -50 100% /Volumes/My Disk\n"
    )
    assert parse_df(text) == DiskSpace("/Volumes/My Disk", 2000 * 512, 0)
    assert parse_df("") is None
    assert parse_df("Filesystem 1024-blocks Used\ngarbage\n") is None


def test_tool_rows_keep_known_tools_with_absolute_paths_only() -> None:
    """A row for something not asked about, or without a path, is ignored."""
    rows = ["tmux\t/usr/bin/tmux\ttmux 3.3a", "evil\t/bin/evil\t1", "codex\tcodex\t1.0", "pi"]
    assert parse_tools(rows) == (Tool("tmux", "/usr/bin/tmux", "tmux 3.3a"),)


def test_the_probe_passes_the_state_dir_as_an_argument_not_as_script_text() -> None:
    """The script is a constant; the state dir is its $1, one quoted word on the line."""
    argv = probe_argv("~/a'b", ["~/.npm-global/bin", "/opt/x y"])
    assert argv[:3] == ["sh", "-c", PROBE_SCRIPT]
    assert shlex.split(remote_command(argv))[-2:] == ["~/a'b", "~/.npm-global/bin:/opt/x y"]
