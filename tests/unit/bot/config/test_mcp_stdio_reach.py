"""What a stdio server may reach, as the config says it: a relative path in its arguments
or variables is resolved against its working directory before it is checked (an agent's
place or the state directory refused at its line, as an absolute one is), and
``check-config`` refuses a path that holds the state directory or is one of the config's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.command import main
from bot.config import ConfigError, ConfigProblem, parse_config
from fleet.mcp.model import StdioServer

FILE = "fleetwarden.yaml"


def problems_of(text: str, base_dir: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, FILE, base_dir=base_dir)
    return list(caught.value.problems)


def test_a_relative_argument_is_resolved_against_the_servers_cwd(tmp_path: Path) -> None:
    """`../work/x.js` from the server's cwd, landing in an agent's workdir, and
    `../state/logins` landing in the state directory, are refused at their lines."""
    (tmp_path / "srv").mkdir()
    (tmp_path / "work").mkdir()
    problems = problems_of(
        f"state_dir: {tmp_path / 'state'}\n"
        "mcp:\n"
        "  s:\n"
        "    command: node\n"
        "    args: [../work/x.js, --root, ../state/logins, serve]\n"
        f"    cwd: {tmp_path / 'srv'}\n"
        "agents:\n"
        "  - name: a\n"
        f"    workdir: {tmp_path / 'work'}\n",
        tmp_path,
    )
    assert [(p.line, p.key_path) for p in problems] == [(5, "mcp.s.args[0]"), (5, "mcp.s.args[2]")]
    work, state = (p.message for p in problems)
    planted = tmp_path / "srv" / "../work/x.js"
    assert f"MCP server s's args[0] '{planted}' is inside agent a's workdir" in work
    assert "is inside Fleetwarden's state directory" in state


def test_without_a_cwd_a_relative_path_is_fleetwardens_own_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no cwd the server starts in Fleetwarden's own directory: `./work/x.js` there is
    checked, a bare word (a name more often than a file) is not."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path)
    [problem] = problems_of(
        f"state_dir: {tmp_path / 'state'}\n"
        "mcp:\n"
        "  s:\n"
        "    command: node\n"
        "    args: [./work/x.js, work]\n"
        "agents:\n"
        "  - name: a\n"
        f"    workdir: {tmp_path / 'work'}\n",
        tmp_path,
    )
    assert (problem.line, problem.key_path) == (5, "mcp.s.args[0]")


def test_check_config_refuses_a_path_holding_the_state_dir_or_at_the_configs_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A filesystem-like server given a directory holding the state directory, the config's
    folder, or a file in it: `check-config` exits 2 naming each at its line with the fix; a
    system folder and a folder beside the config pass."""
    etc = tmp_path / "etc"
    (etc / "srv").mkdir(parents=True)
    config = etc / "fleetwarden.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'data' / 'state'}\n"
        "mcp:\n"
        "  files:\n"
        "    command: python3\n"
        f"    args: [-m, fs, {tmp_path / 'data'}, {etc}, --env={etc / 'fw.env'}, /usr/share,"
        f" {etc / 'srv'}]\n"
    )
    with pytest.raises(SystemExit) as exited:
        main(["check-config", "--config", str(config)])
    assert exited.value.code == 2
    said = [line for line in capsys.readouterr().err.splitlines() if "mcp.files" in line]
    assert [line.split(": MCP server")[0].rsplit(": ", 1)[1] for line in said] == [
        "mcp.files.args[2]",
        "mcp.files.args[3]",
        "mcp.files.args[4]",
    ]
    assert f"args[2] '{tmp_path / 'data'}' holds Fleetwarden's state directory" in said[0]
    assert f"args[3] '{etc}' is the config file's folder" in said[1]
    assert f"args[4] '{etc / 'fw.env'}' is a file of the config file's folder" in said[2]
    assert all("the config file's own files (see docs/mcp.md)" in line for line in said)


def test_an_unconfined_stdio_server_is_refused_under_strict(tmp_path: Path) -> None:
    """`sandbox: none` on a stdio server: refused at its line under `enforce: strict`, with
    the fix; taken under the default `warn`; and `sandbox` or `egress` on an HTTP server is
    refused as a stdio server's key."""
    server = "mcp:\n  s:\n    command: node\n    sandbox: none\n    egress: locked\n"
    [problem] = problems_of(f"state_dir: {tmp_path / 'state'}\nenforce: strict\n{server}", tmp_path)
    assert (problem.line, problem.key_path) == (6, "mcp.s.sandbox")
    assert "MCP server s has sandbox: none, which `enforce: strict` refuses" in problem.message
    assert "the default, bwrap, runs it in a sandbox of its own" in problem.message
    config = parse_config(f"state_dir: {tmp_path / 'state'}\n{server}", FILE, base_dir=tmp_path)
    transport = config.mcp["s"].transport
    assert isinstance(transport, StdioServer)
    assert (transport.confined, transport.locked) == (False, True)
    http = "mcp:\n  h:\n    url: https://mcp.example.com/mcp\n    sandbox: bwrap\n"
    [misplaced] = problems_of(f"state_dir: {tmp_path / 'state'}\n{http}", tmp_path)
    assert misplaced.key_path == "mcp.h.sandbox"
