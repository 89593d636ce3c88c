"""A provider key under a variable name of the config's own (`secret_env:
[MY_ANTHROPIC_KEY]`, or any name holding a value shaped like a provider's key) given to an
agent whose egress reaches a provider's host, through the real ``fleetwarden``: refused by
`check-config` and at `run`'s start under `enforce: strict` on its `secret_env` line with
the fix, the value never shown; a warning under `warn`; nothing when the agent cannot
reach a provider's host."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration

HEAD = """\
enforce: {enforce}
state_dir: ./state
connectors:
  console: {{}}
agents:
  - name: coder
    runtime: stub
    secret_env: [{variable}]
{extra}"""
ALLOW_PROVIDER = "    egress_allow: [pypi.org, api.anthropic.com]\n"
# An Anthropic key's shape (gitleaks' rule), made here from a digest: no real key anywhere.
_BODY = hashlib.sha512(b"fleetwarden test key").digest() + hashlib.sha256(b"x").digest()
SHAPED = "sk-ant-api03-" + base64.urlsafe_b64encode(_BODY).decode()[:93] + "AA"


def _fleetwarden(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args],
        cwd=cwd,
        env=clean_env(**env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _write(tmp_path: Path, enforce: str, variable: str, extra: str) -> None:
    body = HEAD.format(enforce=enforce, variable=variable, extra=extra)
    (tmp_path / "fleetwarden.yaml").write_text(body)


def test_strict_refuses_a_provider_key_by_name_where_a_provider_host_is_reachable(
    tmp_path: Path,
) -> None:
    """`secret_env: [MY_ANTHROPIC_KEY]` with api.anthropic.com in egress_allow: check-config
    and run exit 2 on the secret_env line, with the account to make or the host to drop."""
    _write(tmp_path, "strict", "MY_ANTHROPIC_KEY", ALLOW_PROVIDER)
    for command in ("check-config", "run"):
        done = _fleetwarden(tmp_path, command, "--config", "fleetwarden.yaml")
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert re.search(
            r"fleetwarden\.yaml:8: agents\[0\]\.secret_env\[0\]: agent 'coder' is given "
            r"MY_ANTHROPIC_KEY, which its name says is a anthropic key, and has "
            r"api\.anthropic\.com in its egress_allow: it could spend it around the metering "
            r"proxy.*`enforce: strict` refuses; make the key an account the proxy holds.*"
            r"key_env: MY_ANTHROPIC_KEY.*take api\.anthropic\.com out of its egress_allow",
            done.stderr,
        ), (command, done.stderr)
    assert not (tmp_path / "state" / "ledger.db").exists()  # nothing started


def test_strict_refuses_a_value_shaped_like_a_provider_key_under_any_name(
    tmp_path: Path,
) -> None:
    """`secret_env: [LLM_TOKEN]` holding an Anthropic key's shape, with egress open to the
    provider: refused by its value, which is never shown."""
    _write(tmp_path, "strict", "LLM_TOKEN", ALLOW_PROVIDER)
    for command in ("check-config", "run"):
        done = _fleetwarden(tmp_path, command, "--config", "fleetwarden.yaml", LLM_TOKEN=SHAPED)
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert "is given LLM_TOKEN, which holds a value shaped like anthropic's API keys" in (
            done.stderr
        ), (command, done.stderr)
        assert SHAPED not in done.stdout + done.stderr
    quiet = _fleetwarden(tmp_path, "check-config", "--config", "fleetwarden.yaml", LLM_TOKEN="x1")
    assert "LLM_TOKEN" not in quiet.stdout + quiet.stderr  # no provider's shape: its own


def test_warn_warns_and_a_provider_out_of_reach_is_no_matter(tmp_path: Path) -> None:
    """Under `warn` check-config passes with a warning naming the agent and the variable;
    with no provider host in reach, the same key is the agent's own business."""
    _write(tmp_path, "warn", "MY_ANTHROPIC_KEY", ALLOW_PROVIDER)
    done = _fleetwarden(tmp_path, "check-config", "--config", "fleetwarden.yaml")
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"warning: agent 'coder' is given MY_ANTHROPIC_KEY.*api\.anthropic\.com", done.stdout
    )
    _write(tmp_path, "strict", "MY_ANTHROPIC_KEY", "    egress_allow: [pypi.org]\n")
    done = _fleetwarden(tmp_path, "check-config", "--config", "fleetwarden.yaml")
    assert done.returncode == 0, done.stderr
    assert "MY_ANTHROPIC_KEY" not in done.stdout
