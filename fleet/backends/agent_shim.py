"""Run one agent and write down how it ended — standalone, standard library only.

The subprocess backend starts this shim (``python -I -S agent_shim.py RUN_DIR -- argv…``)
as the leader of a new session, so the agent and everything it forks share one
process group. The shim:

* with ``--sandbox`` (``agent_shim.py RUN_DIR --sandbox -- bwrap …``), runs bubblewrap
  with ``--info-fd`` and writes ``RUN_DIR/sandbox.json`` with the host pid of the
  sandbox's init process, before ``agent.pid`` (then the host pid of the init's child:
  the agent, or in a locked sandbox the forwarder that runs it); bubblewrap keeps
  SIGTERM/SIGINT/SIGHUP ignored (the first command inside gives the agent the default
  handling back), so a SIGTERM to the group reaches the agent while the sandbox's init
  lives on to report;
* writes ``RUN_DIR/agent.pid`` with the agent's pid once it is running;
* waits for the agent, then writes ``RUN_DIR/exit.json`` (atomically) with its exit
  status, so the status survives a restart of Fleetwarden, which may no longer be
  our parent when the agent ends;
* on the agent's exit, terminates whatever the agent left behind in the group
  (like a service manager's control-group kill), then exits with the agent's status.

With ``--user UID`` (Fleetwarden runs as root: the agent gets a host uid of its own,
:mod:`fleet.sandbox.lanes`), the shim stays root but starts bubblewrap as ``UID`` (gid the
same, no supplementary groups), so bubblewrap makes its user namespace unprivileged and
nothing in the sandbox is root on the host. That user may not be able to walk to what is
bound into the sandbox (its workdir under a 0700 state dir, a CLI under ``/root``): the
shim first moves into a mount namespace of its own, binds each source onto a staging
tmpfs at :data:`STAGING` there, and hands bubblewrap those. ``--rlimit NAME=N`` (e.g.
``NPROC=4096``) caps the sandbox's resources; per uid, ``NPROC`` counts one agent only.
``--cgroup DIR`` puts the shim, and so the whole sandbox, in that control group
(:mod:`fleet.sandbox.host.cgroups`); ``sandbox.json`` lists the groups joined (``cgroups``),
which is where a freeze finds the group to freeze.

It ignores SIGTERM/SIGINT/SIGHUP itself: those reach the whole group anyway, and the
shim must live to record the agent's status. SIGKILL of the group ends it too; the
backend then reports the status it reaped, or "unknown".
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import stat
import subprocess
import sys
import time

STAGING = "/dev/shm"
"""Where, in the shim's own mount namespace, the sources of the sandbox's binds are staged
(a tmpfs over it there: the host's ``/dev/shm`` is untouched, the sandbox has its own)."""
_BINDS = {"--bind", "--ro-bind", "--bind-try", "--ro-bind-try", "--dev-bind", "--dev-bind-try"}
_CLONE_NEWNS, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18


def _libc_call(name: str, *args: object) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str) -> None:
    def raw(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    _libc_call("mount", raw(source), raw(target), raw(fstype), ctypes.c_ulong(flags), raw(data))


def stage_binds(argv: list[str]) -> list[str]:
    """``argv`` (bubblewrap's) with every bind source but ``/`` replaced by a bind of it on
    a staging tmpfs any user can walk to, in a mount namespace of the shim's own; a
    ``-try`` bind whose source is missing is dropped, as bubblewrap would."""
    _libc_call("unshare", _CLONE_NEWNS)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, "")  # nothing leaks to the host
    _mount("fleetwarden-lane", STAGING, "tmpfs", 0, "mode=0711")  # over it, here only
    out = [argv[0]]
    index, count = 1, 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            out += argv[index:]
            break
        if word in _BINDS and index + 2 < len(argv) and argv[index + 1] != "/":
            source, dest = argv[index + 1], argv[index + 2]
            index += 3
            try:
                info = os.stat(source)
            except FileNotFoundError:
                if word.endswith("-try"):
                    continue
                raise
            staged = os.path.join(STAGING, str(count))
            count += 1
            if stat.S_ISDIR(info.st_mode):  # as bubblewrap does, the source's links followed
                os.mkdir(staged, 0o711)
            else:
                os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            _mount(source, staged, None, _MS_BIND | _MS_REC, "")
            out += [word, staged, dest]
            continue
        out.append(word)
        index += 1
    return out


