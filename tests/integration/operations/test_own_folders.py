"""Folders Fleetwarden trusts are its own, through the real CLI as root with a second uid:
`init` writes nothing in a folder another uid owns or may write (a sticky `/tmp`-like
folder above it excepted), nor a url holding a credential; `run` starts nothing with a
config or a state dir another uid holds, and never follows a link planted where its lock
is; the control socket answers Fleetwarden's own uid, not whoever owns the folder."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.lane_files import LaneFileError, hand_over_lane
from tests.integration.console_bot import (
    FLEETWARDEN,
    ROSTER_HEAD,
    ConsoleBot,
    clean_env,
    wait_until,
)

pytestmark = [pytest.mark.integration]

OTHER = 65534  # nobody: another local uid
TOKEN = "glpat-Init0Token0Of0Bob0123"
CONFIG = (
    ROSTER_HEAD.format()
    + """\
  - name: sleeper
    runtime: command
    argv: [sleep, "600"]
operators:
  - {id: "@ops:example.org", role: operator}
shell: {as: "@ops:example.org"}
"""
)
STARTUP = 60.0


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to give folders to another uid")


def _cli(cwd: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, str(FLEETWARDEN), *args],
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _theirs(path: Path, mode: int) -> Path:
    path.mkdir()
    os.chown(path, OTHER, -1)
    path.chmod(mode)
    return path


def _refused_run(config: Path, status: int = 2) -> str:
    """``fleetwarden run`` of ``config`` ends by itself with exit ``status``: its stderr."""
    with ConsoleBot(config.parent, "--config", str(config)) as bot:
        assert bot.wait(STARTUP) == status, bot.stdout + bot.stderr
        return bot.stderr


# --- init -----------------------------------------------------------------------------------


def test_init_into_a_0777_folder_another_uid_owns_is_refused(tmp_path: Path) -> None:
    """`init D` where another uid owns D (mode 0777) writes nothing, naming the owner, the
    mode and the fix."""
    shared = _theirs(tmp_path / "shared", 0o777)
    done = _cli(tmp_path, "init", str(shared), "--preset", "pair")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{shared} is owned by nobody (uid {OTHER})" in done.stderr
    assert "may be written by its group and others (mode 0777)" in done.stderr
    assert f"`chown 0 {shared} && chmod go-w {shared}`" in done.stderr
    assert list(shared.iterdir()) == []


def test_init_below_a_folder_another_uid_may_write_is_refused(tmp_path: Path) -> None:
    """`init D/new` where D is another uid's writes nothing, not even D/new; a folder above
    that only its group may write is refused too."""
    shared = _theirs(tmp_path / "shared", 0o777)
    done = _cli(tmp_path, "init", str(shared / "fleet"))
    assert done.returncode == 1 and f"a folder above {shared / 'fleet'}" in done.stderr
    assert list(shared.iterdir()) == []
    grouped = tmp_path / "grouped"
    grouped.mkdir()
    grouped.chmod(0o775)
    done = _cli(tmp_path, "init", str(grouped / "fleet"))
    assert done.returncode == 1, done.stdout
    assert "may be written by its group (mode 0775)" in done.stderr
    assert f"`chmod go-w {grouped}`" in done.stderr and list(grouped.iterdir()) == []


def test_a_sticky_folder_is_a_way_through_only_when_root_owns_it(tmp_path: Path) -> None:
    """A sticky folder all may write (as `/tmp`) that root owns is no reason to refuse
    `init` in a new folder below it; one another uid owns is (its owner may rename)."""
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    done = _cli(tmp_path, "init", str(sticky / "fleet"))
    assert done.returncode == 0, done.stderr
    made = sticky / "fleet"
    assert stat.S_IMODE(made.stat().st_mode) == 0o755
    assert stat.S_IMODE((made / "fleetwarden.yaml").stat().st_mode) == 0o644
    theirs = _theirs(tmp_path / "theirs", 0o1777)
    done = _cli(tmp_path, "init", str(theirs / "fleet"))
    assert done.returncode == 1 and f"{theirs} is owned by nobody" in done.stderr
    assert list(theirs.iterdir()) == []


@pytest.mark.parametrize(
    ("preset", "option", "url", "words"),
    [
        (
            "pair",
            "--repo-url",
            f"https://bob:{TOKEN}@git.example.com/acme/app.git",
            "--repo-url: the url holds a credential: take it out, and name the variable "
            "holding it in token_env",
        ),
        (
            "forge",
            "--forge-api",
            f"https://bob:{TOKEN}@gitlab.example.com/api/v4",
            "--forge-api: api_url takes no credential: take it out, and name the variable "
            "holding it in token_env",
        ),
    ],
)
def test_init_given_a_url_with_a_token_writes_nothing(
    tmp_path: Path, preset: str, option: str, url: str, words: str
) -> None:
    """`init` given a url holding a credential is refused in check-config's own words (the
    variable to name instead), writes nothing and never repeats the token."""
    forge = ("--forge-kind", "gitlab") if preset == "forge" else ()
    done = _cli(tmp_path, "init", "fleet", "--preset", preset, *forge, option, url)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert not (tmp_path / "fleet").exists()


GHP = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize(
    ("option", "url", "secret"),
    [
        ("--repo-url", f"https://github.com/o/r.git?access_token={GHP}", GHP),
        ("--repo-url", f"https://gitlab.com/o/r.git?private_token={TOKEN}", TOKEN),
        ("--repo-url", f"https://github.com/o/r.git#{GHP}", GHP),
        ("--repo-url", f"https://github.com/{GHP}/r.git", GHP),
        ("--repo-url", "https://github.com/o/r.git?ref=main", "ref=main"),
        ("--forge-api", f"https://gitlab.example.com/{TOKEN}/api/v4", TOKEN),
    ],
)
def test_init_and_check_config_refuse_a_token_anywhere_in_a_url(
    tmp_path: Path, option: str, url: str, secret: str
) -> None:
    """A token in a url's query, fragment or path (and any query on a repo url) is refused
    by `init`, which writes nothing and never repeats it, and by `check-config`."""
    preset = ("forge", "--forge-kind", "gitlab") if option == "--forge-api" else ("pair",)
    done = _cli(tmp_path, "init", "fleet", "--preset", *preset, option, url)
    assert done.returncode == 2, done.stdout + done.stderr
    assert secret not in done.stdout + done.stderr
    assert "token_env" in done.stderr and not (tmp_path / "fleet").exists()
    made = _cli(tmp_path, "init", "fleet", "--preset", *preset)
    assert made.returncode == 0, made.stderr
    config = tmp_path / "fleet" / "fleetwarden.yaml"
    key = "api_url" if option == "--forge-api" else "url"
    lines = config.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
    lines[at] = lines[at].split(":", 1)[0] + f": '{url}'"
    config.write_text("\n".join(lines) + "\n")
    checked = _cli(tmp_path, "check-config", "--config", str(config))
    said = checked.stdout + checked.stderr
    assert checked.returncode != 0 and secret not in said, said
    assert "shaped like a credential" in said or "query or fragment" in said, said


def test_init_given_a_full_width_at_in_a_url_says_so_cleanly(tmp_path: Path) -> None:
    """A full-width `＠` in a repo url's host part is a clean refusal naming it, not a
    traceback, and nothing is written."""
    url = "https://u:p\uff20github.com/o/r.git"
    done = _cli(tmp_path, "init", "fleet", "--preset", "pair", "--repo-url", url)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "not plain ASCII" in done.stderr
    assert not (tmp_path / "fleet").exists()


# --- run ------------------------------------------------------------------------------------


def test_run_refuses_a_state_dir_another_uid_owns(tmp_path: Path) -> None:
    """A state dir another uid owns is refused at start with the fix; nothing is made in
    it (no log, no lock) and it stays theirs."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    state = _theirs(tmp_path / "state", 0o700)
    said = _refused_run(config)
    assert f"The state dir: {state} is owned by nobody (uid {OTHER})" in said
    assert f"`chown 0 {state}`" in said
    assert list(state.iterdir()) == [] and state.stat().st_uid == OTHER


