"""The presets ``fleetwarden init`` writes, and the files each renders (pure).

Each preset is the common head (``templates/head.yaml``: the console, ``enforce``, the
offline provider's note, the sandbox defaults, a daily budget, ``agents: roster.yaml``), its
own sections (``templates/PRESET.yaml``) and its roster (``templates/PRESET.roster.yaml``),
filled in with :class:`Answers` by :class:`string.Template` (``$name``; YAML's braces stay
as written).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from string import Template

from fleet.forge.schema import api_url_problem
from fleet.repos.urls import is_relative_path, url_kind, url_problem

CONFIG_NAME = "fleetwarden.yaml"
ROSTER_NAME = "roster.yaml"
REPO_DIR = "repo"
"""The git repository ``init`` makes beside the config when a preset works on one and no
``--repo-url`` is given."""


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    what: str
    """What it sets up, in a line: the config's head and ``init --help`` say it."""
    repo: bool = False
    """Whether it works on a repository (made beside the config unless one is named)."""
    forge: bool = False


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("solo", "One coder agent, metered through the built-in offline provider."),
        Preset(
            "pair",
            "A coder and a reviewer on one repository: the review stage has reviewer read "
            "each of coder's changes before a human does.",
            repo=True,
        ),
        Preset(
            "forge",
            "A forge bot: GitHub, Gitea or GitLab issues labelled `fleetwarden:coder` become "
            "runs of coder, their pull (GitLab: merge) requests the conversation.",
            repo=True,
            forge=True,
        ),
        Preset(
            "pipeline",
            "A pipeline `ship` of three stages, plan -> code -> review, an agent each "
            "(planner, coder, reviewer), with a gate between them.",
            repo=True,
        ),
    )
}
DEFAULT_PRESET = "solo"
FORGE_KINDS = ("github", "gitea", "gitlab")
GITHUB_API = "https://api.github.com"
DEFAULT_APIS = {
    "github": GITHUB_API,
    "gitea": "https://gitea.example.com/api/v1",
    "gitlab": "https://gitlab.com/api/v4",
}
"""Each forge kind's API root, as ``init`` offers it."""
FORGE_WORDS = {
    "github": ("GitHub", "pull request"),
    "gitea": ("Gitea", "pull request"),
    "gitlab": ("GitLab", "merge request"),
}
"""How each forge kind is named, and what it calls a proposed change: a GitLab user looks
for merge requests, never pull requests."""


class UnknownPreset(ValueError):
    """A preset (or a forge kind) that names none; its message offers the nearest."""


def preset_named(name: str) -> Preset:
    """The preset ``name``, or :class:`UnknownPreset` saying which was likely meant."""
    if name in PRESETS:
        return PRESETS[name]
    near = difflib.get_close_matches(name, PRESETS, n=1)
    hint = f": did you mean {near[0]!r}?" if near else ""
    raise UnknownPreset(f"unknown preset {name!r}{hint} (presets: {', '.join(PRESETS)})")


def forge_kind_named(kind: str) -> str:
    """``kind`` when it is a forge kind, else :class:`UnknownPreset` saying which was likely
    meant."""
    if kind in FORGE_KINDS:
        return kind
    near = difflib.get_close_matches(kind, FORGE_KINDS, n=1)
    hint = f": did you mean {near[0]!r}?" if near else ""
    raise UnknownPreset(f"unknown forge kind {kind!r}{hint} (kinds: {', '.join(FORGE_KINDS)})")


@dataclass(frozen=True, slots=True)
class Answers:
    """What the files are filled in with: each has a default, so nothing must be asked."""

    config: str = CONFIG_NAME
    """How the config's comments name it (the path ``check-config --config`` takes)."""
    repo_url: str | None = None
    """The repository's url; ``None``: the one ``init`` makes (``repo`` beside the config)."""
    forge: str = "github"
    """The ``forges:`` entry's name (its kind's name)."""
    forge_api: str = GITHUB_API
    forge_repo: str = "acme/app"
    login: str = "fleetwarden-bot"
    listen: str = "127.0.0.1:8750"


def described(preset: Preset, answers: Answers) -> str:
    """What ``preset`` sets up, in a line, in the words of the forge ``answers`` chose."""
    if not preset.forge:
        return preset.what
    name, change = FORGE_WORDS[answers.forge]
    return (
        f"A forge bot: {name} issues labelled `fleetwarden:coder` become runs of coder, "
        f"their {change}s the conversation."
    )


def makes_repo(preset: Preset, answers: Answers) -> bool:
    """Whether ``init`` makes the repository ``repo`` beside the config: a preset on a
    repository not on a forge, with no ``--repo-url``."""
    return preset.repo and not preset.forge and answers.repo_url is None


def forge_repo_url(answers: Answers) -> str:
    """Where the forge's repository is cloned from: GitHub's, or a Gitea's (a GitLab's) API
    root less its ``/api/v1`` (``/api/v4``)."""
    if answers.forge == "github":
        return f"https://github.com/{answers.forge_repo}.git"
    root = answers.forge_api.rstrip("/").removesuffix("/api/v1").removesuffix("/api/v4")
    return f"{root}/{answers.forge_repo}.git"


def url_problems(preset: Preset, answers: Answers) -> list[str]:
    """Why ``check-config`` would refuse a url these answers put in the config — a
    credential in it above all — each after the option that gave it: its own checks, so
    ``init`` writes no line that check would refuse."""
    found = []
    if preset.forge and (problem := api_url_problem(answers.forge_api, answers.forge)):
        found.append(f"--forge-api: {problem}")
    url = answers.repo_url
    if url is None and preset.forge and not found:  # derived from --forge-api's root
        url = forge_repo_url(answers)
    if url is not None and not is_relative_path(url) and url_kind(url) is None:
        found.append(f"{'--repo-url' if answers.repo_url else '--forge-repo'}: {url_problem(url)}")
    return found


def render(preset: Preset, answers: Answers) -> dict[str, str]:
    """The files of ``preset``, by name relative to the directory, filled in."""
    url = answers.repo_url or (forge_repo_url(answers) if preset.forge else REPO_DIR)
    note = (
        f"`{REPO_DIR}` is a git repository `fleetwarden init` made beside this file, with one "
        "commit: point url at yours (a path on this machine, or https://… with token_env "
        "naming the variable that holds its token)."
        if makes_repo(preset, answers)
        else ""
    )
    values = {
        "preset": preset.name,
        "what": described(preset, answers),
        "config": answers.config,
        "repo_url": url,
        "repo_note": note,
        "forge": answers.forge,
        "forge_kind": answers.forge,
        "forge_api": answers.forge_api,
        "forge_name": FORGE_WORDS[answers.forge][0],
        "change": FORGE_WORDS[answers.forge][1],
        "forge_repo": answers.forge_repo,
        "login": answers.login,
        "listen": answers.listen,
    }
    config = _template("head.yaml").substitute(values)
    if preset.name != "solo":
        config += _template(f"{preset.name}.yaml").substitute(values)
    roster = _template(f"{preset.name}.roster.yaml").substitute(values)
    return {CONFIG_NAME: _tidy(config), ROSTER_NAME: _tidy(roster)}


def _template(name: str) -> Template:
    return Template(resources.files("bot.cli.init").joinpath("templates", name).read_text("utf-8"))


def _tidy(text: str) -> str:
    """Without the spaces an empty note leaves at a line's end."""
    return "".join(line.rstrip() + "\n" for line in text.splitlines())
