"""The config file's sandbox keys, for an agent entry and for ``defaults``: ``sandbox``
(``bwrap`` or ``none``), ``egress`` (``locked``, the default, or ``open``) and
``egress_allow`` (host names a locked agent may still reach, through the allow-list's
forward proxy; :data:`DEFAULT_ALLOW` unless set), and what ``check-config`` says of them.

Egress is denied by default: a sandboxed agent reaches the metering proxy, its heartbeat
endpoint and the package registries and forge of :data:`DEFAULT_ALLOW` — what installing
dependencies and cloning needs — and nothing else; ``egress: open`` is an opt-in that
``check-config`` warns about. A name that is an address or this machine is refused at load
(:func:`fleet.destinations.name_problem`); ``check-config`` also resolves every
allowed name and refuses one that leads to a loopback, private or link-local address."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from fleet.destinations import DEFAULT_ALLOW, is_local, name_problem, resolved_problem
from fleet.sandbox.host.uid_ranges import UidRange
from fleet.sandbox.lanes import BLOCK, FIRST_UID, LANES

SandboxMode = Literal["bwrap", "none"]
EgressMode = Literal["open", "locked"]
DEFAULT_EGRESS: EgressMode = "locked"

_HOST = re.compile(
    r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)

SANDBOX_HELP = (
    "How the agent is confined: `bwrap` (bubblewrap: its own process namespace, the "
    "host read-only but for its workdir, HOME and a private /tmp, Fleetwarden's state and "
    "config not visible) or `none` (runs as Fleetwarden's own user, seeing all it sees; "
    "`check-config` warns)."
)
EGRESS_HELP = (
    "Its network: `locked` (its own network namespace, where only the metering proxy, "
    "the heartbeat endpoint and the hosts in `egress_allow` are reachable) or `open` (the "
    "host's: any host, around the proxy too; `check-config` warns). `locked` needs "
    "`sandbox: bwrap`."
)
EGRESS_ALLOW_HELP = (
    "Public host names a `locked` agent may reach over HTTPS (CONNECT to port 443) or "
    "plain HTTP (ports 80 and 443), through the forward proxy Fleetwarden answers on its "
    "door (HTTPS_PROXY/HTTP_PROXY point there). Exact names: no wildcards, IP addresses, "
    "`localhost`, or names that resolve to loopback, private or link-local addresses. "
    "Replaces the default list, which is " + ", ".join(DEFAULT_ALLOW) + "; `[]` for none."
)


def _check_host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if not _HOST.fullmatch(host):
        raise PydanticCustomError(
            "egress_host",
            f"{value[:80]!r} is not a host name: write a name such as github.com "
            "(no scheme, port, path or wildcard)",
        )
    wrong = name_problem(host)
    if wrong is not None:
        raise PydanticCustomError("egress_host", f"{wrong}")
    return host


EgressHost = Annotated[str, AfterValidator(_check_host)]


def check_egress(who: str, sandbox: str, egress: str, allow: Sequence[str]) -> str | None:
    """What is wrong with this combination, in words, or ``None``."""
    if egress == "locked" and sandbox == "none":
        return f"{who} has egress: locked but sandbox: none; a locked network needs sandbox: bwrap"
    if allow and tuple(allow) != DEFAULT_ALLOW and egress != "locked":
        return f"{who} has egress_allow but egress: {egress}; egress_allow needs egress: locked"
    return None


def unsandboxed_warnings(names: Iterable[tuple[str, str, str]]) -> list[str]:
    """A warning for each (agent, sandbox mode, egress mode) that opts out of the sandbox or
    of the locked network."""
    found = []
    for name, mode, egress in names:
        if mode == "none":
            found.append(
                f"agent {name!r} runs with sandbox: none: it can read Fleetwarden's state "
                "dir, config, other agents' files and processes, and reach any host"
            )
        elif egress == "open":
            found.append(
                f"agent {name!r} has egress: open: it can reach any host and address, the "
                "host's own services and the providers around the metering proxy; prefer "
                "egress: locked with the hosts it needs in egress_allow"
            )
    return found


Resolve = Callable[[str], list[str]]


def _system_resolve(host: str) -> list[str]:
    return list(dict.fromkeys(str(i[4][0]) for i in socket.getaddrinfo(host, 443)))


def resolution_problems(
    allowed: Iterable[tuple[str, Sequence[str]]], resolve: Resolve = _system_resolve
) -> tuple[list[str], list[str]]:
    """Each (agent, allow-list) resolved now: the errors (a name that leads into this
    machine or its networks: loopback, private, link-local…) and the warnings (a name that
    does not resolve here, or only to addresses that are not public)."""
    pairs = [(agent, host) for agent, hosts in allowed for host in hosts]
    names = sorted({host for _, host in pairs})

    def lookup(host: str) -> list[str] | OSError:
        try:
            return resolve(host)
        except OSError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=8) as pool:  # names resolve side by side
        results = dict(zip(names, pool.map(lookup, names), strict=True))
    unusable: dict[str, str] = {}
    local: dict[str, str] = {}
    for host, addresses in results.items():
        if isinstance(addresses, OSError):
            unusable[host] = f"it does not resolve here ({addresses.strerror or addresses})"
        elif found := [a for a in addresses if is_local(a)]:
            local[host] = f"it resolves to {found[0]}, an address of this machine's networks"
        elif (why := resolved_problem(addresses)) is not None:
            unusable[host] = why
    errors: list[str] = []
    for agent, host in pairs:
        if host in local:
            errors.append(
                f"agent {agent!r} has {host} in egress_allow, but {local[host]}: the "
                "proxy refuses it; remove it from egress_allow"
            )
    warnings = [
        f"{host} (in egress_allow{', one of its defaults' if host in DEFAULT_ALLOW else ''}): "
        f"{why}; agents are refused it while that holds"
        for host, why in sorted(unusable.items())
    ]
    return errors, warnings


class AgentUidsSection(BaseModel):
    """``agent_uids``: the range of host uids this fleet's agents run as when Fleetwarden
    runs as root, held on the host while it runs (:mod:`fleet.sandbox.host.uid_register`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: int | None = Field(
        default=None,
        description=(
            f"The first host uid of this fleet's agents, from {FIRST_UID} to "
            f"{FIRST_UID + LANES - 1}. Another orchestrator on the machine holding any "
            "uid of the range is refused at start, naming it. Default: the range this "
            "fleet's agents already have uids in, else the lowest free one no other fleet "
            "on the host has held."
        ),
    )
    count: int = Field(
        default=BLOCK,
        ge=1,
        le=LANES,
        description=(
            f"How many uids the range holds: one per agent name ever started here. "
            f"Default: {BLOCK}."
        ),
    )

    @model_validator(mode="after")
    def _inside(self) -> AgentUidsSection:
        if self.base is not None and not (
            self.base >= FIRST_UID and self.base + self.count <= FIRST_UID + LANES
        ):
            raise PydanticCustomError(
                "uid_range",
                f"base {self.base} with count {self.count} leaves the agents' uids "
                f"({FIRST_UID}–{FIRST_UID + LANES - 1}): give a base from {FIRST_UID} to "
                f"{FIRST_UID + LANES - self.count}",
            )
        return self

    def wanted(self) -> UidRange | None:
        """The range asked for, if any."""
        return None if self.base is None else UidRange(self.base, self.count)