def test_run_refuses_a_state_dir_others_may_write(tmp_path: Path) -> None:
    """A state dir of Fleetwarden's own user that others may write is refused too: files
    may have been planted in it."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    said = _refused_run(config)
    assert "may be written by its group and others (mode 0777)" in said
    assert f"`chmod go-w {state}`" in said and list(state.iterdir()) == []


def test_a_lock_planted_as_a_link_is_not_followed(tmp_path: Path) -> None:
    """A link another uid left where the lock goes is never followed: run refuses saying
    to remove it, and the root-owned file it points at keeps its mode and contents."""
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = tmp_path / "root-owned.conf"
    target.write_text("precious\n")
    target.chmod(0o644)
    lock = state / "fleetwarden.lock"
    lock.symlink_to(target)
    os.lchown(lock, OTHER, -1)
    said = _refused_run(config, status=1)
    assert f"{lock} is a link" in said and f"`rm {lock}`" in said
    assert target.read_text() == "precious\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize("swap", ["owned", "writable", "folder"])
def test_run_refuses_a_config_another_uid_could_swap(tmp_path: Path, swap: str) -> None:
    """A config another uid owns, one others may write, or one in a folder others may write
    is refused at start with the fix (chown, chmod go-w); no state dir is made."""
    home = tmp_path / "fleet"
    home.mkdir()
    config = home / "fleetwarden.yaml"
    config.write_text(CONFIG.replace("  - name: sleeper", "  - name: sleeper\n    sandbox: none"))
    if swap == "owned":
        os.chown(config, OTHER, -1)
        fix = f"`chown 0 {config}`"
    elif swap == "writable":
        config.chmod(0o666)
        fix = f"`chmod go-w {config}`"
    else:
        home.chmod(0o777)
        fix = f"`chmod go-w {home}`"
    said = _refused_run(config)
    assert "nothing was started" in said and fix in said
    assert not (home / "state").exists()


def _sticky_with_their_link(where: Path, target: Path) -> Path:
    """A root-owned sticky folder all may write (as ``/tmp``) holding another uid's link to
    ``target``: the link as ``nobody`` would have made it there."""
    sticky = where / "tmp"
    sticky.mkdir()
    sticky.chmod(0o1777)
    link = sticky / "flink"
    link.symlink_to(target)
    os.lchown(link, OTHER, -1)
    return link


def test_run_through_another_uids_link_in_a_sticky_folder_is_refused(tmp_path: Path) -> None:
    """A config reached through a link another uid owns in a sticky folder (it may
    re-point it at any time) is refused at start, naming the link; no state dir is made."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "fleetwarden.yaml").write_text(CONFIG)
    link = _sticky_with_their_link(tmp_path, real)
    said = _refused_run(link / "fleetwarden.yaml")
    assert f"{link} is a link owned by nobody (uid {OTHER})" in said, said
    assert "give the real path instead" in said and "nothing was started" in said
    assert not (real / "state").exists() and not (link.parent / "state").exists()


