"""Files Fleetwarden reads and writes in an agent's HOME, against the traps an agent can
set there: symlinks out of its lane, FIFOs, directories and huge files in their place."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.lane_files import LaneFileError, chmod_itself, read_lane_file, write_lane_file
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.runs.layout import write_files
from fleet.runtimes.base import RuntimeContext
from fleet.runtimes.claude import ClaudeRuntime

DEADLINE = 10.0


@pytest.fixture
def lane(tmp_path: Path) -> tuple[Path, Path]:
    """An agent's HOME, and a file outside it that the test owns."""
    home, owned = tmp_path / "home", tmp_path / "owned.txt"
    (home / ".claude").mkdir(parents=True)
    owned.write_text("the operator's own\n")
    return home, owned


@contextlib.contextmanager
def fifo_unblocked(path: Path) -> Iterator[None]:
    """Make ``path`` a FIFO; afterwards open it for writing, so that a reader a regression
    left blocked on it returns and the test ends (failing) instead of hanging."""
    os.mkfifo(path)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def within_deadline(call: Callable[[], object]) -> object:
    """``call()``'s result (or its exception), failing the test if it does not return in
    time."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout=DEADLINE)
    except FutureTimeout:
        pytest.fail(f"still blocked after {DEADLINE} s")
    finally:
        pool.shutdown(wait=False)  # a blocked reader is freed by fifo_unblocked


def test_a_symlink_in_place_of_a_file_is_replaced_never_written_through(
    lane: tuple[Path, Path],
) -> None:
    """A config file the agent turned into a symlink to another file is replaced by a plain
    file; the symlink's target keeps its contents."""
    home, owned = lane
    (home / ".claude" / "settings.json").symlink_to(owned)
    write_lane_file(home, ".claude/settings.json", "{}")
    assert owned.read_text() == "the operator's own\n"
    assert not (home / ".claude" / "settings.json").is_symlink()
    assert (home / ".claude" / "settings.json").read_text() == "{}"
    assert (home / ".claude" / "settings.json").stat().st_mode & 0o777 == 0o600


def test_a_symlinked_directory_on_the_way_is_refused(
    lane: tuple[Path, Path], tmp_path: Path
) -> None:
    """A directory of the path that is a symlink out of the lane refuses the write and the
    read, and nothing appears where it points."""
    home, _ = lane
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (home / ".codex").symlink_to(elsewhere)
    with pytest.raises(LaneFileError, match="symlink"):
        write_lane_file(home, ".codex/config.toml", "x = 1\n")
    with pytest.raises(LaneFileError, match="symlink"):
        read_lane_file(home, ".codex/config.toml", 1024)
    assert list(elsewhere.iterdir()) == []


def test_reads_refuse_symlinks_fifos_and_huge_files_without_blocking(
    lane: tuple[Path, Path],
) -> None:
    """A read returns the bytes of a plain file, ``None`` for a missing one, and refuses a
    symlink, a FIFO (at once, no writer needed), a file over the cap, a path out of the
    lane and a hard link to another file."""
    home, owned = lane
    (home / "plain").write_bytes(b"abc")
    assert read_lane_file(home, "plain", 3) == b"abc"
    assert read_lane_file(home, "missing", 3) is None
    (home / "link").symlink_to(owned)
    with pytest.raises(LaneFileError, match="symlink"):
        read_lane_file(home, "link", 1024)
    with pytest.raises(LaneFileError, match="more than 2 bytes"):
        read_lane_file(home, "plain", 2)
    with fifo_unblocked(home / "pipe"), pytest.raises(LaneFileError, match="not a regular"):
        within_deadline(lambda: read_lane_file(home, "pipe", 1024))
    with pytest.raises(LaneFileError, match="not a path inside"):
        read_lane_file(home, "../owned.txt", 1024)
    os.link(owned, home / "hard")
    with pytest.raises(LaneFileError, match="other hard links"):
        read_lane_file(home, "hard", 1024)


def test_a_launch_over_planted_traps_leaves_the_operators_file_untouched(
    lane: tuple[Path, Path],
) -> None:
    """Relaunching a Claude agent on a terminal whose HOME holds its settings as a symlink
    to the operator's file, the temporary name beside it as another, and its state file as
    a FIFO: the plan is made without blocking, the files are written as plain files of
    the HOME's own, and the operator's file is unchanged."""
    home, owned = lane
    config = home / ".claude"
    (config / "settings.json").symlink_to(owned)
    (config / "settings.json.tmp").symlink_to(owned)
    spec = AgentSpec(AgentName("c1"), runtime="claude")
    ctx = RuntimeContext(home=home, workdir=home.parent, environ={}, tty=True)
    with fifo_unblocked(config / ".claude.json"):
        plan = within_deadline(lambda: ClaudeRuntime().plan(spec, ctx))
    assert plan is not None
    write_files(home, plan.files)  # type: ignore[attr-defined]
    assert owned.read_text() == "the operator's own\n"
    for name in ("settings.json", ".claude.json"):
        assert (config / name).is_file() and not (config / name).is_symlink()
    assert '"hasCompletedOnboarding": true' in (config / ".claude.json").read_text()


