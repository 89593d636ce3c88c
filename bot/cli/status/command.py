"""``fleetwarden status [WHAT | NAME] [NAME] [--json]``: the running orchestrator's
dashboard API read from this machine, for people at a terminal and for scripts and cron
jobs. ``status tasks`` is the register as tables, ``status changes`` what a merged change
cost as ``report changes`` says it (:mod:`bot.cli.status.tables`); ``status NAME`` (or
``status agent NAME``) is one agent in detail; a name the fleet
does not know is answered with the names it does (:mod:`bot.cli.status.text` lays out
what people read).

It needs none of the config's secrets (a repository's or a forge's token, a webhook
secret): the config is read for its state dir and its ``dashboard:`` section only, and the
secrets are the running orchestrator's business. Run without a config (no ``--config``, no
``FLEETWARDEN_CONFIG``: the embedded default ``bash run.sh`` runs on, which has no
dashboard), ``status`` asks the control socket as below; its other forms say that no
config was read and how to pass it.

It asks the dashboard through its socket in the state dir, with the status token the
orchestrator makes there at each start (both 0600: whoever may read the state dir may read
the fleet), and sends the token only once the kernel said the socket's listener is the state
dir's owner (:mod:`bot.dashboard.access.status_door`). Run by another user, with the config's
metrics token in its environment, it asks the dashboard's port instead, and only when the
dashboard serves TLS: the token is sent once the server showed the config's own
certificate. Never to a bare port: whoever listens there first would be sent it.
``--json`` prints the API's answer as it is: its fields are documented in
``docs/dashboard-api.md`` and never renamed.

With the dashboard off (or no config read), ``status`` and ``status --json`` ask the
orchestrator's control socket for chat's ``ps`` instead (:func:`bot.cli.verbs.shell.fleet_status`;
``--json`` prints its data object, as ``fleetwarden ps --json`` has it); the other forms
need the dashboard.
"""

from __future__ import annotations

import argparse
import http.client
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bot.cli.status.tables import changes_text, tasks_text
from bot.cli.status.text import agent_text, fleet_text, json_text, shown
from bot.commands.parsing.grammar import show, suggest
from bot.config import CONFIG_ENV_VAR, Config
from bot.config.dashboard import DashboardSettings
from bot.dashboard.access.status_door import (
    STATUS_SOCKET_FILE,
    STATUS_TOKEN_FILE,
    NotTheDashboard,
    PinnedConnection,
    StatusConnection,
)
from fleet.hostile_json import JsonRefused, read_json

__all__ = ["WHATS", "StatusError", "fetch", "fleet_text", "json_text", "main", "shown"]

WHATS = (
    "fleet",
    "agent",
    "tasks",
    "changes",
    "budgets",
    "usage",
    "accounts",
    "hosts",
    "approvals",
    "audit",
)
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
_TIMEOUT = 15.0
_FEW = 8  # names listed when an unknown agent's name is close to none


def configure_parser(parser: argparse.ArgumentParser, config_help: str) -> None:
    parser.add_argument(
        "what",
        nargs="?",
        default="fleet",
        metavar="WHAT",
        help=f"what to show: {', '.join(WHATS)} (default: fleet); or an agent's name, for "
        "that agent in detail (`agent NAME` for an agent called like one of these words)",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="the agent, with `agent`")
    parser.add_argument("--json", action="store_true", help="print the API's JSON as it is")
    parser.add_argument("--config", type=Path, help=config_help)


