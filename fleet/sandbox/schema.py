"""The config file's sandbox keys, for an agent entry and for ``defaults``: ``sandbox``
(``bwrap`` or ``none``), ``egress`` (``open`` or ``locked``) and ``egress_allow`` (host
names a locked agent may still reach, through the allow-list's forward proxy)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Literal

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

SandboxMode = Literal["bwrap", "none"]
EgressMode = Literal["open", "locked"]

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
    "Its network: `open` (the host's) or `locked` (its own network namespace, where "
    "only the metering proxy, the heartbeat endpoint and the hosts in `egress_allow` are "
    "reachable). `locked` needs `sandbox: bwrap`."
)
EGRESS_ALLOW_HELP = (
    "Host names a `locked` agent may reach over HTTPS (port 443) or plain HTTP, e.g. "
    "`[github.com, registry.npmjs.org]`, through a forward proxy Fleetwarden runs "
    "(tinyproxy); its HTTPS_PROXY/HTTP_PROXY point there. Exact names, no wildcards."
)


def _check_host(value: str) -> str:
    host = value.strip().lower().rstrip(".")
    if not _HOST.fullmatch(host):
        raise PydanticCustomError(
            "egress_host",
            f"{value[:80]!r} is not a host name: write a name such as github.com "
            "(no scheme, port, path or wildcard)",
        )
    return host


EgressHost = Annotated[str, AfterValidator(_check_host)]


def check_egress(who: str, sandbox: str, egress: str, allow: Sequence[str]) -> str | None:
    """What is wrong with this combination, in words, or ``None``."""
    if egress == "locked" and sandbox == "none":
        return f"{who} has egress: locked but sandbox: none; a locked network needs sandbox: bwrap"
    if allow and egress != "locked":
        return f"{who} has egress_allow but egress: {egress}; egress_allow needs egress: locked"
    return None


def unsandboxed_warnings(names: Iterable[tuple[str, str]]) -> list[str]:
    """A warning for each (agent, sandbox mode) that opts out of the sandbox."""
    return [
        f"agent {name!r} runs with sandbox: none: it can read Fleetwarden's state dir, "
        "config, other agents' files and processes, and reach any host"
        for name, mode in names
        if mode == "none"
    ]
