"""What a directory on an agent's PATH brings back into its sandbox where a hidden path
covers it: itself; where the links in it lead; and, for a ``bin``, the rest of its install
(``~/.cargo/bin`` brings ``~/.cargo``) — its folders but those named like credentials
(:data:`CREDENTIALS`), and of its files only the few a tool reads to run
(:data:`FILES_KEPT`; ``~/.cargo/credentials.toml``, ``~/.fly/config.yml`` stay out). In
``~/.local`` the folders of every application's data stay out too (:data:`LOCAL_DATA`:
``share``, ``state``), but for the one a PATH directory lies in (``~/.local/share/mise``
for ``~/.local/share/mise/shims``). Nothing comes of a folder that is someone's HOME
(``~/bin`` brings itself alone), and nothing is reached through a place an agent may write
(``untrusted``: its workdir, another agent's, the state dir): a link or a ``pyvenv.cfg``
there is the agent's choice, never a reason to bind anything.

A link leads to: the outermost ``node_modules`` it points into (an npm CLI); a Python venv
whole, with the install of the Python it was made from (a pipx or uv tool); the ``bin`` it
points into, with that ``bin``'s install; else the folder of the file it points at
(pyenv's ``libexec``) — but the file alone where that folder is the install around the
PATH directory itself (``~/.cargo/bin/h -> ../helper``), holds it, is ``~/.local/share``,
a HOME or named like a credential.

Standard library only, no ``fleet`` import, Python 3.7's syntax: an SSH host's sandbox asks
its host the same question by running this very file there (``python3 -I -S -c SOURCE
REQUEST``, :func:`fleet.hosts.sandbox.path_needs`), which prints the answer as JSON.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import pwd
import sys

CREDENTIALS = (
    *("credentials*", ".credentials*", "auth.json", "*token*", "*secret*", "*passw*"),
    *(".netrc", ".npmrc", ".pypirc", ".git-credentials", "*.pem", "*.key", "id_*"),
    *(".ssh", ".gnupg", ".aws", ".docker", ".kube", ".config", "keyrings", "*keystore*"),
    "*wallet*",
)
"""Names (glob patterns, any case) no part of an install brings back, file or folder."""

FILES_KEPT = ("version", "pyvenv.cfg", "env", ".crates.toml", ".crates2.json")
"""The files at the top of an install that come back with it (pyenv's ``version``, a venv's
``pyvenv.cfg``, cargo's ``env`` and install records); any other file there stays out."""

LOCAL_DATA = ("share", "state", "etc", "var")
"""The folders of ``~/.local`` (the XDG data and state homes) that never come back whole."""

HOME_MARKS = (".ssh", ".gnupg", ".config", ".profile", ".bashrc")
"""What only a HOME holds: a folder with one of these is someone's HOME, not an install."""

_MAX_LINKS = 40  # as the kernel's own bound on links followed in one path


def needs(directory: str, install: bool, untrusted: list[str]) -> list[str]:
    """What ``directory`` (absolute, normalised) brings back: itself, where its links lead,
    with ``install`` (a ``bin``) the rest of its install, and the ``~/.local/share`` folder
    it lies in; nothing where the way to it enters ``untrusted``."""
    roots = [os.path.realpath(root) for root in untrusted]
    if enters(directory, roots):
        return []
    found = [directory, *linked(directory, roots)]
    if install:
        found += members(os.path.dirname(directory), roots)
    found += _local_share(directory)
    return list(dict.fromkeys(found))


def members(prefix: str, roots: list[str]) -> list[str]:
    """The parts of the install ``prefix`` that come back (see the module's doc); none
    where it is someone's HOME or its way enters ``roots``."""
    if prefix == "/" or is_home(prefix) or enters(prefix, roots):
        return []
    try:
        names = sorted(os.listdir(prefix))
    except OSError:
        return []
    real_prefix = os.path.realpath(prefix)
    local = os.path.basename(prefix) == ".local"
    kept = []
    for name in names:
        path = os.path.join(prefix, name)
        if not _shown(name) or _credential(name) or (local and name in LOCAL_DATA):
            continue
        if os.path.islink(path) and not _within(os.path.realpath(path), real_prefix):
            continue  # a link out of the install: not the install's own
        if os.path.isdir(path) or name in FILES_KEPT:
            kept.append(path)
    return kept


def linked(directory: str, roots: list[str]) -> list[str]:
    """Where the links in ``directory`` lead, outside it (see the module's doc); none of a
    link whose way enters ``roots``."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    here = os.path.realpath(directory)
    led: list[str] = []
    for name in names:
        entry = os.path.join(directory, name)
        if not _shown(name) or not os.path.islink(entry) or enters(entry, roots):
            continue
        target = os.path.realpath(entry)
        parent = os.path.dirname(target)
        if parent == here or not _shown(target) or not os.path.exists(target):
            continue
        led += _install_of(target, roots, here)
    return list(dict.fromkeys(led))


def _install_of(target: str, roots: list[str], here: str) -> list[str]:
    """What a link out of ``here`` (a PATH directory, real) to ``target`` brings."""
    parts = target.split("/")
    parent = os.path.dirname(target)
    if "node_modules" in parts:
        top = "/".join(parts[: parts.index("node_modules") + 1])
        return [top] if _plausible(top) else [target]
    if os.path.basename(parent) == "bin":
        install = os.path.dirname(parent)
        if os.path.isfile(os.path.join(install, "pyvenv.cfg")) and _plausible(install):
            return [install, *venv_base(install, roots)]
        return [parent, *members(install, roots)]
    around = os.path.dirname(here)  # the install of the PATH directory itself
    local_data = os.path.basename(parent) in LOCAL_DATA and parent.endswith(
        "/.local/" + os.path.basename(parent)
    )
    if _plausible(parent) and not _within(here, parent) and parent != around and not local_data:
        return [parent]  # its folder (pyenv's libexec), not an install's whole folder
    return [target]


def venv_base(venv: str, roots: list[str]) -> list[str]:
    """The install of the Python ``venv`` was made from (its ``pyvenv.cfg``'s ``home``, a
    ``bin``)."""
    config = os.path.join(venv, "pyvenv.cfg")
    if enters(config, roots):
        return []
    try:
        with open(config, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(65536).splitlines()
    except OSError:
        return []
    for line in lines:
        key, _, value = line.partition("=")
        value = value.strip()
        if key.strip() != "home" or not os.path.isabs(value) or enters(value, roots):
            continue
        where = os.path.realpath(value)
        if os.path.basename(where) != "bin" or not _shown(where):
            return []
        return [where, *members(os.path.dirname(where), roots)]
    return []


def is_home(path: str) -> bool:
    """Whether ``path`` is a HOME: a user's (the passwd database), one right under
    ``/home``, ``/root``, or any folder holding one of :data:`HOME_MARKS`."""
    homes = {"/root", os.path.expanduser("~")}
    with contextlib.suppress(OSError):
        homes.update(user.pw_dir for user in pwd.getpwall() if user.pw_dir not in ("", "/"))
    real = os.path.realpath(path)
    if path in homes or real in {os.path.realpath(h) for h in homes}:
        return True
    if os.path.dirname(path) == "/home":
        return True
    return any(os.path.lexists(os.path.join(path, mark)) for mark in HOME_MARKS)


def enters(path: str, roots: list[str]) -> bool:
    """Whether the way to ``path``, its symlinks followed as the kernel follows them,
    passes through one of ``roots`` (real paths); a loop counts as entering."""
    if not roots:
        return False
    todo = [part for part in path.split("/") if part not in ("", ".")]
    at, links = "/", 0
    while todo:
        name = todo.pop(0)
        if name == "..":
            at = os.path.dirname(at)
            continue
        step = os.path.join(at, name)
        try:
            target = os.readlink(step)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
                return True  # cannot tell where it leads: never followed
            at = step
            if any(_within(at, root) for root in roots):
                return True
            continue
        links += 1
        if links > _MAX_LINKS:
            return True
        if target.startswith("/"):
            at = "/"
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return any(_within(at, root) for root in roots)


def _local_share(directory: str) -> list[str]:
    """``~/.local/share/TOOL`` for a PATH directory inside it (mise's shims, its installs)."""
    parts = directory.split("/")
    for at in range(1, len(parts) - 2):
        if parts[at] == ".local" and parts[at + 1] == "share":
            tool = "/".join(parts[: at + 3])
            return [tool] if _plausible(tool) and tool != directory else []
    return []


def _plausible(path: str) -> bool:
    """Whether ``path`` may come back whole: no HOME, no part named like a credential."""
    if path in ("", "/") or is_home(path):
        return False
    return not any(_credential(part) for part in path.split("/") if part)


def _credential(name: str) -> bool:
    return any(fnmatch.fnmatch(name.lower(), pattern) for pattern in CREDENTIALS)


def _shown(text: str) -> bool:
    """A name that can be told as it is (not undecodable bytes, no control characters)."""
    return text.isprintable()


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def main(request: str) -> str:
    """The answer to ``request`` (JSON: ``{"dirs": [[directory, install], …], "untrusted":
    […]}``), as JSON: each directory's :func:`needs`, in order."""
    asked = json.loads(request)
    untrusted = [str(p) for p in asked.get("untrusted", [])]
    dirs = asked.get("dirs", [])
    return json.dumps([needs(str(d), bool(install), untrusted) for d, install in dirs])


if __name__ == "__main__":
    sys.stdout.write(main(sys.argv[1]))
