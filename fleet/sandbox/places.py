"""What a sandbox shows and hides of the host besides the agent's own places: the system
directories and secret files no agent sees, and what an agent must still read where a
hidden path covers it (Fleetwarden's Python and package, the program's install, the
directories on its PATH)."""

from __future__ import annotations

import glob
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from fleet.model import LaunchPlan
from fleet.sandbox import installs
from fleet.sandbox.host.reach import reaches_into

_FLEET_DIR = Path(__file__).resolve().parents[1]
SYSTEM_HIDDEN = (Path("/root"), Path("/home"), Path("/etc/ssl/private"))
"""Directories no agent sees (what its tools need under them is bound back read-only)."""
SECRET_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/ssh/ssh_host_*key")
"""Files no agent reads, whatever its uid: shown as ``/dev/null`` (glob patterns)."""

__all__ = ["SECRET_FILES", "SYSTEM_HIDDEN", "needed_paths", "real", "secret_files"]


def needed_paths(
    plan: LaunchPlan,
    home: Path,
    hidden: tuple[Path, ...],
    *,
    python: str,
    prefixes: bool = True,
    agents: tuple[Path, ...] = (),
) -> tuple[Path, ...]:
    """What the agent must read even where a hidden path covers it: Fleetwarden's
    Python (its venv and the install it was made from) and package (the forwarder,
    the stub agent), the program's install — unless the way to it enters the agent's
    workdir or HOME (``home``): a program there is the agent's own, and a symlink
    there points where the agent chose, so neither is resolved into anything bound —
    and the directories on its PATH. A PATH directory under a hidden one comes back with
    where its entries' links lead and, where it is a ``bin``, with the rest of its install
    (:func:`fleet.sandbox.installs.needs`: ``~/.cargo/bin`` brings ``~/.cargo``, without
    ``credentials.toml``; ``~/.local/bin`` brings ``~/.local/lib``, never ``~/.local/share``);
    :func:`~fleet.sandbox.host.reach.arrange` drops what enters the agent's places, and
    nothing is found through them or through ``agents`` (the places other agents may write:
    the state dir, their workdirs). Without ``prefixes`` (a stdio server), a PATH directory
    comes back alone, with where its links lead."""
    interpreter = Path(python)
    needed = [_FLEET_DIR, Path(sys.prefix), Path(sys.base_prefix), interpreter.parent]
    needed.append(Path(os.path.realpath(interpreter)).parent)
    untrusted = [str(p) for p in (plan.cwd, home, *agents)]
    for entry in (_path_of(plan.env) or "").split(os.pathsep):
        if entry and os.path.isabs(entry):
            where = Path(os.path.normpath(entry))
            if not reaches_into(where, hidden):
                needed.append(where.parent if where.name == "bin" else where)
                continue
            install = prefixes and where.name in installs.BINS and where.parent not in hidden
            needed += map(Path, installs.needs(str(where), install, untrusted))
    found = shutil.which(plan.argv[0], path=_path_of(plan.env)) if plan.argv else None
    own = (plan.cwd, home, real(plan.cwd), real(home))
    # A relative one was found in the workdir, where the agent runs it.
    roots = [os.path.realpath(p) for p in untrusted]
    if (
        found is not None
        and os.path.isabs(found)
        and not reaches_into(Path(found), own)
        and not installs.enters(found, roots)
    ):
        resolved = Path(os.path.realpath(found))
        modules = [p for p in resolved.parents if p.name == "node_modules"]
        home_of = modules[-1] if modules else resolved.parent
        plausible = installs.plausible(str(home_of), allow=(".config",))
        needed.append(home_of if plausible else resolved)
        needed.append(Path(found).parent)
    return tuple(p for p in needed if _reachable(p))


def _reachable(path: Path) -> bool:
    """Whether this process can reach ``path`` (or learn it is not there): bubblewrap runs as
    its user and cannot bind back what it cannot reach — an inherited PATH naming another
    user's closed home (``/root/.cargo/bin`` in the PATH of a Fleetwarden run as
    ``nobody``) would fail every start, and could run nothing for the agent anyway."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True  # not there: bound with `--ro-bind-try`, which skips it
    except OSError:
        return False  # closed to it, or not a way to a directory (a file in the way, a loop)
    return True


def real(path: Path) -> Path:
    """``path`` with its symlinks resolved, where it really lies."""
    return Path(os.path.realpath(path))


def secret_files() -> tuple[Path, ...]:
    """The files of :data:`SECRET_FILES` this host has."""
    found = [Path(p) for pattern in SECRET_FILES for p in glob.glob(pattern)]
    return tuple(sorted(p for p in found if p.is_file()))


def _path_of(env: Mapping[str, str]) -> str | None:
    return env.get("PATH")
