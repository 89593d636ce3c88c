"""An agent written to misbehave, for the sandbox tests — standalone, standard library only.

Run by the ``command`` runtime. It reads ``targets.json`` from its working directory (the
test writes it: paths and pids it should not reach) and then, for each line on its
standard input, runs the attack of that name (``all`` runs every file and process one)
and prints one line per attempt::

    RESULT <attack> open <what it got>
    RESULT <attack> denied <the error>

``good`` is what a well-behaved agent does: a heartbeat and a request to its proxy, both
of which must work (an HTTP error answer still counts as reaching the proxy).
"""

from __future__ import annotations

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
