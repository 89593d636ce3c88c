"""``fleetwarden status [WHAT] [NAME] [--json]``: the running orchestrator's dashboard API
read from this machine, for people at a terminal and for scripts and cron jobs.

It asks the dashboard's own address (the config's ``listen``; not ``public_url``, which may
be a reverse proxy), with the metrics token when the config names one, else with the status
token the orchestrator keeps in its state dir (mode 0600: whoever may read the state dir
may read the fleet). ``--json`` prints the API's answer as it is: its fields are documented
in ``docs/dashboard-api.md`` and never renamed.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bot import render
from bot.config import Config
from bot.dashboard.server import STATUS_TOKEN_FILE
from bot.dashboard.settings import DashboardSettings
from connectors.markdown import to_plain

WHATS = ("fleet", "agent", "budgets", "usage", "accounts", "hosts", "approvals", "audit")
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
_TIMEOUT = 15.0


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
        print(f"fleetwarden status: {exc}", file=sys.stderr)
        return exc.code
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif args.what == "fleet":
        print(fleet_text(data))
    else:
        print(json.dumps(data, indent=2, ensure_ascii=False))
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
    token = _token(settings, config.state_dir, environ)
    base = _base(settings)
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT, context=_tls(settings)) as reply:
            return dict(json.load(reply))
    except urllib.error.HTTPError as exc:
        try:
            said = json.load(exc).get("error", exc.reason)
        except ValueError:
            said = exc.reason
        raise StatusError(f"{base}{path} answered {exc.code}: {said}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusError(
            f"cannot reach the dashboard at {base} ({reason}): is `fleetwarden run` running "
            "with this config?"
        ) from None


def _base(settings: DashboardSettings) -> str:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if settings.tls else 'http'}://{shown}:{settings.port}"


def _tls(settings: DashboardSettings) -> ssl.SSLContext | None:
    if settings.tls is None:
        return None
    context = ssl.create_default_context(cafile=str(settings.tls[0]))
    context.check_hostname = False  # its own certificate, asked on its own address
    return context


def _token(settings: DashboardSettings, state_dir: Path, environ: Mapping[str, str]) -> str:
    if settings.metrics_token_env and environ.get(settings.metrics_token_env):
        return environ[settings.metrics_token_env]
    try:
        return (state_dir / STATUS_TOKEN_FILE).read_text().strip()
    except FileNotFoundError:
        raise StatusError(
            f"no status token in {state_dir}: Fleetwarden has not run with its dashboard "
            "on here yet (start it with `fleetwarden run`)"
        ) from None
    except PermissionError:
        raise StatusError(
            f"cannot read {state_dir / STATUS_TOKEN_FILE}: run status as the user that runs "
            "Fleetwarden, or set the config's metrics_token_env"
        ) from None


def fleet_text(data: Mapping[str, Any]) -> str:
    """The fleet as a table, problems first, as the console shows tables."""
    totals = data.get("totals", {})
    head = (
        f"{totals.get('agents', 0)} agents, {totals.get('with_problems', 0)} with problems; "
        f"{totals.get('tokens_today', 0)} tokens and ${totals.get('cost_today_usd', 0):.2f} today"
    )
    rows = [
        [
            a["name"],
            a["host"],
            a["state"],
            "—" if (beat := a.get("heartbeat_age_seconds")) is None else f"{beat:.0f}s",
            a.get("model") or "—",
            str(a.get("tokens_today", 0)),
            f"${a.get('cost_today_usd', 0):.2f}",
            "; ".join(a.get("problems", [])) or "—",
        ]
        for a in data.get("agents", [])
    ]
    heads = ("agent", "host", "state", "beat", "model", "tokens", "cost", "problems")
    return to_plain(f"{head}\n\n{render.table(heads, rows)}")
