"""What runs first inside an agent's sandbox — standalone, standard library only.

bubblewrap starts ``python -I -S forwarder.py [--door PORT=SOCKET]... -- ARGV...`` as the
sandbox's first command. It gives the agent back the default handling of SIGTERM, SIGINT
and SIGHUP (the shim outside ignores them, and bubblewrap passes that on), then:

* without doors (open egress), it simply becomes the agent (``execvp``: same pid);
* with doors (locked egress: the sandbox has its own network namespace), it listens on
  ``127.0.0.1:PORT`` for each door *before* the agent starts, so the URLs the agent was
  given keep working unchanged, and pipes each connection to the Unix socket ``SOCKET``
  that Fleetwarden serves outside (bind-mounted into the sandbox). It starts the agent as
  its child, passes SIGTERM, SIGINT and SIGHUP sent to itself on to it (its pid is the one
  Fleetwarden records), keeps forwarding while the agent runs, and exits with the agent's
  status.
  Everything else in the namespace ends with it.

A door whose socket is gone (``egress block``) refuses connections: the agent sees a
closed connection, never a way around it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading

_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_CHUNK = 64 * 1024


def _default_signals() -> None:
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while True:
            data = source.recv(_CHUNK)
            if not data:
                break
            target.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((target, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


def _serve_one(client: socket.socket, path: str) -> None:
    door = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        door.connect(path)
    except OSError:
        client.close()
        door.close()
        return
    back = threading.Thread(target=_pipe, args=(door, client), daemon=True)
    back.start()
    _pipe(client, door)
    back.join()
    client.close()
    door.close()


def _accept_loop(listener: socket.socket, path: str) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_serve_one, args=(client, path), daemon=True).start()


def _listen(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    listener.set_inheritable(False)
    return listener


def _pass_on(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def parse(argv: list[str]) -> tuple[list[tuple[int, str]], list[str]]:
    """The doors (port, socket path) and the agent's argv, from our command line."""
    doors: list[tuple[int, str]] = []
    index = 0
    while index < len(argv) and argv[index] != "--":
        if argv[index] != "--door" or index + 1 >= len(argv):
            raise ValueError(f"unexpected argument {argv[index]!r}")
        port, _, path = argv[index + 1].partition("=")
        doors.append((int(port), path))
        index += 2
    command = argv[index + 1 :]
    if not command:
        raise ValueError("no command after --")
    return doors, command


def main(argv: list[str]) -> int:
    try:
        doors, command = parse(argv)
    except ValueError as exc:
        sys.stderr.write(f"usage: forwarder.py [--door PORT=SOCKET]... -- ARGV... ({exc})\n")
        return 125
    if not doors:
        _default_signals()
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            sys.stderr.write(f"fleetwarden: cannot start {command[0]!r}: {exc.strerror}\n")
            return 127
    listeners = [(_listen(port), path) for port, path in doors]
    pid = os.fork()
    if pid == 0:
        _default_signals()
        try:
            os.execvp(command[0], command)
        except OSError as exc:
            sys.stderr.write(f"fleetwarden: cannot start {command[0]!r}: {exc.strerror}\n")
        os._exit(127)
    for signum in _SIGNALS:  # `kill <pid>` of the agent as ps shows it reaches the agent
        signal.signal(signum, lambda received, _frame: _pass_on(pid, received))
    # Out of the process group the agent stays in: a stop signals that whole group, and the
    # agent must get it once, not a second time passed on from here.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    for listener, path in listeners:
        threading.Thread(target=_accept_loop, args=(listener, path), daemon=True).start()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
