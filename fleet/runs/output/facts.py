"""What the run keeper finds out around a run: whether it can start at all (the CLI is
installed, the directory exists, there is a credential) and what its output says of how
it went. (The git HEAD of its directory is read by :mod:`fleet.sandbox.git.git_probe`.)"""

from __future__ import annotations

import os
import shutil
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Final

from fleet.accounts.model import CREDENTIAL_VARS, RUNTIME_PROVIDERS, key_vars_of
from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, LaunchPlan
from fleet.transcript.events import Marker, Oversized, StreamParser
from fleet.transcript.story import RunReading

# Where each CLI comes from, for the message when it is missing.
NPM_PACKAGES: Final[Mapping[str, str]] = {
    "claude": "@anthropic-ai/claude-code",
    "codex": "@openai/codex",
    "pi": "@mariozechner/pi-coding-agent",
    "opencode": "opencode-ai",
}
READ_CAP: Final = 8 * 1024 * 1024  # of a run's output read for its summary: its end
_LINE_CAP: Final = 1024 * 1024  # a longer line is not parsed, only counted


def check_launchable(
    spec: AgentSpec,
    plan: LaunchPlan,
    *,
    accounts: Mapping[str, object],
    environ: Mapping[str, str],
    remote_tools: Collection[str] | None = None,
    offline: Collection[str] = (),
) -> None:
    """Refuse a launch that cannot work, in one line naming the fix: its program is not
    installed, its directory is gone, or its CLI has no credential at all (nor the offline
    provider answering its provider: ``offline``). On another host
    (``remote_tools``: the agent CLIs its last probe found there; its directories are made
    at launch), only the CLI and the credential are checked."""
    if remote_tools is not None:
        program = plan.argv[0]
        if program in _CLI_NAMES and program not in remote_tools:
            raise LaunchFailed(
                f"{spec.name} cannot start: host {spec.host} has no {program} — install "
                f"it there (`npm install -g {NPM_PACKAGES.get(spec.runtime, program)}`), "
                "then `hosts` shows it"
            )
    elif not plan.cwd.is_dir():
        raise LaunchFailed(
            f"{spec.name} cannot start: its workdir {plan.cwd} does not exist — create it, "
            "or give the agent another with --workdir or in its roster entry"
        )
    program = plan.argv[0]
    if remote_tools is None and _find(program, plan.env.get("PATH", "")) is None:
        package = NPM_PACKAGES.get(spec.runtime)
        fix = (
            f"install it with `npm install -g {package}`"
            if package is not None
            else "install it, or fix the agent's argv"
        )
        raise LaunchFailed(
            f"{spec.name} cannot start: {program} is not installed (not on its PATH) — {fix}"
        )
    providers = RUNTIME_PROVIDERS.get(spec.runtime)
    if providers is None or any(p in accounts or p in offline for p in providers):
        return  # an account's credential, or the offline stand-in (``offline``), answers it
    named = set(key_vars_of(spec.runtime, spec.secret_env)) | (
        CREDENTIAL_VARS & set(spec.secret_env)
    )
    if not any(environ.get(variable) for variable in named):
        raise LaunchFailed(
            f"{spec.name} cannot start: {spec.runtime} has no credentials — add an account "
            f"for {' or '.join(providers)} (see docs/accounts.md) and start it again"
        )


_CLI_NAMES = frozenset({"claude", "codex", "pi", "opencode"})


def _find(program: str, path: str) -> str | None:
    if os.sep in program:
        return program if os.access(program, os.X_OK) and Path(program).is_file() else None
    return shutil.which(program, path=path or None)


def read_run(log: Path, offset: int, parser: StreamParser, marker: str) -> RunReading:
    """What one run wrote after ``offset`` in ``log``, read as events into a
    :class:`RunReading` (its last :data:`READ_CAP` bytes at most). Blocking: run it in a
    worker thread."""
    reading = RunReading()
    try:
        with open(log, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            start = max(offset, end - READ_CAP)
            fh.seek(start)
            data = fh.read(end - start)
    except FileNotFoundError:
        return reading
    if start > offset:  # the cut's first line is partial
        data = data[data.find(b"\n") + 1 :]
    for raw in data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if len(raw) > _LINE_CAP:
            reading.add(Oversized(raw[:200].decode("utf-8", errors="replace"), len(raw)))
            continue
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(marker):
            reading.add(Marker(line))
            continue
        for event in parser.feed(line):
            reading.add(event)
    return reading
