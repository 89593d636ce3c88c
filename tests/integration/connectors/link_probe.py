"""Reading a running ``fleetwarden run``'s connector health from outside, as an operator's
tools do: ``/metrics``' ``fleetwarden_connector_up``, ``/api/fleet``'s ``connectors`` and
``fleetwarden status``, with the dashboard's metrics token."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.integration.console_bot import FLEETWARDEN

TOKEN_ENV = "FW_TEST_METRICS_TOKEN"
TOKEN = "metrics-token-for-this-test-0123456789"


def dashboard_section(port: int) -> str:
    """The config's ``dashboard:`` section on ``port``, with the metrics token's variable."""
    return f"dashboard:\n  listen: 127.0.0.1:{port}\n  metrics_token_env: {TOKEN_ENV}\n"


def _get(url: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return ""  # the dashboard is not serving yet


async def up_is(base: str, connector: str, value: float) -> bool:
    """Whether ``fleetwarden_connector_up{connector=…}`` scrapes as ``value`` now."""
    text = await asyncio.to_thread(_get, f"{base}/metrics")
    pattern = rf'^fleetwarden_connector_up\{{connector="{connector}"\}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return found is not None and float(found.group(1)) == value


async def links(base: str) -> dict[str, dict[str, object]]:
    """``/api/fleet``'s ``connectors``, by name."""
    fleet = json.loads(await asyncio.to_thread(_get, f"{base}/api/fleet") or "{}")
    return {link["name"]: link for link in fleet.get("connectors", [])}


async def status(config: Path, env: dict[str, str], *args: str) -> str:
    """``fleetwarden status ARGS --config CONFIG``'s output (it must succeed)."""
    done = await asyncio.to_thread(
        subprocess.run,
        [str(FLEETWARDEN), "status", *args, "--config", str(config)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
