"""What to do when bubblewrap cannot make sandboxes here: the exact command that installs
it on this host (its package manager, as root or through sudo), or the settings that let
an installed one run.

Pure: the caller passes how programs are found and whether it is root.
"""

from __future__ import annotations

from collections.abc import Callable

PACKAGE = "bubblewrap"
UNSANDBOXED = "or set `sandbox: none` for the agent, which then runs unconfined"
USERNS = (
    "allow unprivileged user namespaces (`sysctl kernel.unprivileged_userns_clone=1`, and "
    "on Ubuntu `kernel.apparmor_restrict_unprivileged_userns=0`)"
)
# The first package manager found on PATH decides; Debian's first.
INSTALLERS: tuple[tuple[str, str], ...] = (
    ("apt-get", "apt-get install -y bubblewrap"),
    ("dnf", "dnf install -y bubblewrap"),
    ("yum", "yum install -y bubblewrap"),
    ("zypper", "zypper install -y bubblewrap"),
    ("pacman", "pacman -S --noconfirm bubblewrap"),
    ("apk", "apk add bubblewrap"),
)


def install_line(which: Callable[[str], str | None], root: bool) -> str | None:
    """The command that installs bubblewrap here (``sudo`` first unless ``root``), or
    ``None`` when no known package manager is on the PATH."""
    for program, line in INSTALLERS:
        if which(program) is not None:
            return line if root else f"sudo {line}"
    return None


def fix(installed: bool, which: Callable[[str], str | None], root: bool) -> str:
    """How to let sandboxed agents start: install bubblewrap when it is not ``installed``,
    else let it make user namespaces; either way, the unsandboxed way out last."""
    if installed:
        return f"{USERNS}, {UNSANDBOXED}"
    line = install_line(which, root)
    if line is None:
        return f"install your distribution's `{PACKAGE}` package (it gives `bwrap`), {UNSANDBOXED}"
    return f"install bubblewrap: `{line}`, {UNSANDBOXED}"
