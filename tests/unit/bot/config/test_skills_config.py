"""What the config says of skills (fleet.mcp.config.skills, fleet.agents.tool_keys): an agent's
or `defaults`' `skills:` is a list of directories, each holding a SKILL.md whose front
matter names it after its folder and describes it; each wrong one is refused at its line of
the config, saying the SKILL.md line and the fix; relative paths resolve like any other."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import ConfigError, ConfigProblem, parse_config
from fleet.mcp.config.skills import SkillError, read_skill

FILE = "fleetwarden.yaml"
GOOD = "---\nname: {name}\ndescription: Writes release notes from merged PRs.\n---\n# Body\n"


def skill(root: Path, name: str, text: str | None = None) -> Path:
    folder = root / "skills" / name
    folder.mkdir(parents=True)
    if text is not None:
        (folder / "SKILL.md").write_text(text.format(name=name))
    return folder


def problems_of(text: str, base_dir: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE, base_dir=base_dir)
    return list(caught.value.problems)


def test_a_skill_is_read_with_its_name_and_description(tmp_path: Path) -> None:
    """A folder whose SKILL.md names it and describes it: read as written (a byte-order
    mark and a block description too)."""
    folder = skill(
        tmp_path,
        "release-notes",
        "\ufeff---\nname: release-notes\ndescription: >\n  Writes release notes\n"
        "  from merged PRs.\nlicense: MIT\n---\nbody\n",
    )
    found = read_skill(folder)
    assert (found.name, found.description) == (
        "release-notes",
        "Writes release notes from merged PRs.",
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("# no front matter\n", "SKILL.md:1: SKILL.md begins with its YAML front matter"),
        ("---\nname: notes\n", "SKILL.md:1: the front matter is never closed"),
        ("---\nname: [notes\n---\n", "SKILL.md:2: the front matter is not valid YAML"),
        ("---\n- notes\n---\n", "SKILL.md:2: the front matter must be `key: value` lines"),
        (
            "---\ndescription: d\n---\n",
            "SKILL.md:2: the front matter has no `name`: add `name: notes`",
        ),
        (
            "---\nname: other\ndescription: d\n---\n",
            "SKILL.md:2: the `name` in SKILL.md differs from the folder's name `notes`",
        ),
        ("---\nname: notes\n---\n", "SKILL.md:2: the front matter has no `description`"),
        ("---\nname: notes\ndescription:\n---\n", "SKILL.md:3: `description` is empty"),
        ("---\nname: notes\ndescription: '  '\n---\n", "SKILL.md:3: `description` is empty"),
        ("---\nname: notes\ndescription: " + "x" * 1025 + "\n---\n", "more than 1024"),
    ],
)
def test_a_wrong_skill_md_says_its_line_and_fix(tmp_path: Path, text: str, said: str) -> None:
    """Each mistake in a SKILL.md: said with the file's line and how to put it right."""
    folder = skill(tmp_path, "notes", text)
    with pytest.raises(SkillError) as caught:
        read_skill(folder)
    assert said in str(caught.value)
    assert str(caught.value).startswith(str(folder / "SKILL.md"))


def test_a_folder_without_skill_md_or_of_a_wrong_name_is_refused(tmp_path: Path) -> None:
    """No SKILL.md, a folder named as no skill may be, a path that is no directory: each
    refused saying what to do."""
    with pytest.raises(SkillError, match=r"holds no SKILL\.md: add one beginning with"):
        read_skill(skill(tmp_path, "empty"))
    with pytest.raises(SkillError, match=r"is not a skill's name .* rename the folder"):
        read_skill(skill(tmp_path, "Bad_Name", GOOD))
    with pytest.raises(SkillError, match=r"does not exist: a skill is a folder holding SKILL\.md"):
        read_skill(tmp_path / "nowhere")


def test_skills_resolve_against_the_config_and_reach_the_spec(tmp_path: Path) -> None:
    """Relative and `~` paths, an agent's own list and the defaults' (which `skills: []`
    turns off): absolute paths on each spec."""
    notes = skill(tmp_path, "notes", GOOD)
    review = skill(tmp_path, "review", GOOD)
    config = parse_config(
        "defaults:\n  skills: [skills/notes]\n"
        "agents:\n  - name: a\n    skills: [~/skills/review, ./skills/notes]\n"
        "  - name: b\n  - name: c\n    skills: []\n",
        FILE,
        base_dir=tmp_path,
        home=str(tmp_path),
    )
    specs = [agent.to_spec(config.defaults) for agent in config.agents]
    assert [spec.skills for spec in specs] == [(review, notes), (notes,), ()]


