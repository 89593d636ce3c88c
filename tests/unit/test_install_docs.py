"""The README says where `bash run.sh` puts the `fleetwarden` command, as run.sh does, and
the operations guide how to install Fleetwarden as a package."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _section(page: Path, heading: str) -> str:
    return page.read_text(encoding="utf8").split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_quick_start_says_how_to_reach_fleetwarden_after_run_sh() -> None:
    """run.sh leaves `fleetwarden` in its `.venv`, not on PATH: the Quick start names
    `.venv/bin/fleetwarden` and `. .venv/bin/activate` for the guides' `fleetwarden …`."""
    run_sh = (ROOT / "run.sh").read_text(encoding="utf8")
    assert "venv=${FLEETWARDEN_VENV:-$root/.venv}" in run_sh
    assert 'exec "$venv/bin/fleetwarden" run "$@"' in run_sh
    quick = " ".join(_section(ROOT / "README.md", "## Quick start").split())
    assert "`.venv/bin/fleetwarden …`" in quick
    assert "`. .venv/bin/activate` once in your shell and then `fleetwarden …`" in quick
    assert "(docs/operations.md#installing-with-pip)" in quick


def test_the_operations_guide_says_how_to_install_the_package_with_pip() -> None:
    """`docs/operations.md` installs it (not editable) where the systemd units run it from."""
    text = " ".join(_section(ROOT / "docs" / "operations.md", "## Installing with pip").split())
    assert "/opt/fleetwarden/.venv/bin/pip install /path/to/fleetwarden-checkout" in text
    assert "pip wheel --no-deps -w dist ." in text
    for unit in ("fleetwarden.service", "fleetwarden-unprivileged.service"):
        service = (ROOT / "docs" / "systemd" / unit).read_text(encoding="utf8")
        assert "ExecStart=/opt/fleetwarden/.venv/bin/fleetwarden run" in service
