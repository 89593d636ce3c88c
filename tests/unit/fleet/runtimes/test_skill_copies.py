"""Each runtime's launch plan copies the agent's configured skills into its CLI's own skills
folder in the agent's home, and refuses a skill it cannot copy safely, naming it and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.errors import LaunchFailed
from fleet.lane_files import ExecutableText
from fleet.runs.layout import write_files
from fleet.runtimes import Runtime, RuntimeContext
from fleet.runtimes.claude import ClaudeRuntime
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.command import CommandRuntime
from fleet.runtimes.opencode import OpencodeRuntime
from fleet.runtimes.pi import PiRuntime
from fleet.runtimes.skill_copies import MAX_FILES
from tests.unit.fleet.runtimes.test_runtimes import ctx as ctx  # a fixture of this module too
from tests.unit.fleet.runtimes.test_runtimes import full, spec

SKILL_MD = "---\nname: review\ndescription: how we review\n---\n\nRead the diff.\n"


@pytest.fixture
def skill(tmp_path: Path) -> Path:
    folder = tmp_path / "skills" / "review"
    (folder / "scripts").mkdir(parents=True)
    (folder / "SKILL.md").write_text(SKILL_MD)
    (folder / "scripts" / "check.sh").write_text("echo ok\n")
    return folder


def plan_files(runtime: Runtime, ctx: RuntimeContext, skill: Path) -> dict[Path, str]:
    argv = ("./bot",) if runtime.name == "command" else ()
    return dict(runtime.plan(spec(runtime.name, skills=(skill,), argv=argv), full(ctx)).files)


@pytest.mark.parametrize(
    ("runtime", "folder"),
    [
        (ClaudeRuntime(), ".claude/skills"),
        (CodexRuntime(), ".codex/skills"),
        (OpencodeRuntime(), ".config/opencode/skills"),
        (PiRuntime(), ".pi/agent/skills"),
        (CommandRuntime(), ".fleetwarden/skills"),
    ],
)
def test_skills_are_copied_into_each_clis_folder(
    runtime: Runtime, folder: str, ctx: RuntimeContext, skill: Path
) -> None:
    """Every file of the skill is in the CLI's own skills folder of the agent's home."""
    files = plan_files(runtime, ctx, skill)
    base = ctx.home / folder / "review"
    assert files[base / "SKILL.md"] == SKILL_MD
    assert files[base / "scripts" / "check.sh"] == "echo ok\n"


def test_a_symlink_inside_the_skill_is_copied_as_its_file(ctx: RuntimeContext, skill: Path) -> None:
    """A symlink to a file of the skill itself is copied as that file."""
    (skill / "alias.sh").symlink_to(skill / "scripts" / "check.sh")
    files = plan_files(ClaudeRuntime(), ctx, skill)
    assert files[ctx.home / ".claude/skills/review/alias.sh"] == "echo ok\n"


def test_a_symlink_out_of_the_skill_is_refused(
    ctx: RuntimeContext, skill: Path, tmp_path: Path
) -> None:
    """A symlink that leads out of the skill refuses the launch, naming skill and fix."""
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    (skill / "notes.md").symlink_to(secret)
    with pytest.raises(LaunchFailed, match=r"skill 'review'.*symlink leading out of the skill"):
        plan_files(ClaudeRuntime(), ctx, skill)


def test_a_symlinked_directory_is_refused(ctx: RuntimeContext, skill: Path) -> None:
    """A symlink to a directory is refused rather than followed."""
    (skill / "more").symlink_to(skill / "scripts")
    with pytest.raises(LaunchFailed, match="symlink to a directory"):
        plan_files(CodexRuntime(), ctx, skill)


def test_binary_fifo_and_too_many_files_are_refused(ctx: RuntimeContext, skill: Path) -> None:
    """A file not UTF-8, a FIFO, or a skill over the file cap each refuse, saying the fix."""
    (skill / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(LaunchFailed, match=r"logo\.png is not UTF-8 text"):
        plan_files(ClaudeRuntime(), ctx, skill)
    (skill / "logo.png").unlink()
    os.mkfifo(skill / "pipe")
    with pytest.raises(LaunchFailed, match="pipe is not a plain file"):
        plan_files(ClaudeRuntime(), ctx, skill)
    (skill / "pipe").unlink()
    for n in range(MAX_FILES):
        (skill / f"f{n}.md").write_text("x")
    with pytest.raises(LaunchFailed, match=f"more than {MAX_FILES} files"):
        plan_files(ClaudeRuntime(), ctx, skill)


def test_a_skill_in_the_agents_own_workdir_is_refused(ctx: RuntimeContext) -> None:
    """A skill directory inside the agent's workdir (which it can write) is never copied."""
    folder = ctx.workdir / "review"
    folder.mkdir(parents=True)
    (folder / "SKILL.md").write_text(SKILL_MD)
    with pytest.raises(LaunchFailed, match="inside the agent's own workdir"):
        plan_files(ClaudeRuntime(), ctx, folder)