def test_a_wrong_skill_is_refused_at_its_line_of_the_config(tmp_path: Path) -> None:
    """A skill whose name is not its folder's, one missing, two of one name: each at the
    config line that lists it (a roster agent's, the defaults')."""
    skill(tmp_path, "notes", "---\nname: note\ndescription: d\n---\n")
    skill(tmp_path, "good", GOOD)
    other = tmp_path / "elsewhere"
    skill(other, "good", GOOD)
    problems = problems_of(
        "defaults:\n  skills:\n    - skills/missing\n"
        "agents:\n"
        "  - name: a\n"
        "    skills:\n"
        "      - skills/notes\n"
        "  - name: b\n"
        "    skills: [skills/good, elsewhere/skills/good]\n",
        tmp_path,
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (3, "defaults.skills[0]"),
        (7, "agents[0].skills[0]"),
        (9, "agents[1].skills"),
    ]
    missing, named, twice = (p.message for p in problems)
    assert "skills/missing' does not exist" in missing
    assert "SKILL.md:2: the `name` in SKILL.md differs from the folder's name `notes`" in named
    assert "'note'" not in named
    assert "two skills are named 'good'" in twice


def test_a_roster_files_skills_resolve_against_its_own_directory(tmp_path: Path) -> None:
    """In a roster file, a relative skill path is read from the roster file's directory, and
    a wrong one is reported at the roster file's line."""
    etc = tmp_path / "etc"
    etc.mkdir()
    good = skill(etc, "notes", GOOD)
    (etc / "roster.yaml").write_text(
        "- name: a\n  skills: [skills/notes]\n- name: b\n  skills:\n    - skills/gone\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config("agents: etc/roster.yaml\n", FILE, base_dir=tmp_path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.key_path) == (
        "etc/roster.yaml",
        5,
        "agents[1].skills[0]",
    )
    (etc / "roster.yaml").write_text("- name: a\n  skills: [skills/notes]\n")
    config = parse_config("agents: etc/roster.yaml\n", FILE, base_dir=tmp_path)
    assert config.agents[0].to_spec(config.defaults).skills == (good,)


def test_a_skill_or_stdio_server_where_an_agent_writes_is_refused(tmp_path: Path) -> None:
    """A skill inside an agent's workdir or the state directory, a stdio server's program
    or working directory under `workdirs:`: each refused at its line, saying why; a skill
    beside the config passes."""
    work = tmp_path / "work"
    skill(work, "planted", GOOD)
    skill(tmp_path / "state", "left", GOOD)
    skill(tmp_path, "fine", GOOD)
    (tmp_path / "farm" / "a" / "bin").mkdir(parents=True)
    (tmp_path / "farm" / "a" / "bin" / "server").write_text("#!/bin/sh\n")
    (tmp_path / "farm" / "a" / "bin" / "server").chmod(0o755)
    problems = problems_of(
        "state_dir: state\n"
        "workdirs: farm\n"
        "mcp:\n"
        "  tool:\n"
        "    command: farm/a/bin/server\n"
        "    cwd: farm/a\n"
        "defaults:\n"
        "  skills: [state/skills/left]\n"
        "agents:\n"
        "  - name: a\n"
        "    workdir: work\n"
        "    skills: [skills/fine, work/skills/planted]\n",
        tmp_path,
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (5, "mcp.tool.command"),
        (6, "mcp.tool.cwd"),
        (8, "defaults.skills[0]"),
        (12, "agents[0].skills[1]"),
    ]
    command, cwd, left, planted = (p.message for p in problems)
    assert "inside `workdirs:`, where agents work" in command and "with its credentials" in cwd
    assert "inside Fleetwarden's state directory" in left
    assert "is inside agent a's workdir: an agent could change it" in planted