def _set_limits(limits: list[str]) -> None:
    """Join each control group (``cgroup:DIR``: what the shim starts is counted there) and
    set each rlimit (``NAME=N``), both inherited by bubblewrap and the sandbox."""
    for item in limits:
        if item.startswith("cgroup:"):
            with open(os.path.join(item[7:], "cgroup.procs"), "w", encoding="ascii") as fh:
                fh.write(str(os.getpid()))
            continue
        name, _, value = item.partition("=")
        which = getattr(resource, f"RLIMIT_{name}")
        _, hard = resource.getrlimit(which)
        number = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
        resource.setrlimit(which, (number, number))  # only ever lowered: no privilege needed


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


def _start_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return int(fh.read().rsplit(")", 1)[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _read_info(fd: int, timeout: float) -> dict[str, object] | None:
    """bubblewrap's JSON on its info fd, or ``None`` if it ended (or hung) first."""
    data = b""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
        try:
            info = json.loads(data)
        except ValueError:
            continue
        return info if isinstance(info, dict) else None
    return None


def _first_child(pid: int, timeout: float) -> int | None:
    """The first child of ``pid`` (the sandbox's init starts the agent), once it has one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
                children = fh.read().split()
        except OSError:
            return None
        if children:
            return int(children[0])
        time.sleep(0.001)  # the init starts it at once: the spawn's answer waits here
    return None


def _start_sandbox(
    command: list[str], run_dir: str, uid: int | None, groups: list[str]
) -> tuple[subprocess.Popen[bytes], int]:
    """Start bubblewrap (``command``), as ``uid`` if given; record its init process's host
    pid and the control groups joined (``groups``); return it and the host pid of the agent
    (the init's child), or bubblewrap's own when there is none."""
    if uid is not None:
        command = stage_binds(command)
    read_fd, write_fd = os.pipe()
    argv = [command[0], "--info-fd", str(write_fd), *command[1:]]
    user = {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}
    try:
        # No preexec reset: the ignored signals stay ignored in bubblewrap (see above).
        child = subprocess.Popen(argv, pass_fds=(write_fd,), **user)  # type: ignore[call-overload]
    finally:
        os.close(write_fd)
    try:
        info = _read_info(read_fd, timeout=10.0)
    finally:
        os.close(read_fd)
    init_pid = info.get("child-pid") if info else None
    if not isinstance(init_pid, int):
        return child, child.pid
    record = {"init_pid": init_pid, "start_ticks": _start_ticks(init_pid), "cgroups": groups}
    _write_atomic(os.path.join(run_dir, "sandbox.json"), json.dumps(record))
    return child, _first_child(init_pid, timeout=5.0) or child.pid


def _options(argv: list[str]) -> tuple[bool, int | None, list[str], list[str]] | None:
    """``--sandbox``, ``--user UID``, ``--rlimit NAME=N`` and ``--cgroup DIR`` options (the
    last two as ``limits``: ``cgroup:DIR``), then the command."""
    sandbox, uid, limits, index = False, None, [], 0
    while index < len(argv) and argv[index] != "--":
        word = argv[index]
        if word == "--sandbox":
            sandbox, index = True, index + 1
        elif word in ("--user", "--rlimit", "--cgroup") and index + 1 < len(argv):
            value = argv[index + 1]
            if word == "--user":
                uid = int(value)
            else:
                limits.append(f"cgroup:{value}" if word == "--cgroup" else value)
            index += 2
        else:
            return None
    command = argv[index + 1 :]
    return (sandbox, uid, limits, command) if command else None


def main(argv: list[str]) -> int:
    try:
        parsed = _options(argv[1:]) if argv else None
    except ValueError:
        parsed = None
    if parsed is None:
        sys.stderr.write(
            "usage: agent_shim.py RUN_DIR [--sandbox [--user UID] [--rlimit NAME=N]...]"
            " -- ARGV...\n"
        )
        return 125
    run_dir = argv[0]
    sandbox, uid, limits, command = parsed
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        if sandbox:
            _set_limits(limits)
            groups = [item[7:] for item in limits if item.startswith("cgroup:")]
            child, agent_pid = _start_sandbox(command, run_dir, uid, groups)
        else:
            # The agent gets default signal dispositions back (SIG_IGN would be inherited).
            child = subprocess.Popen(command, restore_signals=True, preexec_fn=_default_signals)
            agent_pid = child.pid
    except OSError as exc:
        sys.stderr.write(f"fleetwarden: cannot start {command[0]!r}: {exc.strerror}\n")
        _write_atomic(
            os.path.join(run_dir, "exit.json"),
            json.dumps({"exit_code": 127, "reason": f"could not start: {exc.strerror}"}),
        )
        return 127
    _write_atomic(os.path.join(run_dir, "agent.pid"), str(agent_pid))
    code = child.wait()
    if sandbox and 128 < code <= 128 + 64:
        code = 128 - code  # bubblewrap reports a signal death as 128+N, as a shell would
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
