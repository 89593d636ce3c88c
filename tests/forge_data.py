"""Where the forges' published descriptions and example payloads are, for the tests that
hold the fakes to them (fetched by ``tests/forge_data.sh``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORGE_DATA = ROOT / ".cache" / "forge-data"
GITHUB_OPENAPI = FORGE_DATA / "openapi" / "generated" / "api.github.com.json"
WEBHOOK_EXAMPLES = FORGE_DATA / "webhooks-examples" / "api.github.com"
