"""``check-config --online`` asks each MCP server's OAuth token endpoint (a real one on
loopback) for a token with the client credentials Fleetwarden holds: a refusal is a
problem at the server's ``oauth`` line, in Fleetwarden's words and never with the secret;
a token got is said in the summary; offline, nothing is asked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli.command import main
from tests.integration.mcp.oauth_rig import CLIENT_ID, CLIENT_SECRET, ID_ENV, SECRET_ENV, OAuthMcp

pytestmark = pytest.mark.integration


def check(
    tmp_path: Path, mcp: OAuthMcp, capsys: pytest.CaptureFixture[str], *flags: str
) -> tuple[int, str, str]:
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        "mcp:\n"
        "  tracker:\n"
        f"    url: {mcp.url}\n"
        "    oauth:\n"
        f"      token_url: {mcp.token_url}\n"
        f"      client_id_env: {ID_ENV}\n"
        f"      client_secret_env: {SECRET_ENV}\n"
    )
    with pytest.raises(SystemExit) as exited:
        main(["check-config", "--config", str(config), *flags])
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_online_a_token_got_is_said_and_offline_nothing_is_asked(
    tmp_path: Path,
    oauth_mcp: Callable[..., OAuthMcp],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the right credentials `--online` gets a token and says so; without
    `--online` the endpoint is not asked, and the summary says how to ask it."""
    mcp = oauth_mcp()
    monkeypatch.setenv(ID_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    code, out, _ = check(tmp_path, mcp, capsys)
    assert code == 0 and mcp.issued() == []
    assert "each MCP server's OAuth token endpoint" in out
    assert f"tracker: HTTP {mcp.url}; OAuth client credentials, token from {mcp.token_url}" in out
    code, out, _ = check(tmp_path, mcp, capsys, "--online")
    assert code == 0, out
    assert len(mcp.issued()) == 1 and mcp.issued()[0] not in out
    assert "0 repositories, 1 MCP token endpoint and 0 forges answered" in out


def test_online_a_wrong_secret_is_a_problem_at_the_oauth_line(
    tmp_path: Path,
    oauth_mcp: Callable[..., OAuthMcp],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A secret the endpoint refuses: `check-config --online` fails at mcp.tracker.oauth,
    saying the endpoint refused the client credentials and which variables to check."""
    mcp = oauth_mcp()
    monkeypatch.setenv(ID_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, "wrong-secret-Vb73")
    code, out, err = check(tmp_path, mcp, capsys, "--online")
    assert code != 0 and mcp.issued() == []
    assert (
        f"fleetwarden.yaml:5: mcp.tracker.oauth: MCP server tracker got no OAuth token: its "
        f"token endpoint {mcp.base} refused Fleetwarden's client credentials (HTTP 401, "
        f"invalid_client). Check {ID_ENV} and {SECRET_ENV} in Fleetwarden's environment"
    ) in err
    assert "wrong-secret" not in out + err
