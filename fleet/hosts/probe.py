"""What a host has: its home, CPUs, load, free disk where agents' state goes, and which
agent CLIs (and tmux, bubblewrap) are installed, at which versions.

One round trip: a fixed POSIX ``sh`` script (:data:`PROBE_SCRIPT`, no operator text in it;
the state dir arrives as ``$1``) prints one section per fact using only POSIX tools —
``cat /proc/loadavg``, ``df -Pk``, ``getconf``, ``command -v`` and each CLI's own version
flag. Pure functions read the sections into :class:`HostFacts`, so the parsing is tested
without SSH; a fact the host could not give is ``None`` (no ``/proc`` on a BSD).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fleet.hosts.errors import RemoteCommandFailed
from fleet.hosts.remote import RemoteResult, failure
from fleet.hosts.schema import resolve_remote_path
from fleet.redaction.guard import guarded

VERSION_CAP = 80
"""Characters of a tool's version line kept."""
TOOLS = ("claude", "codex", "pi", "opencode", "tmux", "bwrap")
"""What the probe looks for: the agent CLIs, tmux (agents run in it) and bubblewrap."""
_MARK = "@@fleetwarden-probe "

# Each tool's version line is cut to one line; stdin is closed so nothing waits for it.
PROBE_SCRIPT = r"""
extra=
IFS=:; for d in $2; do case $d in "~/"*) d=$HOME/${d#"~/"} ;; esac; extra=$extra$d:; done
unset IFS
PATH=$extra$PATH
section() { printf '\n@@fleetwarden-probe %s\n' "$1"; }
section home; printf '%s\n' "$HOME"
section uname; uname -srm 2>/dev/null
section cpus; getconf _NPROCESSORS_ONLN 2>/dev/null
section loadavg; cat /proc/loadavg 2>/dev/null
section df
d=$1
case $d in "~") d=$HOME ;; "~/"*) d=$HOME/${d#"~/"} ;; esac
while [ ! -e "$d" ] && [ "$d" != / ] && [ "$d" != . ]; do d=$(dirname -- "$d"); done
df -Pk -- "$d" 2>/dev/null
section tools
for t in claude codex pi opencode tmux bwrap; do
  p=$(command -v "$t" 2>/dev/null) || continue
  case $t in tmux) f=-V ;; *) f=--version ;; esac
  v=$("$p" "$f" 2>&1 </dev/null | head -n 1)
  r=$(readlink -f -- "$p" 2>/dev/null) || r=
  printf '%s\t%s\t%s\t%s\n' "$t" "$p" "$v" "$r"
done
section end
"""


class Runner(Protocol):
    """What the probe needs of a host link (:class:`fleet.hosts.link.connection.HostLink`)."""

    async def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> RemoteResult: ...


@dataclass(frozen=True, slots=True)
class Tool:
    """A program found on the host: where, and the first line its version flag printed."""

    name: str
    path: str
    version: str | None
    real: str | None = None  # the path with its links resolved (an npm CLI's is its package)


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """The filesystem holding a directory: its mount point, size and space left to us."""

    mount: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What a probe found on a host; ``None`` where the host could not say."""

    home: str | None
    system: str | None
    cpus: int | None
    load: tuple[float, float, float] | None
    state_dir: str | None
    disk: DiskSpace | None
    tools: tuple[Tool, ...]

    def tool(self, name: str) -> Tool | None:
        return next((tool for tool in self.tools if tool.name == name), None)

    def has(self, name: str) -> bool:
        return self.tool(name) is not None


def probe_argv(state_dir: str, path: Sequence[str] = ()) -> list[str]:
    """The command that runs :data:`PROBE_SCRIPT` with ``state_dir`` as its ``$1`` and the
    entry's ``path`` (searched first) joined with ``:`` as its ``$2``."""
    return ["sh", "-c", PROBE_SCRIPT, "fleetwarden-probe", state_dir, ":".join(path)]