def test_a_stdio_servers_paths_and_places_holding_an_agents_are_refused(tmp_path: Path) -> None:
    """A stdio server's argument or variable naming a path in an agent's workdir
    (PYTHONPATH, NODE_OPTIONS' --require), and a skill directory or server cwd holding an
    agent's workdir or the state directory: each refused at its own line."""
    outer = skill(tmp_path, "outer", GOOD)
    (outer / "work").mkdir()
    (tmp_path / "wd").mkdir()
    (tmp_path / "srv").mkdir()
    wd = tmp_path / "wd"
    problems = problems_of(
        f"state_dir: {tmp_path / 'srv' / 'state'}\n"
        "mcp:\n"
        "  s:\n"
        "    command: python3\n"
        f"    args: [-m, srv, '--plugins={wd}/p']\n"
        f"    cwd: {tmp_path / 'srv'}\n"
        "    env:\n"
        "      LOG: warn\n"
        f"      PYTHONPATH: /usr/lib:{wd}\n"
        f"      NODE_OPTIONS: --require {wd}/hook.js\n"
        "agents:\n"
        "  - name: a\n"
        f"    workdir: {outer / 'work'}\n"
        "  - name: b\n"
        f"    workdir: {wd}\n"
        f"    skills: [{outer}]\n",
        tmp_path,
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (5, "mcp.s.args[2]"),
        (6, "mcp.s.cwd"),
        (9, "mcp.s.env.PYTHONPATH"),
        (10, "mcp.s.env.NODE_OPTIONS"),
        (16, "agents[1].skills[0]"),
    ]
    args, cwd, path, node, held = (p.message for p in problems)
    assert f"MCP server s's args[2] '{wd}/p' is inside agent b's workdir" in args
    assert "holds Fleetwarden's state directory" in cwd and "with its credentials" in cwd
    assert f"env.PYTHONPATH '{wd}' is inside agent b's workdir" in path
    assert "hook.js' is inside agent b's workdir" in node
    assert f"skill directory '{outer}' holds agent a's workdir" in held


def test_a_symlink_leading_out_of_a_skill_or_a_fifo_is_refused_unread(tmp_path: Path) -> None:
    """SKILL.md linked to a file outside the skill (/etc/shadow), a script linked out, or
    a FIFO for SKILL.md: refused, nothing read and nothing waited on; a link that stays
    inside the folder passes."""
    linked = skill(tmp_path, "linked")
    (linked / "SKILL.md").symlink_to("/etc/shadow")
    with pytest.raises(SkillError, match=r"'SKILL\.md' is a symlink leading out of the skill"):
        read_skill(linked)
    script = skill(tmp_path, "script", GOOD)
    (script / "bin").mkdir()
    (script / "bin" / "run.sh").symlink_to(tmp_path / "elsewhere.sh")
    with pytest.raises(SkillError, match=r"'bin/run\.sh' is a symlink leading out"):
        read_skill(script)
    fifo = skill(tmp_path, "fifo")
    os.mkfifo(fifo / "SKILL.md")
    with pytest.raises(SkillError, match=r"SKILL.md is a FIFO \(named pipe\), not a file"):
        read_skill(fifo)
    inner = skill(tmp_path, "inner")
    (inner / "real.md").write_text(GOOD.format(name="inner"))
    (inner / "SKILL.md").symlink_to("real.md")
    assert read_skill(inner).name == "inner"


@pytest.mark.parametrize(
    ("front", "said"),
    [
        ("name: other\nname: {name}\ndescription: d", "SKILL.md:3: `name` is set twice"),
        ("name: {name}\ndescription: 3", "YAML reads this one as an int"),
        ("name: {name}\ndescription: yes", "YAML reads this one as a bool"),
        ("name: {name}\ndescription: [a, b]", "YAML reads this one as a list"),
        ("name: !!python/object:os.system {name}\ndescription: d", "uses a YAML tag"),
        ('name: {name}\ndescription: "a\\x1b[31mred"', "SKILL.md:3: `description` holds a control"),
        ("name: {name}\ndescription: d\nallowed-tools: Bash", "`allowed-tools` lets the"),
        ("name: {name}\ndescription: d\nhooks: {{}}", "SKILL.md:4: `hooks` would run commands"),
        ("name: {name}\ndescription: d\nmcpServers: {{}}", "`mcpServers` would start MCP servers"),
        ("name: hunter2-SECRET\ndescription: d", "differs from the folder's name `notes`"),
    ],
)  # fmt: skip
def test_a_front_matter_that_cannot_be_trusted_is_refused(
    tmp_path: Path, front: str, said: str
) -> None:
    """Twice-set keys, a description that is not text, YAML tags, control characters, and
    the keys that widen what the skill may do (allowed-tools, which Claude Code
    pre-approves, hooks, mcpServers): refused at their line; what the name says is never
    echoed."""
    folder = skill(tmp_path, "notes", "---\n" + front + "\n---\n")
    with pytest.raises(SkillError) as refused:
        read_skill(folder)
    assert said in str(refused.value)
    assert "hunter2" not in str(refused.value)