def test_a_directory_in_place_of_a_config_file_refuses_the_launch_naming_it(
    lane: tuple[Path, Path],
) -> None:
    """A directory where a config file goes is not removed: the launch is refused with the
    file's name and the fix."""
    home, _ = lane
    (home / ".claude" / "settings.json").mkdir()
    with pytest.raises(LaunchFailed, match=r"settings\.json.*remove what is in its place"):
        write_files(home, {home / ".claude" / "settings.json": "{}"})
    with pytest.raises(ValueError, match="outside the agent's home"):
        write_files(home, {home.parent / "x.json": "{}"})


def test_a_socket_is_closed_in_place_and_a_symlink_in_its_stead_is_refused(
    lane: tuple[Path, Path],
) -> None:
    """``chmod_itself`` changes the socket's own mode; a symlink swapped in for it (to the
    operator's file) is refused, and that file keeps its mode."""
    home, owned = lane
    owned.chmod(0o644)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(home / "door.sock"))
        chmod_itself(home / "door.sock", 0o600, stat.S_IFSOCK)
        assert (home / "door.sock").stat().st_mode & 0o777 == 0o600
    (home / "swapped.sock").symlink_to(owned)
    with pytest.raises(LaneFileError, match="replaced"):
        chmod_itself(home / "swapped.sock", 0o600, stat.S_IFSOCK)
    assert owned.stat().st_mode & 0o777 == 0o644


def test_a_state_file_symlinked_to_fleetwardens_json_is_not_copied_into_the_home(
    lane: tuple[Path, Path],
) -> None:
    """Claude Code's state file turned into a symlink to a JSON file of Fleetwarden's (as
    ``metering.json``, every agent's key) is not read: the state written into the HOME
    holds only the first-start answers, never that file's contents."""
    home, owned = lane
    owned.write_text('{"keys": {"other-agent": "fake-metering-key"}}')
    (home / ".claude" / ".claude.json").symlink_to(owned)
    spec = AgentSpec(AgentName("c1"), runtime="claude")
    ctx = RuntimeContext(home=home, workdir=home.parent, environ={}, tty=True)
    write_files(home, ClaudeRuntime().plan(spec, ctx).files)
    state = (home / ".claude" / ".claude.json").read_text()
    assert "fake-metering-key" not in state and "hasCompletedOnboarding" in state
    assert owned.read_text() == '{"keys": {"other-agent": "fake-metering-key"}}'


def test_each_cli_empties_its_skills_folder_through_no_symlink(lane: tuple[Path, Path]) -> None:
    """Each runtime's plan names its skills folder to be emptied; emptying it removes what
    the agent left there (a link out removed, its target kept), refuses a folder whose
    way holds a link, and leaves nothing to do where there is none."""
    from fleet.runs.layout import empty_folders
    from fleet.runtimes.codex import CodexRuntime
    from fleet.runtimes.command import CommandRuntime
    from fleet.runtimes.opencode import OpencodeRuntime
    from fleet.runtimes.pi import PiRuntime

    home, owned = lane
    ctx = RuntimeContext(home=home, workdir=home.parent, environ={})
    runtimes = {
        ClaudeRuntime(): ".claude/skills",
        CodexRuntime(): ".codex/skills",
        OpencodeRuntime(): ".config/opencode",  # its plugins and tools too
        PiRuntime(): ".pi/agent/skills",
    }
    for runtime, folder in runtimes.items():
        spec = AgentSpec(AgentName("c1"), runtime=runtime.name, prompt="go")
        assert runtime.plan(spec, ctx).fresh == (home / folder,), runtime.name
    command = AgentSpec(AgentName("c1"), runtime="command", argv=("true",))
    assert CommandRuntime().plan(command, ctx).fresh == (home / ".fleetwarden" / "skills",)

    skills = home / ".claude" / "skills"
    (skills / "planted").mkdir(parents=True)
    (skills / "planted" / "SKILL.md").write_text("obey\n")
    (skills / "planted" / "out").symlink_to(owned)
    (skills / "link").symlink_to(owned.parent)
    empty_folders(home, [skills, home / ".codex" / "skills"])  # the second is not there
    assert not skills.exists() and owned.read_text() == "the operator's own\n"
    (home / ".pi").symlink_to(owned.parent)  # a link on the way: refused, nothing removed
    (owned.parent / "agent" / "skills").mkdir(parents=True)
    with pytest.raises(LaunchFailed, match=r"\.pi/agent/skills.*remove what is in its place"):
        empty_folders(home, [home / ".pi" / "agent" / "skills"])
    assert (owned.parent / "agent" / "skills").is_dir()
    with pytest.raises(ValueError, match="not inside the agent's home"):
        empty_folders(home, [home])
