"""The fix said when bubblewrap cannot make sandboxes: the exact install command for this
host's package manager, or the user-namespace settings when it is installed."""

from __future__ import annotations

from collections.abc import Callable

from fleet.sandbox.host.setup_hint import fix, install_line


def on_path(*programs: str) -> Callable[[str], str | None]:
    """``shutil.which`` on a host where only ``programs`` are installed."""
    return lambda name: f"/usr/bin/{name}" if name in programs else None


def test_apt_as_root_is_the_plain_install_line() -> None:
    """Debian as root: `apt-get install -y bubblewrap`, nothing before it."""
    assert install_line(on_path("apt-get", "dnf"), root=True) == "apt-get install -y bubblewrap"


def test_not_root_goes_through_sudo() -> None:
    """Not root: the same line after `sudo`."""
    assert install_line(on_path("dnf"), root=False) == "sudo dnf install -y bubblewrap"


def test_no_known_package_manager_names_the_package() -> None:
    """No package manager found: the distribution's `bubblewrap` package is named."""
    said = fix(installed=False, which=on_path(), root=True)
    assert said.startswith("install your distribution's `bubblewrap` package")
    assert "`sandbox: none`" in said


def test_installed_but_failing_asks_for_user_namespaces() -> None:
    """bwrap is there but cannot make a sandbox: the sysctl settings, no install line."""
    said = fix(installed=True, which=on_path("apt-get"), root=True)
    assert "kernel.unprivileged_userns_clone=1" in said
    assert "apt-get" not in said