def test_roster_reload_refuses_a_config_made_swappable_after_start(passable: Path) -> None:
    """`roster reload` re-runs the own-files check: once the config's folder is made
    writable by others after the start, the reload is refused with the reason and the
    running roster is kept (no agent added)."""
    home = passable / "fleet"
    home.mkdir(mode=0o755)
    config = home / "fleetwarden.yaml"
    config.write_text(CONFIG)
    config.chmod(0o644)
    ps = ("ps", "--json", "--config", str(config))
    with ConsoleBot(home, "--config", str(config)) as bot:
        assert wait_until(lambda: _cli(home, *ps).returncode == 0, STARTUP), bot.stderr
        home.chmod(0o777)
        config.write_text(
            CONFIG + "  - name: evil\n    runtime: command\n    sandbox: none\n"
            "    argv: [sleep, '600']\n"
        )
        said = bot.command("roster reload", r"the roster was not reloaded[^\n]*").group(0)
        home.chmod(0o755)
        assert f"chmod go-w {home}" in said, said
        listed = bot.command("roster", r"sleeper")  # listed by name: evil would come first
        assert "evil" not in listed.string, listed.string  # all it printed, start to `ps`


def test_hand_over_does_not_follow_a_link_at_the_top(tmp_path: Path) -> None:
    """A workdir the agent swapped for a link to a root-owned tree is refused by the
    hand-over, and the tree it points at stays root's (a real chown, as root)."""
    precious = tmp_path / "precious"
    precious.mkdir(mode=0o755)
    (precious / "secret").write_text("root's\n")
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    work = home / "work"
    work.symlink_to(precious)
    os.lchown(work, OTHER, -1)
    with pytest.raises(LaneFileError, match="is a link made by uid 65534"):
        hand_over_lane(home, work, OTHER)
    assert precious.stat().st_uid == 0 and (precious / "secret").stat().st_uid == 0
    assert stat.S_IMODE(precious.stat().st_mode) == 0o755


# --- the control socket ---------------------------------------------------------------------


@pytest.fixture
def passable() -> Iterator[Path]:
    """A folder another uid may pass through (0711), outside pytest's own 0700 ones."""
    where = Path(tempfile.mkdtemp(prefix="fw-own-"))
    where.chmod(0o711)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_the_control_socket_refuses_the_folders_owner_of_another_uid(passable: Path) -> None:
    """A peer of another uid that owns the state dir (and may reach the socket) is refused
    by the running orchestrator and nothing runs; Fleetwarden's own uid is answered."""
    config = passable / "fleetwarden.yaml"
    config.write_text(CONFIG)
    config.chmod(0o644)
    state = passable / "state"
    with ConsoleBot(passable, "--config", str(config)) as bot:
        ps = ("ps", "--json", "--config", str(config))
        # Answered, not only there: the socket is bound before it is made 0600.
        assert wait_until(lambda: _cli(passable, *ps).returncode == 0, STARTUP), bot.stderr
        os.chown(state, OTHER, -1)
        os.chmod(state / "control.sock", 0o666)
        nobody = ("setpriv", f"--reuid={OTHER}", "--regid=nogroup", "--clear-groups")
        done = _cli(passable, "spawn", "sleeper", "--json", "--config", str(config), prefix=nobody)
        os.chown(state, 0, -1)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"uid {OTHER} may not command this fleet" in done.stdout + done.stderr
        assert "only Fleetwarden's own user (uid 0)" in done.stdout + done.stderr
        after = _cli(passable, *ps)
        assert after.returncode == 0, after.stderr
        assert '"state": "running"' not in after.stdout
