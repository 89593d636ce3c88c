"""What a directory on an agent's PATH brings back into its sandbox where a hidden path
covers it: itself; where the links in it lead (an npm package's outermost
``node_modules``; a pipx or uv tool's venv, with the Python it was made from; else the
target's own directory); and, for a ``bin``, the rest of its install (``~/.cargo/bin``
brings ``~/.cargo``) but for the install's data and credentials (:data:`KEPT_OUT`) —
nothing of it where the folder around the ``bin`` is someone's HOME (``~/bin``).

Standard library only, no ``fleet`` import, Python 3.7's syntax: an SSH host's sandbox asks
its host the same question by running this very file there (``python3 -I -S -c SOURCE
REQUEST``, :func:`fleet.hosts.sandbox.path_needs`), which prints the answer as JSON.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import pwd
import sys

KEPT_OUT = (
    "share",
    "state",
    "etc",
    "var",
    "credentials",
    "credentials.*",
    ".credentials*",
    "auth.json",
    "*token*",
    "*secret*",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "*.pem",
    "*.key",
    "id_*",
)
"""What an install's folder never brings back with it (names, glob patterns, any case):
its data and configuration (``~/.local/share`` and ``state`` are every application's data,
logins among them; ``etc`` holds an ``npmrc`` with its token) and its credential files
(``~/.cargo/credentials.toml``)."""

HOME_MARKS = (".ssh", ".gnupg", ".config", ".profile", ".bashrc")
"""What only a HOME holds: a folder with one of these is someone's HOME, not an install."""


def needs(directory: str, install: bool) -> list[str]:
    """What ``directory`` (absolute, normalised) brings back: itself, where its links
    lead, and with ``install`` (a ``bin``) the rest of the install around it."""
    found = [directory, *linked(directory)]
    if install:
        found += members(os.path.dirname(directory))
    return list(dict.fromkeys(found))


def members(prefix: str) -> list[str]:
    """The members of ``prefix`` but :data:`KEPT_OUT`; none where it is someone's HOME."""
    if is_home(prefix):
        return []
    try:
        names = sorted(os.listdir(prefix))
    except OSError:
        return []
    kept = [n for n in names if not any(fnmatch.fnmatch(n.lower(), k) for k in KEPT_OUT)]
    return [os.path.join(prefix, name) for name in kept]


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


def linked(directory: str) -> list[str]:
    """Where the links in ``directory`` lead, outside it: the install each points into."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    here = os.path.realpath(directory)
    led: list[str] = []
    for name in names:
        entry = os.path.join(directory, name)
        if not os.path.islink(entry):
            continue
        target = os.path.realpath(entry)
        parent = os.path.dirname(target)
        if parent == here:
            continue
        parts = target.split("/")
        venv = os.path.dirname(parent)
        if "node_modules" in parts:
            led.append("/".join(parts[: parts.index("node_modules") + 1]) or "/")
        elif os.path.basename(parent) == "bin" and os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
            led += [venv, *venv_base(venv)]
        else:
            led.append(parent)
    return list(dict.fromkeys(led))


def venv_base(venv: str) -> list[str]:
    """The install of the Python ``venv`` was made from (its ``pyvenv.cfg``'s ``home``)."""
    try:
        with open(os.path.join(venv, "pyvenv.cfg"), encoding="utf-8", errors="replace") as fh:
            lines = fh.read(65536).splitlines()
    except OSError:
        return []
    for line in lines:
        key, _, value = line.partition("=")
        value = value.strip()
        if key.strip() == "home" and os.path.isabs(value):
            where = os.path.realpath(value)
            if os.path.basename(where) == "bin":
                return [where, *members(os.path.dirname(where))]
            return [where]
    return []


def main(request: str) -> str:
    """The answer to ``request`` (JSON: a list of ``[directory, install]``), as JSON: each
    directory's :func:`needs`, in order."""
    asked = json.loads(request)
    return json.dumps([needs(str(directory), bool(install)) for directory, install in asked])


if __name__ == "__main__":
    sys.stdout.write(main(sys.argv[1]))
