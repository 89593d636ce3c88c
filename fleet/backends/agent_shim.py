"""Run one agent and write down how it ended — standalone, standard library only.

The subprocess backend starts this shim (``python -I agent_shim.py RUN_DIR -- argv…``)
as the leader of a new session, so the agent and everything it forks share one
process group. The shim:

* writes ``RUN_DIR/agent.pid`` with the agent's pid once it is running;
* waits for the agent, then writes ``RUN_DIR/exit.json`` (atomically) with its exit
  status, so the status survives a restart of Fleetwarden, which may no longer be
  our parent when the agent ends;
* on the agent's exit, terminates whatever the agent left behind in the group
  (like a service manager's control-group kill), then exits with the agent's status.

It ignores SIGTERM/SIGINT/SIGHUP itself: those reach the whole group anyway, and the
shim must live to record the agent's status. SIGKILL of the group ends it too; the
backend then reports the status it reaped, or "unknown".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time


def _write_atomic(path: str, text: str) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _reap_group_leftovers(grace: float) -> None:
    """Terminate the rest of our process group (the agent's orphans), then kill stragglers."""
    pgid = os.getpgid(0)
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _group_has_others(pgid):
            return
        time.sleep(0.05)
    for pid in _group_members(pgid):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        # Fields after the parenthesised command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _group_has_others(pgid: int) -> bool:
    me = os.getpid()
    return any(pid != me for pid in _group_members(pgid))


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: agent_shim.py RUN_DIR -- ARGV...\n")
        return 125
    run_dir, command = argv[0], argv[2:]
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        # The agent gets default signal dispositions back (SIG_IGN would be inherited).
        child = subprocess.Popen(command, restore_signals=True, preexec_fn=_default_signals)
    except OSError as exc:
        sys.stderr.write(f"fleetwarden: cannot start {command[0]!r}: {exc.strerror}\n")
        _write_atomic(
            os.path.join(run_dir, "exit.json"),
            json.dumps({"exit_code": 127, "reason": f"could not start: {exc.strerror}"}),
        )
        return 127
    _write_atomic(os.path.join(run_dir, "agent.pid"), str(child.pid))
    code = child.wait()
    reason = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
    _write_atomic(
        os.path.join(run_dir, "exit.json"), json.dumps({"exit_code": code, "reason": reason})
    )
    _reap_group_leftovers(grace=2.0)
    return code if code >= 0 else 128 - code


def _default_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
