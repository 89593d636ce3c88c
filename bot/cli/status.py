"""``fleetwarden status [WHAT] [NAME] [--json]``: the running orchestrator's dashboard API
read from this machine, for people at a terminal and for scripts and cron jobs.

It asks the dashboard through its socket in the state dir, with the status token the
orchestrator makes there at each start (both 0600: whoever may read the state dir may read
the fleet), and sends the token only once the kernel said the socket's listener is the state
dir's owner (:mod:`bot.dashboard.status_door`). Run by another user, with the config's
metrics token in its environment, it asks the dashboard's port instead, and only when the
dashboard serves TLS: the token is sent once the server showed the config's own
certificate. Never to a bare port: whoever listens there first would be sent it.
``--json`` prints the API's answer as it is: its fields are documented in
``docs/dashboard-api.md`` and never renamed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bot.chat.agent_text import escape
from bot.config import Config
from bot.dashboard.settings import DashboardSettings
from bot.dashboard.status_door import (
    STATUS_SOCKET_FILE,
    STATUS_TOKEN_FILE,
    NotTheDashboard,
    PinnedConnection,
    StatusConnection,
)
from bot.render import fleet as render
from connectors.markdown import to_plain
from fleet.redaction.guard import SHORT, guarded
from fleet.redaction.invisible import visible

WHATS = ("fleet", "agent", "budgets", "usage", "accounts", "hosts", "approvals", "audit")
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
_TIMEOUT = 15.0
PROBLEM_CHARS = 500  # characters of an agent's problems, on their one line


def configure_parser(parser: argparse.ArgumentParser, config_help: str) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        default="fleet",
        choices=WHATS,
        help="what to show (default: fleet); `agent NAME` for one agent",
    )
    parser.add_argument("name", nargs="?", help="the agent, with `agent`")
    parser.add_argument("--json", action="store_true", help="print the API's JSON as it is")
    parser.add_argument("--config", type=Path, help=config_help)


class StatusError(Exception):
    """Why the status could not be read: said in one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def main(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    try:
        data = fetch(config, environ, args.what, args.name)
    except StatusError as exc:
        print(shown(f"fleetwarden status: {exc}"), file=sys.stderr)
        return exc.code
    if args.json or args.what != "fleet":
        print(json_text(data))
    else:
        print(shown(fleet_text(data)))
    return EXIT_OK


def fetch(
    config: Config, environ: Mapping[str, str], what: str, name: str | None
) -> dict[str, Any]:
    """The API's answer for ``what`` (and ``name``)."""
    settings = config.dashboard
    if settings is None:
        raise StatusError(
            "the dashboard is off, and status reads its API: add `dashboard: {}` to the "
            "config and restart Fleetwarden",
            EXIT_CONFIG,
        )
    if what == "agent":
        if not name:
            raise StatusError("`status agent` needs the agent's name: status agent NAME", 2)
        path = f"/api/agents/{quote(name, safe='')}"
    elif name:
        raise StatusError(f"`status {what}` takes no name", EXIT_CONFIG)
    else:
        path = f"/api/{what}"
    connection, token, where = _connection(settings, config.state_dir, environ)
    headers = {
        "Host": urlsplit(settings.public_url).netloc,  # a name the dashboard answers to
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
    }
    try:
        connection.request("GET", path, headers=headers)
        reply = connection.getresponse()
        body = reply.read()
    except NotTheDashboard as exc:
        raise StatusError(f"{exc}: that is not Fleetwarden, and it was sent no token") from None
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise StatusError(
            f"cannot reach the dashboard at {where} ({reason}): is `fleetwarden run` running "
            "with this config?"
        ) from None
    finally:
        connection.close()
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if reply.status != 200 or not isinstance(data, dict):
        said = data.get("error") if isinstance(data, dict) else None
        raise StatusError(f"{where} answered {path} with {reply.status}: {said or reply.reason}")
    return data


def _connection(
    settings: DashboardSettings, state_dir: Path, environ: Mapping[str, str]
) -> tuple[http.client.HTTPConnection, str, str]:
    """How to ask, with which token, and where that is (for messages)."""
    try:
        token = (state_dir / STATUS_TOKEN_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        token, unreadable = "", False
    except PermissionError:
        token, unreadable = "", True
    if token:
        return StatusConnection(state_dir, _TIMEOUT), token, str(state_dir / STATUS_SOCKET_FILE)
    metrics = environ.get(settings.metrics_token_env or "", "")
    if metrics and settings.tls is not None:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
        shown = f"[{host}]" if ":" in host else host
        try:
            connection = PinnedConnection(host, settings.port, settings.tls[0], _TIMEOUT)
        except (OSError, ValueError) as exc:
            raise StatusError(
                f"cannot read the dashboard's tls_cert {settings.tls[0]}: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
        return connection, metrics, f"https://{shown}:{settings.port}"
    if unreadable:
        fix = (
            "a metrics token is only sent to a dashboard that proves itself with its tls_cert"
            if metrics
            else "or set the config's metrics_token_env and give the dashboard a tls_cert"
        )
        raise StatusError(
            f"cannot read {state_dir / STATUS_TOKEN_FILE}: run status as the user that runs "
            f"Fleetwarden ({fix})"
        )
    raise StatusError(
        f"no status token in {state_dir}: Fleetwarden has not run with its dashboard on "
        "here yet (start it with `fleetwarden run`)"
    )


def fleet_text(data: Mapping[str, Any]) -> str:
    """The fleet as a table, problems first, as the console shows tables. Each cell is
    text as the server sent it, guarded (:mod:`fleet.redaction.guard`: one line, bounded,
    a hidden character or a terminal's escape shown as its code point) and escaped: a
    model's name drives no terminal and makes no markup."""
    totals = data.get("totals", {})
    head = (
        f"{totals.get('agents', 0)} agents, {totals.get('with_problems', 0)} with problems; "
        f"{totals.get('tokens_today', 0)} tokens and ${totals.get('cost_today_usd', 0):.2f} today"
    )
    rows = [
        [
            _cell(a["name"]),
            _cell(a["host"]),
            _cell(a["state"]),
            "—" if (beat := a.get("heartbeat_age_seconds")) is None else f"{beat:.0f}s",
            _cell(a.get("model") or "—"),
            str(a.get("tokens_today", 0)),
            f"${a.get('cost_today_usd', 0):.2f}",
            _cell("; ".join(a.get("problems", [])) or "—", PROBLEM_CHARS),
        ]
        for a in data.get("agents", [])
    ]
    heads = ("agent", "host", "state", "beat", "model", "tokens", "cost", "problems")
    return to_plain(f"{escape(shown(head))}\n\n{render.table(heads, rows)}")


def _cell(value: object, limit: int = SHORT) -> str:
    return escape(guarded(str(value), visible, limit))


def shown(text: str) -> str:
    """``text`` safe for a terminal: every control character but line feed and tab, and
    every invisible format character (a bidi override, a zero-width space), as
    ``[U+XXXX]`` — nothing the server sent moves the cursor, sets a colour or reorders a
    line."""
    if text.isascii() and _CONTROL.search(text) is None:
        return text
    return "".join(f"[U+{ord(c):04X}]" if _hidden(c) else c for c in text)


def json_text(data: object) -> str:
    """``data`` as indented JSON, every character :func:`shown` would show as a code point
    written as its JSON escape instead (``\\u202e``): the same JSON, safe for a
    terminal."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if text.isascii() and "\x7f" not in text:  # json.dumps escapes the other ASCII controls
        return text
    return "".join(_json_escape(c) if _hidden(c) else c for c in text)


def _hidden(char: str) -> bool:
    return char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cf")


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a surrogate pair, as JSON writes a character past the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
