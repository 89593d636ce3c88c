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

import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
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
    ".semaphore/",
    ".builds/",
    ".tekton/",
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
    ".cirrus.star",
    ".buildkite.yml",
    ".buildkite.yaml",
    "buildkite.yml",
    "buildkite.yaml",
    ".build.yml",
    "cloudbuild.yaml",
    "cloudbuild.yml",
    "buildspec.yml",
    "buildspec.yaml",
    "bitrise.yml",
    "codefresh.yml",
)
"""Files at the top of the repository a CI system reads (lower case)."""
CI_FILES_ANYWHERE: Final = ("jenkinsfile",)
"""File names a CI system may be pointed at in any folder (lower case)."""
SUMMARY: Final = (
    ".github/workflows/ and .github/actions/, .gitea/, .forgejo/, .gitlab-ci.yml and what "
    "it includes, .woodpecker*, .drone.yml, .circleci/, Jenkinsfile, azure-pipelines.yml, "
    "bitbucket-pipelines.yml and the like, and the local actions the workflows use"
)
"""How a refusal names the paths, in short."""
WORKFLOW_FILES: Final = re.compile(
    r"(?:\.github|\.gitea|\.forgejo)/workflows/[^/]+\.ya?ml|(?:.+/)?action\.ya?ml",
    re.IGNORECASE,
)
"""The files :func:`referenced` starts from: the workflows, and every action's own file."""
ACTION_FILES: Final = ("action.yml", "action.yaml")
MAX_FILES: Final = 300  # pipeline files read for their references, at most
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


def referenced(read: Callable[[str], bytes | None], roots: Iterable[str]) -> set[str]:
    """The paths the pipelines at ``roots`` run by reference, read from the base through
    ``read`` (a path → its content, None when there is none), followed as far as they go
    (:data:`MAX_FILES` files at most):

    * a workflow's or an action's ``uses: ./path`` — a reusable workflow (read in turn), or
      a local action's folder (its ``action.yml`` read in turn: what its ``runs`` names,
      ``main``, ``pre``, ``post``, and its steps' own ``uses: ./…``); ``uses: ./`` is the
      action at the top of the repository;
    * GitLab's ``include`` (``local:`` or a plain path of this repository) and a child
      pipeline's ``trigger: include:``, in every file they lead to.

    Anything unreadable names nothing more."""
    found: set[str] = set()
    pending = [(normal(r), normal(r) in GITLAB_FILES) for r in roots]
    seen: set[tuple[str, bool]] = set()
    while pending and len(seen) < MAX_FILES:
        path, gitlab = pending.pop()
        if (path, gitlab) in seen:
            continue
        seen.add((path, gitlab))
        raw = read(path)
        data = _load(raw) if raw is not None else None
        if data is None:
            continue
        if gitlab:
            more = _gitlab_includes(data)
            found |= more
            pending += [(p, True) for p in sorted(more)]
            continue
        if posixpath.basename(path) in ACTION_FILES:  # what the action runs, by its runs:
            for key in ("main", "pre", "post"):
                run = _get(data, "runs", key)
                here = posixpath.dirname(path)
                if isinstance(run, str) and (local := _local(posixpath.join(here, run))):
                    found.add(local)
        for use in _walk_uses(data):
            if use.endswith((".yml", ".yaml")):  # a reusable workflow
                found.add(use)
                pending.append((use, False))
            else:  # a local action (``./`` the top): its folder, its action.yml in turn
                files = [posixpath.join(use, name) for name in ACTION_FILES]
                found |= {use, *files}
                pending += [(f, False) for f in files]
    return {f for f in found if f}


def roots(names: Iterable[str]) -> list[str]:
    """Of the base's file ``names``, the pipelines :func:`referenced` starts from."""
    return [n for n in names if normal(n) in GITLAB_FILES or WORKFLOW_FILES.fullmatch(normal(n))]


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


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
    """The local files a GitLab pipeline ``data`` includes, or starts as child pipelines
    (a job's ``trigger: include:``)."""
    if not isinstance(data, Mapping):
        return set()
    lists = [data.get("include")]
    lists += [_get(job, "trigger", "include") for job in data.values() if isinstance(job, Mapping)]
    found: set[str] = set()
    for include in lists:
        for item in include if isinstance(include, list) else [include]:
            target: Any = item.get("local") if isinstance(item, Mapping) else item
            local = _local(target) if isinstance(target, str) else ""
            if local and "://" not in target and not target.startswith("$"):
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
