"""An agent written to misbehave, for the sandbox tests — standalone, standard library only.

Run by the ``command`` runtime. It reads ``targets.json`` from its working directory (the
test writes it: paths and pids it should not reach) and then, for each line on its
standard input, runs the attack of that name (``all`` runs every file and process one)
and prints one line per attempt::

    RESULT <attack> open <what it got>
    RESULT <attack> denied <the error>

``identity`` reports who the agent is inside (uid, effective capabilities, uid map); the
``umount_*``, ``remount_root`` and ``new_userns`` attacks try to undo the sandbox itself.

``good`` is what a well-behaved agent does: a heartbeat and a request to its proxy, both
of which must work (an HTTP error answer still counts as reaching the proxy).
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit


def _targets() -> dict[str, object]:
    with open("targets.json", encoding="utf-8") as fh:
        loaded = json.load(fh)
    return loaded if isinstance(loaded, dict) else {}


def _read(path: object) -> str:
    with open(str(path), "rb") as fh:
        return f"{len(fh.read(4096))} bytes"


def _write(path: object) -> str:
    with open(str(path), "w", encoding="utf-8") as fh:
        fh.write("written by a hostile agent\n")
    return f"wrote {path}"


_MS_REMOUNT, _MS_BIND, _MS_RDONLY, _CLONE_NEWUSER = 32, 4096, 1, 0x10000000


def _libc(name: str, *args: object) -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return f"{name} succeeded"


def _umount(path: object) -> str:
    return _libc("umount2", os.fsencode(str(path)), 2)  # MNT_DETACH


def _remount_root() -> str:
    flags = ctypes.c_ulong(_MS_REMOUNT | _MS_BIND)  # read-write: no MS_RDONLY
    return _libc("mount", None, b"/", None, flags, None)


def _identity() -> str:
    with open("/proc/self/status", encoding="ascii") as fh:
        status = dict(line.split(":", 1) for line in fh.read().splitlines() if ":" in line)
    with open("/proc/self/uid_map", encoding="ascii") as fh:
        uid_map = " ".join(fh.read().split())
    return f"uid={os.getuid()} capeff={status['CapEff'].strip()} uid_map={uid_map}"


def _see(pid: object) -> str:
    visible = {int(entry) for entry in os.listdir("/proc") if entry.isdigit()}
    if int(str(pid)) not in visible:
        raise LookupError(f"pid {pid} not among the {len(visible)} visible")
    return f"pid {pid} visible"


def _signal(pid: object) -> str:
    os.kill(int(str(pid)), 0)
    return f"pid {pid} signalled"


def _connect(address: object) -> str:
    host, port = str(address).rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=3):
        return f"connected to {address}"


def _connect_unix(path: object) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        sock.connect(str(path))
        return f"connected to {path}"


def _get(url: str, *, proxy: bool) -> str:
    handlers = [] if proxy else [urllib.request.ProxyHandler({})]
    opener = urllib.request.build_opener(*handlers)
    with opener.open(url, timeout=5) as response:
        return f"http {response.status} {response.read(100)!r}"


def _reach(url: str, *, headers: dict[str, str] | None = None, data: bytes | None = None) -> str:
    """Reaching the server is what counts: an HTTP error answer came from it."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return f"http {response.status}"
    except urllib.error.HTTPError as exc:
        return f"http {exc.code}"


def _good() -> list[tuple[str, Callable[[], str]]]:
    beat_url = os.environ.get("FLEETWARDEN_HEARTBEAT_URL", "")
    token = os.environ.get("FLEETWARDEN_HEARTBEAT_TOKEN", "")
    proxy_url = os.environ.get("ANTHROPIC_BASE_URL", "")
    return [
        (
            "heartbeat",
            lambda: _reach(beat_url, headers={"X-Fleetwarden-Token": token}, data=b"{}"),
        ),
        # The proxy's own answer to a path it does not serve: no upstream is involved.
        ("proxy", lambda: _reach(urlunsplit((*urlsplit(proxy_url)[:2], "/", "", "")))),
    ]


def attacks(targets: dict[str, object]) -> dict[str, Callable[[], str]]:
    pid = targets.get("fleetwarden_pid")
    table: dict[str, Callable[[], str]] = {
        "metering": lambda: _read(targets["metering"]),
        "config": lambda: _read(targets["config"]),
        "operator_key": lambda: _read(targets["operator_key"]),
        "other_home": lambda: _read(targets["other_home"]),
        "other_log": lambda: _read(targets["other_log"]),
        "environ": lambda: _read(f"/proc/{pid}/environ"),
        "see_fleetwarden": lambda: _see(pid),
        "kill_fleetwarden": lambda: _signal(pid),
        "write_outside": lambda: _write(targets["outside"]),
        "host_socket": lambda: _connect_unix(targets["host_socket"]),
        "write_root": lambda: _write(targets["outside_root"]),
    }
    table.update(
        {
            "umount_tmp": lambda: _umount("/tmp"),
            "remount_root": _remount_root,
            "new_userns": lambda: _libc("unshare", _CLONE_NEWUSER),
            "shadow": lambda: _read("/etc/shadow"),
            "identity": _identity,
        }
    )
    if "state_dir" in targets:  # the tmpfs that hides Fleetwarden's state
        table["umount_state"] = lambda: _umount(targets["state_dir"])
    if "root_secret" in targets:  # a root 0600 file outside every hidden path
        table["root_secret"] = lambda: _read(targets["root_secret"])
    if "root_file" in targets:  # a world-readable file under /root
        table["root_file"] = lambda: _read(targets["root_file"])
    if "other_work" in targets:  # a 0600 file in another agent's workdir
        table["other_work"] = lambda: _read(targets["other_work"])
    connect, via_proxy = targets.get("connect"), targets.get("via_proxy")
    for name, address in connect.items() if isinstance(connect, dict) else ():
        table[f"connect_{name}"] = lambda address=address: _connect(address)
    for name, url in via_proxy.items() if isinstance(via_proxy, dict) else ():
        table[f"get_{name}"] = lambda url=url: _get(str(url), proxy=True)
    table["write_home"] = lambda: _write(os.path.join(os.environ["HOME"], "mine.txt"))
    table["write_tmp"] = lambda: _write("/tmp/mine.txt")
    table["write_workdir"] = lambda: _write(os.path.join(os.getcwd(), "mine.txt"))
    table.update(_good())
    return table


def attempt(name: str, action: Callable[[], str]) -> None:
    try:
        print(f"RESULT {name} open {action()}", flush=True)
    except Exception as exc:
        print(f"RESULT {name} denied {type(exc).__name__}: {exc}", flush=True)


def main() -> int:
    print("hostile agent ready", flush=True)
    for line in sys.stdin:
        word = line.strip()
        table = attacks(_targets())
        if word == "all":
            for name, action in table.items():
                if not name.startswith(("connect_", "get_")):
                    attempt(name, action)
        elif word in table:
            attempt(word, table[word])
        elif word:
            print(f"RESULT {word} unknown", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
