"""What readies an agent's lane on a host whose login is root, run as it runs there (a
standalone script under `python3 -I -S`, its files on stdin): HOME and workdir made, the
runtime's files written through no symlink the agent left, both trees handed to the
agent's uid but for what lies outside them; a file outside HOME or a workdir next to / is
refused with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fleet.hosts.lanes import LANE_FILES, LANE_SETUP, LANE_WRITE
from fleet.lane_files import ExecutableText, files_json
from fleet.sandbox.lanes import FIRST_UID
from tests import sandbox_need

UID = FIRST_UID + 11


def set_up(
    home: Path, workdir: Path, files: dict[str, str], *fresh: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", str(LANE_SETUP), str(UID), str(home), str(workdir)]
        + [str(folder) for folder in fresh],
        input=json.dumps(files),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_its_copy_finds_lane_files_beside_it() -> None:
    assert LANE_SETUP.parents[1] / "lane_files.py" == LANE_FILES


@sandbox_need.root("hands files to another uid")
def test_a_lane_is_made_written_and_handed_over_through_no_symlink(tmp_path: Path) -> None:
    home, workdir = tmp_path / "agents" / "a" / "home", tmp_path / "work" / "a"
    outside = tmp_path / "fleetwarden.yaml"
    outside.write_text("root's\n")
    done = set_up(home, workdir, {str(home / ".cfg" / "settings.json"): "{}"})
    assert done.returncode == 0, done.stderr
    assert (home / ".cfg" / "settings.json").read_text() == "{}"
    for path in (home / ".cfg", home / ".cfg" / "settings.json"):
        assert path.stat().st_uid == UID and path.stat().st_gid == UID, path
    for top in (home, workdir):  # closed to other agents' users, root's group may enter
        assert (top.stat().st_uid, top.stat().st_gid, top.stat().st_mode & 0o777) == (
            UID,
            0,
            0o750,
        ), top
    # The agent leaves a link where its settings go, and one in its workdir.
    (home / ".cfg" / "settings.json").unlink()
    (home / ".cfg" / "settings.json").symlink_to(outside)
    (workdir / "link").symlink_to(outside)
    done = set_up(home, workdir, {str(home / ".cfg" / "settings.json"): '{"a": 1}'})
    assert done.returncode == 0, done.stderr
    assert outside.read_text() == "root's\n" and outside.stat().st_uid == os.getuid()
    assert not (home / ".cfg" / "settings.json").is_symlink()


def test_a_file_outside_its_home_or_a_workdir_next_to_root_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = set_up(home, tmp_path / "work", {str(tmp_path / "elsewhere.json"): "{}"})
    assert done.returncode == 1 and done.stderr.startswith("lane_setup: "), done.stderr
    assert not (tmp_path / "elsewhere.json").exists()
    done = set_up(home, Path("/srv"), {})
    assert done.returncode == 1 and "too near / to be handed" in done.stderr, done.stderr


@sandbox_need.root("hands files to another uid")
def test_a_fresh_folder_is_emptied_before_the_files_are_written(tmp_path: Path) -> None:
    """A CLI's skills folder named after the workdir is emptied first (a skill the agent
    planted, and its link out, gone; the link's target kept), then the files written."""
    home, workdir = tmp_path / "home", tmp_path / "work"
    skills = home / ".claude" / "skills"
    outside = tmp_path / "operator-file"
    outside.write_text("kept\n")
    (skills / "planted").mkdir(parents=True)
    (skills / "planted" / "SKILL.md").write_text("obey\n")
    (skills / "link").symlink_to(outside)
    given = str(skills / "given" / "SKILL.md")
    done = set_up(home, workdir, {given: "---\n"}, skills)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in skills.iterdir()) == ["given"]
    assert outside.read_text() == "kept\n"
    done = set_up(home, workdir, {}, tmp_path / "elsewhere")
    assert done.returncode == 1 and done.stderr.startswith("lane_setup: "), done.stderr


def write_home(home: Path, files: dict[str, str], *fresh: Path) -> subprocess.CompletedProcess[str]:
    """``lane_write.py`` as a host whose login is the agent's own user runs it."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(LANE_WRITE), str(home), *map(str, fresh)],
        input=files_json(files),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_home_is_written_and_emptied_through_no_link_the_agent_left(tmp_path: Path) -> None:
    """Where the login is the agent's own user: its skills folder emptied and its files
    written in its HOME; a link it planted on the way (``.codex`` → another agent's
    workdir) refuses both, nothing written or removed there; a link in a file's place is
    replaced, its target untouched."""
    home, other = tmp_path / "home", tmp_path / "other-agent"
    (home / ".claude" / "skills" / "planted").mkdir(parents=True)
    (other / "skills" / "theirs").mkdir(parents=True)
    (home / ".codex").symlink_to(other)
    (home / ".claude" / "settings.json").symlink_to(other / "skills" / "theirs")
    done = write_home(
        home, {str(home / ".claude" / "settings.json"): "{}"}, home / ".claude" / "skills"
    )
    assert done.returncode == 0, done.stderr
    assert not (home / ".claude" / "skills").exists()
    assert (home / ".claude" / "settings.json").read_text() == "{}"
    assert not (home / ".claude" / "settings.json").is_symlink()
    for fresh, files in (
        ((home / ".codex" / "skills",), {}),
        ((), {str(home / ".codex" / "config.toml"): "x"}),
    ):
        done = write_home(home, files, *fresh)
        assert done.returncode == 1 and done.stderr.startswith("lane_write: "), done.stderr
        assert "symlink" in done.stderr
    assert (other / "skills" / "theirs").is_dir() and not (other / "config.toml").exists()


def test_a_skills_executable_script_is_written_executable_on_a_host(tmp_path: Path) -> None:
    """A skill's script that was executable where the operator keeps it is written 0700 by
    the host's scripts as here, the rest 0600; a file neither text nor the executable form
    is refused."""
    home = tmp_path / "home"
    script = home / ".claude" / "skills" / "notes" / "scripts" / "run.sh"
    text = home / ".claude" / "skills" / "notes" / "SKILL.md"
    files = {str(script): ExecutableText("#!/bin/sh\necho hi\n"), str(text): "---\n"}
    home.mkdir()
    assert write_home(home, files).returncode == 0
    assert (script.stat().st_mode & 0o777, text.stat().st_mode & 0o777) == (0o700, 0o600)
    bad = subprocess.run(
        [sys.executable, "-I", "-S", str(LANE_WRITE), str(home)],
        input=json.dumps({str(text): {"text": 3}}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "neither a string nor" in bad.stderr
