"""How Fleetwarden's own git reaches an upstream with its credential, and nothing else does.

An https upstream's token is read from the environment variable the config names and handed
to git as an ``http.<url>.extraHeader`` through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/
``GIT_CONFIG_VALUE_n`` — git's own way to take config from the environment — so it is in
no argv (``/proc/<pid>/cmdline``), no config file and no URL, and only git processes
Fleetwarden starts on its mirror have it. The token goes as user ``x-access-token``
(GitHub's convention, which Gitea also takes), or ``oauth2`` to a GitLab (which takes any
non-blank user with the token as password).

An ssh upstream's key file must be its owner's alone (0600). ``GIT_SSH_COMMAND`` would be
parsed by a shell, so git is given ``GIT_SSH``: a small script Fleetwarden writes in its
state dir that runs ``ssh`` with the key named in the environment (``FLEETWARDEN_SSH_KEY``),
``IdentitiesOnly``, ``BatchMode`` and no agent forwarding; no path reaches a shell's parser.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from fleet.private_files import private_dir
from fleet.repos.schema import RepoEntry
from fleet.repos.urls import url_kind

SSH_WRAPPER: Final = "ssh-wrapper"
KEY_VARIABLE: Final = "FLEETWARDEN_SSH_KEY"
_WRAPPER = """#!/bin/sh
exec ssh -i "$FLEETWARDEN_SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes \\
  -o ForwardAgent=no -o ClearAllForwardings=yes -F /dev/null "$@"
"""


class CredentialMissing(Exception):
    """The repository's credential is not there; the message says how to give it."""


def upstream_env(
    name: str,
    entry: RepoEntry,
    environ: Mapping[str, str],
    repos_dir: Path,
    *,
    user: str = "x-access-token",
) -> dict[str, str]:
    """What git needs in its environment to fetch from and push to ``entry``'s upstream;
    a token goes as ``user`` (``oauth2`` for a GitLab's repository)."""
    kind = url_kind(entry.url)
    if entry.token_env is not None:
        token = environ.get(entry.token_env)
        if not token:
            raise CredentialMissing(
                f"repository {name}: token_env names {entry.token_env}, which is not set — "
                f"export the token in {entry.token_env} before starting Fleetwarden"
            )
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{entry.url}.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    if entry.ssh_key is not None:
        key = Path(entry.ssh_key)
        problem = key_problem(key)
        if problem:
            raise CredentialMissing(f"repository {name}: ssh_key {key} {problem}")
        return {"GIT_SSH": str(write_wrapper(repos_dir)), KEY_VARIABLE: str(key)}
    if kind == "ssh":  # the ssh-agent or ~/.ssh of Fleetwarden's user
        return {"GIT_SSH_VARIANT": "ssh"}
    return {}


def key_problem(key: Path) -> str | None:
    """Why ``key`` cannot be used as an ssh key, or ``None``."""
    try:
        info = key.stat()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "is not a file"
    if info.st_mode & 0o077:
        return f"is mode {stat.S_IMODE(info.st_mode):o}: make it 0600 (chmod 600 {key})"
    return None


def write_wrapper(repos_dir: Path) -> Path:
    """The ssh wrapper script in ``repos_dir`` (written once, 0700)."""
    private_dir(repos_dir)
    path = repos_dir / SSH_WRAPPER
    try:
        if path.read_text(encoding="utf-8") == _WRAPPER:
            return path
    except OSError:
        pass
    temporary = path.with_name(f".{SSH_WRAPPER}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o700)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(_WRAPPER)
    os.replace(temporary, path)
    return path


def secret_of(entry: RepoEntry, environ: Mapping[str, str]) -> str | None:
    """The token itself, for the redactor (``None`` for ssh)."""
    return environ.get(entry.token_env) if entry.token_env else None