def test_a_skill_whose_folder_is_no_skill_name_is_refused(
    ctx: RuntimeContext, tmp_path: Path
) -> None:
    """A skill path whose folder name is not a skill's (a spec made in code: `..`) is never
    copied, so it cannot land outside the CLI's skills folder."""
    folder = tmp_path / "skills" / "review" / ".."
    (tmp_path / "skills" / "review").mkdir(parents=True)
    with pytest.raises(LaunchFailed, match="not a skill's name"):
        plan_files(ClaudeRuntime(), ctx, folder)


def test_an_executable_script_stays_executable_when_written(
    ctx: RuntimeContext, skill: Path
) -> None:
    """A skill's script executable where the operator keeps it is written executable (0700)
    in the agent's home; its other files stay 0600."""
    os.chmod(skill / "scripts" / "check.sh", 0o755)
    files = plan_files(ClaudeRuntime(), ctx, skill)
    base = ctx.home / ".claude/skills/review"
    assert isinstance(files[base / "scripts" / "check.sh"], ExecutableText)
    assert not isinstance(files[base / "SKILL.md"], ExecutableText)
    ctx.home.mkdir(parents=True, exist_ok=True)
    write_files(ctx.home, {p: t for p, t in files.items() if p.is_relative_to(base)})
    assert (base / "scripts" / "check.sh").stat().st_mode & 0o777 == 0o700
    assert (base / "SKILL.md").stat().st_mode & 0o777 == 0o600


def test_a_symlink_planted_after_the_look_is_not_followed(
    ctx: RuntimeContext, skill: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A symlink out of the skill, planted where a plain file was looked at (the look made
    blind to it here), is refused when the file is opened, never read through."""
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    (skill / "notes.md").symlink_to(secret)
    monkeypatch.setattr(Path, "is_symlink", lambda self: False)  # as if swapped after
    with pytest.raises(LaunchFailed, match=r"notes\.md is a symlink leading out of the skill"):
        plan_files(ClaudeRuntime(), ctx, skill)


def test_a_directory_swapped_for_a_symlink_is_refused(
    ctx: RuntimeContext, skill: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file reached through a directory of the skill that now leads out of it (checked
    once the file is open) is refused, naming the skill."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "check.sh").write_text("cat ~/.ssh/id_ed25519\n")
    real_walk = os.walk

    def walk_then_swap(top: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for here, dirs, names in real_walk(top, **kwargs):  # type: ignore[call-overload]
            if Path(here).name == "scripts":
                (skill / "scripts" / "check.sh").unlink()
                (skill / "scripts").rmdir()
                (skill / "scripts").symlink_to(outside)
            yield here, dirs, names

    monkeypatch.setattr(os, "walk", walk_then_swap)
    with pytest.raises(LaunchFailed, match=r"check\.sh is a symlink leading out of the skill"):
        plan_files(ClaudeRuntime(), ctx, skill)
