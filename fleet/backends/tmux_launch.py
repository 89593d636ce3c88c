"""Become an agent's process inside a tmux pane — standalone, standard library only.

The tmux backend starts ``python -I -S tmux_launch.py SPEC`` as a pane's process. SPEC is
a JSON file (mode 0600, in the run directory) that the backend wrote::

    {"argv": [...], "env": {...}, "inherit": ["TERM"], "cwd": "...", "run_dir": "..."}

The launcher reads it, deletes it, changes to ``cwd`` and replaces itself (``execve``:
same pid, so still the pane's session leader) with ``argv`` under exactly ``env``, plus
the variables named in ``inherit`` that tmux gave the pane (the terminal type).

Why a file and not tmux's own arguments: tmux reparses its command line (an argument
ending in ``;`` ends the tmux command, ``-c`` is format-expanded, ``-e`` values show up
in ``ps``); the prompt and secrets never pass through it this way. If the launch fails,
``RUN_DIR/exit.json`` says why, in the shim's format.
"""

from __future__ import annotations

import json
import os
import sys


def _fail(run_dir: str | None, reason: str) -> int:
    sys.stderr.write(f"fleetwarden: {reason}\n")
    if run_dir:
        tmp = os.path.join(run_dir, "exit.json.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"exit_code": 127, "reason": reason}))
            os.replace(tmp, os.path.join(run_dir, "exit.json"))
        except OSError:
            pass
    return 127


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: tmux_launch.py SPEC\n")
        return 125
    try:
        with open(argv[0], encoding="utf-8") as fh:
            spec = json.load(fh)
        os.unlink(argv[0])
    except (OSError, ValueError) as exc:
        return _fail(None, f"cannot read the launch spec {argv[0]}: {exc}")
    run_dir = spec["run_dir"]
    env = dict(spec["env"])
    for key in spec["inherit"]:
        if key not in env and key in os.environ:
            env[key] = os.environ[key]
    try:
        os.chdir(spec["cwd"])
    except OSError as exc:
        return _fail(run_dir, f"cannot change to directory {spec['cwd']}: {exc.strerror}")
    command = spec["argv"]
    try:
        os.execvpe(command[0], command, env)
    except OSError as exc:
        return _fail(run_dir, f"could not start: {command[0]}: {exc.strerror}")
    return 127  # not reached: execvpe returns only by raising


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
