"""An agent that asks the operator whatever it is told to, through the ask door — standalone,
standard library only, run by the ``command`` runtime.

Each line on its standard input is the JSON body of one ask (``{"id", "tool", "subject",
"detail"?, "pattern"?}``), or ``flood N PREFIX`` (N asks at once, ids and commands
``PREFIX0…``), or ``withdraw ID`` (the ask ``ID`` is no longer waited for). Every ask is
posted from a thread of its own to ``/approval/<agent>`` (the heartbeat URL's sibling) with
the agent's token and polled until decided; the agent then prints one line::

    ANSWER <id> <allow|deny|error> <message>

so a test reads from the agent's log what the operator's answer let it do.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import urllib.error
import urllib.request


def _door() -> tuple[str, str]:
    beat = os.environ.get("FLEETWARDEN_HEARTBEAT_URL", "")
    return beat.replace("/heartbeat/", "/approval/"), os.environ.get(
        "FLEETWARDEN_HEARTBEAT_TOKEN", ""
    )


def _call(method: str, url: str, token: str, body: bytes | None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("X-Fleetwarden-Token", token)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            raw = reply.read()
            return reply.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else {}
        except ValueError:
            return exc.code, {}


def _ask(body: bytes) -> None:
    url, token = _door()
    native = str(json.loads(body).get("id"))
    try:
        status, reply = _call("POST", url, token, body)
        while status == 202:
            status, reply = _call("GET", f"{url}/{reply['id']}", token, None)
    except (OSError, ValueError, KeyError) as exc:
        print(f"ANSWER {native} error {exc}", flush=True)
        return
    decision = reply.get("decision") if status == 200 else "error"
    message = " ".join(str(reply.get("message") or reply.get("error") or "").split())
    print(f"ANSWER {native} {decision} {message}", flush=True)


def _withdraw(native: str) -> None:
    url, token = _door()
    body = json.dumps({"id": native, "tool": "Bash"}).encode()
    status, _ = _call("DELETE", url, token, body)
    print(f"WITHDRAWN {native} {status}", flush=True)


def main() -> None:
    print("asking agent ready", flush=True)
    for line in sys.stdin:
        line = line.strip()
        if line.startswith("flood "):
            _, count, prefix = line.split()
            for n in range(int(count)):
                body = json.dumps({"id": f"{prefix}{n}", "tool": "Bash", "subject": f"echo {n}"})
                threading.Thread(target=_ask, args=(body.encode(),), daemon=True).start()
        elif line.startswith("withdraw "):
            _withdraw(line.split()[1])
        elif line:
            threading.Thread(target=_ask, args=(line.encode(),), daemon=True).start()


if __name__ == "__main__":
    main()
