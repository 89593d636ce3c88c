"""The config file's ``hosts:`` section: one entry per machine agents may run on over SSH,
and the checks that span entries.

An entry names the host, says how to log in (``ssh: user@address[:port]``, a key file or
the ssh-agent), where its host key is on record (``known_hosts``), how many agents it may
run and where their state lives *on that host*. ``state_dir`` is a path on the remote
machine, so nothing is expanded against this one: it is absolute, or ``~/…`` for the
remote user's home (resolved once the host says what its home is, see
:func:`resolve_remote_path`).

Host names are validated like agent names and may not be ``local`` (this machine) or
``any`` (let Fleetwarden choose): both are words an operator types where a host name goes.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterator, Sequence
from typing import Annotated, NamedTuple, NewType, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from fleet.hosts.errors import InvalidHostName
from fleet.schema import ConfigPath, EnvVarName

HostName = NewType("HostName", str)
Loc = tuple[str | int, ...]

HOST_NAME_PATTERN = r"[a-z][a-z0-9-]{0,31}"
LOCAL_HOST = "local"
"""The word for the machine Fleetwarden itself runs on."""
ANY_HOST = "any"
"""The word for "whichever host has room"."""
RESERVED_HOST_NAMES = frozenset({LOCAL_HOST, ANY_HOST})
DEFAULT_PORT = 22
DEFAULT_STATE_DIR = "~/.fleetwarden-agents"

_NAME = re.compile(HOST_NAME_PATTERN)
_TARGET = re.compile(
    r"(?P<user>[^@]*)@(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>.*))?"
)
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_REMOTE_PATH = re.compile(r"(/|~/)[A-Za-z0-9._+/-]*|~")
_TARGET_EXAMPLE = 'e.g. "fw@box2.example.net", "fw@10.0.0.2:2222" or "fw@[2001:db8::2]:22"'


class SshTarget(NamedTuple):
    """Where to log in: ``user@address:port``. ``address`` is a name or an IP literal
    (an IPv6 one without its brackets)."""

    user: str
    address: str
    port: int

    def __str__(self) -> str:
        address = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.user}@{address}:{self.port}"


def _name_problem(value: str) -> str | None:
    if value in RESERVED_HOST_NAMES:
        meaning = "this machine" if value == LOCAL_HOST else "whichever host has room"
        return f"{value!r} cannot be a host's name: it means {meaning}; pick another name"
    if not _NAME.fullmatch(value):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return (
            f"{shown!r} is not a host name: 1-32 characters, a lowercase letter first, then "
            "lowercase letters, digits or '-' (e.g. box2)"
        )
    return None


def host_name(text: str) -> HostName:
    """``text`` as a :data:`HostName` (what an operator typed), or raise
    :class:`InvalidHostName`."""
    problem = _name_problem(text)
    if problem is not None:
        raise InvalidHostName(problem)
    return HostName(text)


def is_host_name(text: str) -> bool:
    return _name_problem(text) is None


def _check_name(value: str) -> HostName:
    problem = _name_problem(value)
    if problem is not None:
        raise PydanticCustomError("host_name", problem)
    return HostName(value)


def check_placement(value: str) -> str:
    """An agent's ``host:``: ``local``, ``any`` (the host with the most room), or a host's
    name (checked against ``hosts:`` when the config is loaded)."""
    if value in (LOCAL_HOST, ANY_HOST):
        return value
    problem = _name_problem(value)
    if problem is not None:
        raise PydanticCustomError(
            "host_name", problem.replace("cannot be a host's name", "is no host")
        )
    return value


def _valid_address(text: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            ipaddress.IPv6Address(text)
        except ValueError:
            return False
        return True
    if len(text) > 253:
        return False
    labels = text.split(".")
    if all(label.isdigit() for label in labels):  # it means to be an IPv4 address
        try:
            ipaddress.IPv4Address(text)
        except ValueError:
            return False
        return True
    return all(_LABEL.fullmatch(label) for label in labels)


def parse_ssh_target(text: str) -> SshTarget:
    """``user@address[:port]`` (IPv6 in brackets) as an :class:`SshTarget`, or
    ``ValueError`` saying what is wrong and what to write instead."""
    user_part, at, address_part = text.rpartition("@")
    if at and address_part.count(":") > 1 and not address_part.startswith("["):
        raise ValueError(
            f"an IPv6 address goes in brackets: {user_part}@[{address_part}] "
            f"(with a port: {user_part}@[{address_part}]:2222)"
        )
    found = _TARGET.fullmatch(text)
    if found is None:
        raise ValueError(f"must be user@address[:port], {_TARGET_EXAMPLE}")
    user, v6, host, port_text = found["user"], found["v6"], found["host"], found["port"]
    if not _USER.fullmatch(user):
        raise ValueError(
            f"{user!r} is not a user name: letters, digits, '_', '.' and '-', not starting "
            f"with a digit, '.' or '-'; {_TARGET_EXAMPLE}"
        )
    address = v6 if v6 is not None else host
    if not _valid_address(address, bracketed=v6 is not None):
        what = "an IPv6 address" if v6 is not None else "a host name or IPv4 address"
        raise ValueError(
            f"{address!r} is not {what}; an IPv6 address goes in brackets, {_TARGET_EXAMPLE}"
        )
    port = DEFAULT_PORT
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"port {port_text!r} must be a number from 1 to 65535")
        port = int(port_text)
    return SshTarget(user, address, port)


def _check_target(value: str) -> str:
    try:
        return str(parse_ssh_target(value))
    except ValueError as exc:
        raise PydanticCustomError("ssh_target", "{why}", {"why": str(exc)}) from None


def _check_remote_path(value: str) -> str:
    if not _REMOTE_PATH.fullmatch(value):
        raise PydanticCustomError(
            "remote_path",
            "must be an absolute path on the host (/var/lib/fleetwarden-agents) or one under "
            "the remote user's home (~/fleetwarden-agents), of letters, digits and . _ + - / "
            "(no ~user, no spaces)",
        )
    home, rest = ("~", value[1:]) if value.startswith("~") else ("", value)
    parts = [part for part in rest.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PydanticCustomError("remote_path", "must not contain '..': write the full path")
    if not home and not parts:
        raise PydanticCustomError("remote_path", "must not be / itself: name a directory")
    return posixpath.join(home or "/", *parts) if parts else home


def resolve_remote_path(path: str, home: str) -> str:
    """A validated ``state_dir`` made absolute with the remote user's ``home``."""
    if not home.startswith("/"):
        raise ValueError(f"the host's home {home!r} is not an absolute path")
    if path == "~":
        return home
    if path.startswith("~/"):
        return posixpath.join(home, path[2:])
    return path