async def probe(
    link: Runner,
    state_dir: str,
    *,
    wait: float = 60.0,
    path: Sequence[str] = (),
    host: str | None = None,
) -> HostFacts:
    """Probe the host behind ``link`` (``host``, its name: what it writes on its error
    output is quoted as its own); ``state_dir`` as its entry writes it."""
    done = await link.run(probe_argv(state_dir, path), timeout=wait)
    if not done.ok or f"{_MARK}end" not in done.stdout:
        raise RemoteCommandFailed(f"the host probe did not finish: {failure(host, done)}")
    return parse_probe(done.stdout, state_dir)


def sections(text: str) -> dict[str, list[str]]:
    """The probe's output by section: the lines under each ``@@fleetwarden-probe NAME``."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(_MARK):
            current = found.setdefault(line[len(_MARK) :].strip(), [])
        elif current is not None and line.strip():
            current.append(line)
    return found


def parse_probe(text: str, state_dir: str) -> HostFacts:
    """:class:`HostFacts` from the probe's whole output."""
    parts = sections(text)
    home = _first(parts.get("home"))
    resolved = None
    if home is not None and home.startswith("/"):
        resolved = resolve_remote_path(state_dir, home)
    elif state_dir.startswith("/"):
        resolved = state_dir
    return HostFacts(
        home=home,
        system=_first(parts.get("uname")),
        cpus=parse_cpus(_first(parts.get("cpus")) or ""),
        load=parse_loadavg(_first(parts.get("loadavg")) or ""),
        state_dir=resolved,
        disk=parse_df("\n".join(parts.get("df", []))),
        tools=parse_tools(parts.get("tools", [])),
    )


def parse_cpus(text: str) -> int | None:
    """``getconf _NPROCESSORS_ONLN``'s answer: a count of CPUs online."""
    value = text.strip()
    return int(value) if value.isascii() and value.isdigit() and int(value) > 0 else None


def parse_loadavg(text: str) -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages from a ``/proc/loadavg`` line
    (``0.52 0.58 0.59 1/467 12345``)."""
    fields = text.split()
    try:
        one, five, fifteen = (float(field) for field in fields[:3])
    except ValueError:  # not a number, or fewer than three
        return None
    if min(one, five, fifteen) < 0:
        return None
    return one, five, fifteen


_DF_HEADER = re.compile(r"\S+\s+(\d+)-blocks\b")
# Parsed from the right: a filesystem's name may hold spaces; the mount point is the rest.
_DF_ROW = re.compile(
    r"(?P<fs>.+?)\s+(?P<total>\d+)\s+(?P<used>\d+)\s+(?P<avail>-?\d+)\s+"
    r"(?P<capacity>\d+%|-)\s+(?P<mount>/.*)"
)


def parse_df(text: str) -> DiskSpace | None:
    """The one filesystem in ``df -Pk DIR``'s output (a header, then its row)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    header = _DF_HEADER.match(lines[0])
    row = _DF_ROW.fullmatch(lines[1].rstrip())
    if header is None or row is None:
        return None
    unit = int(header[1])
    return DiskSpace(
        mount=row["mount"],
        total_bytes=int(row["total"]) * unit,
        free_bytes=max(0, int(row["avail"])) * unit,
    )


def parse_tools(lines: Sequence[str]) -> tuple[Tool, ...]:
    """``name<TAB>path<TAB>version line[<TAB>real path]`` rows, for the tools in
    :data:`TOOLS` only. A version is what the host's program printed: it is kept guarded
    (:mod:`fleet.redaction.guard`: nothing hidden, at most :data:`VERSION_CAP`
    characters), as every surface shows it."""
    found = []
    for line in lines:
        name, _, rest = line.partition("\t")
        path, _, rest = rest.partition("\t")
        version, _, real = rest.partition("\t")
        if name in TOOLS and path.startswith("/"):
            resolved = real.strip() if real.strip().startswith("/") else None
            found.append(Tool(name, path, guarded(version, limit=VERSION_CAP) or None, resolved))
    return tuple(found)


def _first(lines: Sequence[str] | None) -> str | None:
    return lines[0].strip() if lines else None
