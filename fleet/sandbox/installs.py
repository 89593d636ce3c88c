"""What a directory on an agent's PATH brings back into its sandbox where a hidden path
covers it: itself; where the links in it lead; and, for a ``bin``, the rest of its install
(``~/.cargo/bin`` brings ``~/.cargo``; ``shims`` counts as a ``bin``) — its folders but
dot-folders and those named like credentials (:data:`CREDENTIALS`), and of its files only
the few a tool reads to run
(:data:`FILES_KEPT`; ``~/.cargo/credentials.toml``, ``~/.fly/config.yml`` stay out). In
``~/.local`` the folders of every application's data stay out too (:data:`LOCAL_DATA`:
``share``, ``state``), but for the one a PATH directory lies in (``~/.local/share/mise``
for ``~/.local/share/mise/shims``). Nothing comes of a folder that is someone's HOME
(``~/bin`` brings itself alone), and nothing is reached through a place an agent may write
(``untrusted``: its workdir, another agent's, the state dir): a link or a ``pyvenv.cfg``
there is the agent's choice, never a reason to bind anything.

A link leads to: the outermost ``node_modules`` it points into (an npm CLI); a Python venv
whole, with the install of the Python it was made from (a pipx or uv tool); the ``bin`` it
points into, with the install around it where that folder is one (:data:`INSTALL_MARKS`);
a folder of the PATH directory's own install it points into (pyenv's ``libexec``); else
the plain file it points at, alone — or nothing, where a credential's name or a HOME is
on the way to it (``~/.local/bin/k -> ~/.ssh/id_ed25519``).

Standard library only, no ``fleet`` import, Python 3.7's syntax: an SSH host's sandbox asks
its host the same question by running this very file there (``python3 -I -S -c SOURCE
< REQUEST``, :func:`fleet.hosts.sandbox.path_needs`), which prints the answer as JSON.
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

FILES_KEPT = (
    *("version", "VERSION", "go.env", "release", "pyvenv.cfg", "env", "package.json"),
    *(".crates.toml", ".crates2.json", "layout.v4"),
)
"""The files at the top of an install that come back with it (pyenv's ``version``, Go's
``VERSION`` and ``go.env``, a JDK's ``release``, a venv's ``pyvenv.cfg``, cargo's ``env``
and install records, Volta's layout); any other file there stays out."""

INSTALL_MARKS = ("lib", "lib64", "libexec", "share", "include", "pyvenv.cfg", "Cellar")
"""What a folder around a ``bin`` a link points into holds when it is an install (rather
than a project with a ``bin`` in it, whose ``.git`` and ``config`` are no install's)."""

LOCAL_DATA = ("share", "state", "etc", "var")
"""The folders of ``~/.local`` (the XDG data and state homes) that never come back whole."""

BINS = ("bin", "shims")
"""A PATH directory of these names brings the rest of its install (pyenv's, rbenv's shims)."""

HOME_MARKS = (".ssh", ".gnupg", ".config", ".profile", ".bashrc")
"""What only a HOME holds: a folder with one of these is someone's HOME, not an install."""

_MAX_LINKS = 40  # as the kernel's own bound on links followed in one path


def needs(directory: str, install: bool, untrusted: list[str]) -> list[str]:
    """What ``directory`` (absolute, normalised) brings back: itself, where its links lead,
    with ``install`` (a ``bin``) the rest of its install, and the ``~/.local/share`` folder
    it lies in; nothing where the way to it enters ``untrusted``."""
    roots = [os.path.realpath(root) for root in untrusted]
    _HOMES.clear()  # the passwd database read once for this answer
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
    real_prefix = os.path.realpath(prefix)
    if real_prefix == "/" or is_home(prefix) or enters(prefix, roots):
        return []
    try:
        names = sorted(os.listdir(real_prefix))
    except OSError:
        return []
    local = os.path.basename(real_prefix) == ".local"
    kept = []
    for name in names:
        path = os.path.join(real_prefix, name)
        if not _shown(name) or _credential(name) or (local and name in LOCAL_DATA):
            continue
        real = os.path.realpath(path)
        if real == real_prefix or not _within(real, real_prefix) or enters(path, roots):
            continue  # a link out of the install (or to all of it): not the install's own
        folder = os.path.isdir(path) and not name.startswith(".") and not is_home(real)
        if folder or (name in FILES_KEPT and os.path.isfile(path)):
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
    if "node_modules" in parts:  # Yarn's global packages live in ~/.config/yarn/global
        top = "/".join(parts[: parts.index("node_modules") + 1])
        return [top] if plausible(top, allow=(".config",)) else _file(target)
    if os.path.basename(parent) == "bin":
        install = os.path.dirname(parent)
        if os.path.isfile(os.path.join(install, "pyvenv.cfg")) and plausible(install):
            return [install, *venv_base(install, roots)]
        if not plausible(parent):
            return _file(target)
        if any(os.path.exists(os.path.join(install, mark)) for mark in INSTALL_MARKS):
            return [parent, *members(install, roots)]
        return [parent]
    around = os.path.dirname(here)  # the install of the PATH directory itself
    same = _within(parent, around) and parent != around and not _within(here, parent)
    if same and plausible(parent) and os.path.basename(around) != ".local":
        return [parent]  # a folder of the same install (pyenv's libexec)
    return _file(target)


def _file(target: str) -> list[str]:
    """``target`` alone, where it is a plain file no credential's name is on the way to."""
    return [target] if os.path.isfile(target) and plausible(target) else []


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


_HOMES: list[set[str]] = []


def is_home(path: str) -> bool:
    """Whether ``path`` is a HOME: a user's (the passwd database), one right under
    ``/home``, ``/root``, or any folder holding one of :data:`HOME_MARKS`."""
    if not _HOMES:
        homes = {"/root", os.path.expanduser("~")}
        with contextlib.suppress(OSError):
            homes.update(u.pw_dir for u in pwd.getpwall() if u.pw_dir not in ("", "/"))
        _HOMES.append(homes | {os.path.realpath(h) for h in homes})
    real = os.path.realpath(path)
    if path in _HOMES[0] or real in _HOMES[0]:
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
            return [tool] if plausible(tool) and tool != directory else []
    return []


def plausible(path: str, allow: tuple[str, ...] = ()) -> bool:
    """Whether ``path`` may come back whole: no HOME, no part named like a credential (but
    those ``allow`` names)."""
    if path in ("", "/") or is_home(path):
        return False
    return not any(_credential(p) for p in path.split("/") if p and p not in allow)


def _credential(name: str) -> bool:
    return any(fnmatch.fnmatch(name.lower(), pattern) for pattern in CREDENTIALS)


def _shown(text: str) -> bool:
    """A name that can be told as it is (not undecodable bytes, no control characters)."""
    return text.isprintable()


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def main(request: str) -> str:
    """The answer to ``request`` (JSON, on standard input: ``{"dirs": [[directory,
    install], …], "untrusted": […]}``), as JSON: each directory's :func:`needs`, in order."""
    asked = json.loads(request)
    untrusted = [str(p) for p in asked.get("untrusted", [])]
    dirs = asked.get("dirs", [])
    return json.dumps([needs(str(d), bool(install), untrusted) for d, install in dirs])


if __name__ == "__main__":
    sys.stdout.write(main(sys.stdin.read()))