RemotePath = Annotated[str, AfterValidator(_check_remote_path)]


class HostEntry(BaseModel):
    """A machine agents may run on, reached over SSH; its agents run in tmux there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, AfterValidator(_check_name)] = Field(
        description=(
            "The host's name, as operators type it (`spawn NAME --host box2`): 1-32 "
            "characters, a lowercase letter first, then lowercase letters, digits or `-`. "
            "`local` and `any` are reserved."
        )
    )
    ssh: Annotated[str, AfterValidator(_check_target)] = Field(
        description=(
            "Where to log in: `user@address[:port]` (port 22 by default; an IPv6 address "
            'in brackets), e.g. `"fw@box2.example.net"`.'
        )
    )
    key_file: ConfigPath | None = Field(
        default=None,
        description=(
            "The private key to log in with (OpenSSH or PEM format). Give this or "
            "`agent: true`, not both."
        ),
    )
    agent: bool = Field(
        default=False,
        strict=True,
        description=(
            "Log in with the keys of the ssh-agent at `SSH_AUTH_SOCK` in Fleetwarden's "
            "environment, instead of a `key_file`."
        ),
    )
    key_passphrase_env: EnvVarName | None = Field(
        default=None,
        description=(
            "With an encrypted `key_file`: the environment variable holding its passphrase "
            "(never the passphrase itself)."
        ),
    )
    known_hosts: ConfigPath = Field(
        description=(
            "The known_hosts file holding the host's key. Nothing connects to a host whose "
            "key is not on record there: `fleetwarden hosts trust NAME` reads the key, shows "
            "its fingerprint and records it (creating the file, mode 0600)."
        )
    )
    max_agents: int = Field(
        default=10,
        ge=1,
        strict=True,
        description="How many agents may run on the host at once.",
    )
    state_dir: RemotePath = Field(
        default=DEFAULT_STATE_DIR,
        description=(
            "Where agents' state lives on the host (the tmux socket, run directories): an "
            "absolute path there, or `~/…` under the remote user's home. Created on first "
            "use."
        ),
    )
    workdirs: RemotePath | None = Field(
        default=None,
        description=(
            "A directory on the host for agents' workdirs outside the state dir and the "
            "remote user's home (e.g. `/srv/agents`). Agents logged in as one user share "
            "its uid, so every sandbox on the host hides the state dir, the home, `/home`, "
            "`/root` and this directory whole and binds back only its own workdir; a "
            "workdir anywhere else is refused at launch. Absolute, or `~/…`; created "
            "(0700) if missing."
        ),
    )

    path: tuple[RemotePath, ...] = Field(
        default=(),
        description=(
            "Directories on the host searched first for the agent CLIs (and given to its "
            "agents' `PATH`), e.g. `[~/.npm-global/bin]`: a command over SSH does not read "
            "the login files that add them. Absolute, or `~/…`."
        ),
    )

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> HostEntry:
        if self.key_file is None and not self.agent:
            raise PydanticCustomError(
                "host_login",
                "say how to log in: `key_file: /path/to/id_ed25519`, or `agent: true` for "
                "the ssh-agent's keys",
            )
        if self.key_file is not None and self.agent:
            raise PydanticCustomError(
                "host_login",
                "give `key_file` or `agent: true`, not both: remove one",
            )
        if self.key_passphrase_env is not None and self.key_file is None:
            raise PydanticCustomError(
                "host_login",
                "key_passphrase_env is for an encrypted key_file; the ssh-agent holds its "
                "keys unlocked: remove key_passphrase_env",
            )
        return self

    @property
    def target(self) -> SshTarget:
        """``ssh`` taken apart: user, address, port."""
        return parse_ssh_target(self.ssh)

    @property
    def host_name(self) -> HostName:
        return HostName(self.name)


def section_problems(hosts: Sequence[HostEntry]) -> Iterator[tuple[Loc, str]]:
    """Problems spanning entries, each with its place: a name used twice, or two entries
    logging in to the same account on the same host."""
    names: dict[str, int] = {}
    targets: dict[SshTarget, int] = {}
    for index, entry in enumerate(hosts):
        if entry.name in names:
            yield (
                ("hosts", index, "name"),
                f"duplicate host name {entry.name!r} (also hosts[{names[entry.name]}]): rename one",
            )
        names.setdefault(entry.name, index)
        target = entry.target
        if target in targets:
            yield (
                ("hosts", index, "ssh"),
                f"{target} is also hosts[{targets[target]}]: one entry per account on a host",
            )
        targets.setdefault(target, index)


class Placed(Protocol):
    """What :func:`placement_problems` reads of an agent entry."""

    @property
    def host(self) -> str: ...


def placement_problems(
    hosts: Sequence[HostEntry], agents: Sequence[Placed]
) -> Iterator[tuple[Loc, str]]:
    """Each agent whose ``host`` is no entry of ``hosts:`` (or ``any`` with none listed)."""
    names = {entry.name for entry in hosts}
    for index, agent in enumerate(agents):
        if agent.host == LOCAL_HOST:
            continue
        if agent.host == ANY_HOST and not names:
            yield (
                ("agents", index, "host"),
                "`host: any` picks one of the config's hosts, and it lists none: add them "
                "under `hosts:` or use `host: local`",
            )
        elif agent.host not in names and agent.host != ANY_HOST:
            known = ", ".join(sorted(names)) or "none"
            yield (
                ("agents", index, "host"),
                f"no host {agent.host!r} in the config's hosts (known: {known}); add it "
                "there or use `host: local`",
            )