class StatusError(Exception):
    """Why the status could not be read: said in one line, and the exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def main(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    what, name = args.what, args.name
    if what not in WHATS:  # `status NAME`: that agent
        if name is not None:
            print(
                f"fleetwarden status: {show(what)} is not one of {', '.join(WHATS)}; "
                "`status NAME` shows one agent",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        what, name = "agent", what
    if what == "fleet" and config.dashboard is None:
        from bot.cli.verbs.shell import fleet_status  # the dashboard is off: ask the control socket

        return fleet_status(config, as_json=bool(args.json))
    try:
        data = fetch(config, environ, what, name)
        if args.json:
            text = json_text(data)
        elif what == "fleet":
            text = shown(fleet_text(data))
        elif what == "agent":
            text = shown(agent_text(data, _forge_runs(config, environ, str(name))))
        elif what == "tasks":
            text = shown(tasks_text(data))
        elif what == "changes":
            text = shown(changes_text(data))
        else:
            text = json_text(data)
    except StatusError as exc:
        print(shown(f"fleetwarden status: {exc}"), file=sys.stderr)
        return exc.code
    print(text)
    return EXIT_OK


def fetch(
    config: Config, environ: Mapping[str, str], what: str, name: str | None
) -> dict[str, Any]:
    """The API's answer for ``what`` (and ``name``)."""
    if what == "agent":
        if not name:
            raise StatusError("`status agent` needs the agent's name: status agent NAME", 2)
        path = f"/api/agents/{quote(name, safe='')}"
    elif name:
        raise StatusError(f"`status {what}` takes no name", EXIT_CONFIG)
    else:
        path = f"/api/{what}"
    code, data, where, reason = _ask(config, environ, path)
    if code == 404 and what == "agent" and name:
        raise StatusError(_no_agent(name, _names(config, environ)))
    if code != 200 or not isinstance(data, dict):
        said = data.get("error") if isinstance(data, dict) else None
        raise StatusError(f"{where} answered {path} with {code}: {said or reason}")
    return data


def _forge_runs(config: Config, environ: Mapping[str, str], agent: str) -> list[dict[str, Any]]:
    """The live forge runs of ``agent`` (none when the fleet cannot be read)."""
    try:
        runs = fetch(config, environ, "fleet", None).get("forge_runs") or []
    except StatusError:
        return []
    return [run for run in runs if isinstance(run, dict) and run.get("agent") == agent]


def _no_agent(name: str, names: list[str]) -> str:
    """Why ``name`` shows nothing, and the names that would (in chat's words)."""
    said = f"no agent is called {show(name)}"
    if (guess := suggest(name, names)) is not None:
        return f"{said} — did you mean {show(guess)}? `fleetwarden status` lists them"
    if not names:
        return f"{said}: the fleet has no agents yet"
    listed = ", ".join(show(n) for n in names[:_FEW]) + (", …" if len(names) > _FEW else "")
    return f"{said}: the fleet has {listed}"


def _names(config: Config, environ: Mapping[str, str]) -> list[str]:
    """The fleet's agents, by name (none when the fleet cannot be read)."""
    try:
        code, data, _, _ = _ask(config, environ, "/api/fleet")
    except StatusError:
        return []
    if code != 200 or not isinstance(data, dict):
        return []
    return sorted(str(a.get("name")) for a in data.get("agents", []) if isinstance(a, dict))


def _ask(config: Config, environ: Mapping[str, str], path: str) -> tuple[int, object, str, str]:
    """``GET path``: the status code, the JSON answer (``None`` when it is not JSON), where
    it was asked and the status line's reason (for messages)."""
    settings = config.dashboard
    if settings is None and config.source is None:
        raise StatusError(
            f"no config file was read (no --config, and {CONFIG_ENV_VAR} is not set), and "
            "the embedded default has no dashboard: `fleetwarden status` (the fleet) and "
            "`fleetwarden ps` answer from the control socket (`fleetwarden runs NAME` reads an "
            "agent's runs); the rest reads a dashboard, which a config turns on "
            "(`dashboard: {listen: 127.0.0.1:8750}`): start Fleetwarden with that config and "
            f"give it here too, `fleetwarden status --config PATH` (or set {CONFIG_ENV_VAR})",
            EXIT_CONFIG,
        )
    if settings is None:
        raise StatusError(
            f"the dashboard is off in {config.source}, and status reads its API: add "
            "`dashboard: {}` to the config and restart Fleetwarden",
            EXIT_CONFIG,
        )
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
        data = read_json(body)
    except JsonRefused:
        data = None
    return reply.status, data, where, reply.reason


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
