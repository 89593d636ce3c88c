"""An agent that names things as a hostile one would — standalone, standard library only,
run by the ``command`` runtime: model names it sends through the metering proxy, tool
names and subjects it asks the operator about through the ask door.

Each line on its standard input is one of::

    model JSON      one streamed request to ANTHROPIC_BASE_URL, the model named JSON (a
                    string); prints ``MODEL <status>``
    flood N         N requests one after another, each with a fresh model name; prints
                    ``FLOOD <status>=<count> …``
    ask JSON        an ask's body (``{"id", "tool", "subject"}``) posted once to the ask
                    door (``/approval/<agent>``), not waited on; prints ``ASKED <id> <status>``

In any JSON, a string ``${NAME}`` is the value of the agent's variable NAME: the agent
sends its own ``secret_env`` value, as a leaking agent would. Prints ``naming agent
ready`` first; ends on ``exit``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections import Counter

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _filled(value: object) -> object:
    """``value`` with each ``${NAME}`` string replaced by the variable's value."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return os.environ.get(value[2:-1], "")
    if isinstance(value, dict):
        return {key: _filled(item) for key, item in value.items()}
    return value


def _post(url: str, body: object, headers: dict[str, str], timeout: float = 60) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    for name, value in {"Content-Type": "application/json", **headers}.items():
        request.add_header(name, value)
    try:
        with _OPENER.open(request, timeout=timeout) as reply:
            reply.read()
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
    except OSError:
        return 0


def _ask_model(model: object) -> int:
    base = os.environ.get("ANTHROPIC_BASE_URL", "").rstrip("/")
    body = {
        "model": model,
        "max_tokens": 16,
        "stream": True,
        "messages": [{"role": "user", "content": "name it"}],
    }
    headers = {
        "anthropic-version": "2023-06-01",
        "x-api-key": os.environ.get("ANTHROPIC_API_KEY", "none"),
    }
    return _post(base + "/v1/messages", body, headers)


def _ask_operator(body: object) -> int:
    beat = os.environ.get("FLEETWARDEN_HEARTBEAT_URL", "")
    token = os.environ.get("FLEETWARDEN_HEARTBEAT_TOKEN", "")
    door = beat.replace("/heartbeat/", "/approval/")
    # The door holds an open ask up to 25 s before saying 202: a short wait is enough to
    # know it was taken (a timeout here is a 0).
    return _post(door, body, {"X-Fleetwarden-Token": token}, timeout=2)


def main() -> None:
    print("naming agent ready", flush=True)
    for raw in sys.stdin:
        line = raw.strip()
        word, _, rest = line.partition(" ")
        if word == "exit":
            print("bye", flush=True)
            return
        if word == "model":
            print(f"MODEL {_ask_model(_filled(json.loads(rest)))}", flush=True)
        elif word == "flood":
            counted = Counter(
                _ask_model(f"fresh-{n}-{secrets.token_hex(4)}") for n in range(int(rest))
            )
            said = " ".join(f"{status}={n}" for status, n in sorted(counted.items()))
            print(f"FLOOD {said}", flush=True)
        elif word == "ask":
            body = _filled(json.loads(rest))
            native = body.get("id") if isinstance(body, dict) else None
            print(f"ASKED {native} {_ask_operator(body)}", flush=True)


if __name__ == "__main__":
    main()
