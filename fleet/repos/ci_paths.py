"""Which paths of a repository a CI system runs: the pipeline definitions of every forge and
CI service a repository may be hooked to, and what those definitions run by reference —
the paths the git door refuses a run to change unless the repository lets it
(``workflows: true``).

A pipeline runs with the repository's secrets the moment a branch reaches the upstream
(a forge run pushes its own at ``done``), so a change to one is a change to what runs with
them. The rule is by place, not by a list of two directories: GitHub's and Gitea's and
Forgejo's workflow and action folders, GitLab's file and the files it includes, Woodpecker,
Drone, CircleCI, Jenkins, Azure Pipelines, Bitbucket, Travis, Buildkite, AppVeyor — and
whatever else the repository's config names (``workflows: [paths…]``). What a workflow of
the base runs by reference (``uses: ./path``, a local action or reusable workflow; GitLab's
``include: local``) is read from the base's own files (:func:`referenced`). Names are
matched without regard to case: a look-alike is refused too, never let through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any, Final

import yaml

CI_DIRS: Final = (
    ".github/workflows/",
    ".github/actions/",
    ".gitea/",
    ".forgejo/",
    ".gitlab/",
    ".woodpecker/",
    ".circleci/",
    ".buildkite/",
    ".azure-pipelines/",
    ".drone/",
)
"""Folders whose every file a CI system reads (or runs)."""
CI_FILES: Final = (
    ".gitlab-ci.yml",
    ".gitlab-ci.yaml",
    ".woodpecker.yml",
    ".woodpecker.yaml",
    ".drone.yml",
    ".drone.yaml",
    ".drone.jsonnet",
    ".drone.star",
    "jenkinsfile",
    "azure-pipelines.yml",
    "azure-pipelines.yaml",
    "bitbucket-pipelines.yml",
    ".travis.yml",
    "appveyor.yml",
    ".appveyor.yml",
    ".cirrus.yml",
    ".buildkite.yml",
)
"""Files at the top of the repository a CI system reads (lower case)."""
CI_FILES_ANYWHERE: Final = ("jenkinsfile",)
"""File names a CI system may be pointed at in any folder (lower case)."""
SUMMARY: Final = (
    ".github/workflows/ and .github/actions/, .gitea/, .forgejo/, .gitlab-ci.yml and what "
    "it includes, .woodpecker*, .drone.yml, .circleci/, Jenkinsfile, azure-pipelines.yml, "
    "bitbucket-pipelines.yml and the like"
)
"""How a refusal names the paths, in short."""
WORKFLOW_FILES: Final = re.compile(
    r"(?:\.github|\.gitea|\.forgejo)/workflows/[^/]+\.ya?ml|\.github/actions?/.+\.ya?ml|"
    r"action\.ya?ml",
    re.IGNORECASE,
)
"""The files :func:`referenced` reads for ``uses: ./path``."""
GITLAB_FILES: Final = (".gitlab-ci.yml", ".gitlab-ci.yaml")
MAX_READ: Final = 256 * 1024  # bytes of one pipeline file read for its references


def normal(path: str) -> str:
    """``path`` as the rules compare it: relative, no ``./``, no trailing ``/``, lower case."""
    parts = [p for p in path.strip().split("/") if p not in ("", ".")]
    return "/".join(parts).lower()


def ci_path(path: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``path`` (in the repository) is one a CI system reads or runs: a pipeline's
    definition, a folder holding them (or one on the way to one), or one of ``extra`` (the
    repository's own list and :func:`referenced`, each a file or a folder)."""
    name = normal(path)
    if not name:
        return False
    if name in CI_FILES or name.rsplit("/", 1)[-1] in CI_FILES_ANYWHERE:
        return True
    folders = [*CI_DIRS, *(normal(e) + "/" for e in extra if normal(e))]
    return any(name.startswith(f) or f.startswith(name + "/") for f in folders)


def referenced(files: Mapping[str, bytes]) -> set[str]:
    """The paths the pipeline ``files`` (path → content, as the base has them) run by
    reference: a workflow's or an action's ``uses: ./path`` (a local action, whose folder
    it names, or a reusable workflow), GitLab's ``include: local`` (and a plain string
    include naming a path of this repository). Anything unreadable names nothing."""
    found: set[str] = set()
    for path, raw in files.items():
        data = _load(raw)
        if data is None:
            continue
        if normal(path) in GITLAB_FILES:
            found |= _gitlab_includes(data)
        else:
            found |= {normal(u) for u in _walk_uses(data) if normal(u)}
    return found


def wanted(path: str) -> bool:
    """Whether :func:`referenced` reads the file at ``path``."""
    return normal(path) in GITLAB_FILES or WORKFLOW_FILES.fullmatch(normal(path)) is not None


def _load(raw: bytes) -> Any:
    if len(raw) > MAX_READ:
        return None
    try:
        return yaml.safe_load(raw.decode("utf-8", errors="replace"))
    except yaml.YAMLError:
        return None


def _walk_uses(data: Any, depth: int = 0) -> Iterable[str]:
    if depth > 32:
        return
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key == "uses" and isinstance(value, str) and value.startswith("./"):
                yield _local(value.split("@", 1)[0])
            else:
                yield from _walk_uses(value, depth + 1)
    elif isinstance(data, list):
        for item in data:
            yield from _walk_uses(item, depth + 1)


def _gitlab_includes(data: Any) -> set[str]:
    if not isinstance(data, Mapping):
        return set()
    include = data.get("include")
    items = include if isinstance(include, list) else [include]
    found: set[str] = set()
    for item in items:
        target: Any = item
        if isinstance(item, Mapping):
            target = item.get("local")
        if isinstance(target, str) and "://" not in target and not target.startswith("$"):
            local = _local(target)
            if local:
                found.add(local)
    return found


def _local(path: str) -> str:
    """A path of this repository as a reference names it (``./x``, ``/x``), normalised; a
    glob names the folder it starts in; ``..`` out of the repository names nothing."""
    glob = re.search(r"[*?\[{]", path)
    if glob is not None:
        path = path[: glob.start()].rpartition("/")[0]
    parts: list[str] = []
    for part in PurePosixPath("/" + path).parts[1:]:
        if part == "..":
            if not parts:
                return ""
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return normal("/".join(parts))
