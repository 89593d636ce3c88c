"""A stdio server in the real ``fleetwarden run`` runs in a bubblewrap sandbox of its own:
given, while it runs, the agent's workdir, the state dir and the config's folder (paths its
tool takes from the agent: no check of the config can see them), it reads nothing there and
runs nothing from there, as a uid of its own when Fleetwarden is root — while the folder
the config gives it stays readable."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import processes_where, under, wait_until
from tests.integration.mcp.app_rig import CONSOLE_HEAD, agent_log, held_env, running_app
from tests.integration.mcp.rig import everything_bin
from tests.integration.mcp.test_mcp_app_e2e import TOKEN_LINE, WAITER, _initialize, _post

pytestmark = [pytest.mark.integration, sandbox_need.BWRAP]

PROBE = Path(__file__).with_name("probe_stdio_server.py")
CONFIG = (
    CONSOLE_HEAD
    + """\
mcp:
  probe:
    command: python3
    args: [{probe}, {srv}]
agents:
  - name: coder
    runtime: command
    argv: [sh, -c, '{waiter}']
    workdir: ./work
    mcp: [probe]
    allow: [mcp__probe]
"""
)


def probing(root: Path) -> Callable[[str, bytes], bool]:
    """Whether a process is the probe server of the test in ``root`` (its sandbox around it
    not counted): never another test's, which may run beside it."""
    return lambda cwd, cmdline: str(PROBE).encode() in cmdline and under(root, cwd, cmdline)


def _log(root: Path) -> str:
    return agent_log(root, "coder")


def _call(url: str, token: str, session: str, number: int, tool: str, path: str = "") -> str:
    """The text of ``tool``'s answer to ``path``, called through coder's door."""
    message = {
        "jsonrpc": "2.0",
        "id": number,
        "method": "tools/call",
        "params": {"name": tool, "arguments": {"path": path}},
    }
    status, _, body = _post(url, token, message, session)
    assert status == 200, body
    return str(json.loads(body)["result"]["content"][0]["text"])


def test_a_stdio_server_given_the_agents_places_anyway_reaches_none(tmp_path: Path) -> None:
    """Through coder's door, the probe server reads its own folder, but the agent's planted
    file, its hook, the state dir's heartbeat file and the config file are out of its sight
    (no such file); it runs as neither root nor the agent's uid when Fleetwarden is root,
    and ends with the agent's run."""
    work, srv = tmp_path / "work", tmp_path / "srv"
    work.mkdir()
    srv.mkdir()
    (srv / "ok.txt").write_text("the server's own file")
    (work / "planted.txt").write_text("what the agent wrote")
    hook = work / "hook.sh"
    hook.write_text("#!/bin/sh\necho hook ran\n")
    hook.chmod(0o755)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(probe=PROBE, srv=srv, waiter=WAITER))

    probe = probing(tmp_path)

    def leftovers(cwd: str, cmdline: bytes) -> bool:
        sleeping = cwd.startswith(str(tmp_path)) and b"sleep" in cmdline
        return sleeping or probe(cwd, cmdline)

    with running_app(tmp_path, config, held_env(), leftovers=leftovers) as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        assert wait_until(lambda: TOKEN_LINE.search(_log(tmp_path)) is not None, 60)
        found = TOKEN_LINE.search(_log(tmp_path))
        assert found is not None
        token = found.group(1)
        port = json.loads((tmp_path / "state" / "heartbeat.json").read_text())["port"]
        url = f"http://127.0.0.1:{port}/mcp/coder/probe"
        session = _initialize(url, token)

        assert _call(url, token, session, 1, "read", str(srv / "ok.txt")) == "the server's own file"
        for number, path in enumerate(
            [work / "planted.txt", tmp_path / "state" / "heartbeat.json", config], start=2
        ):
            said = _call(url, token, session, number, "read", str(path))
            assert said.startswith("error: No such file"), (path, said)
        ran = _call(url, token, session, 5, "run", str(hook))
        assert ran.startswith("error: No such file"), ran
        uid = int(_call(url, token, session, 6, "whoami"))
        if os.geteuid() == 0:
            assert uid not in (0, os.stat(work).st_uid), uid
        assert processes_where(probe), "the server is running"
        bot.command("stop coder", r"(?i)stopped", timeout=60)
        assert wait_until(lambda: not processes_where(probe), 30), "the server outlived its run"


EVERY = (
    CONSOLE_HEAD
    + """\
mcp:
  every:
    command: {every}
agents:
  - name: coder
    runtime: command
    argv: [sh, -c, '{waiter}']
    workdir: ./work
    mcp: [every]
    allow: [mcp__every]
"""
)


def test_an_npm_server_runs_confined_with_its_install_in_sight(tmp_path: Path) -> None:
    """npm's server-everything, run by its .bin link, answers in its sandbox: its install
    is bound back read-only, and its HOME is its own under the state dir."""
    (tmp_path / "work").mkdir()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(EVERY.format(every=everything_bin(), waiter=WAITER))

    def leftovers(cwd: str, cmdline: bytes) -> bool:
        sleeping = cwd.startswith(str(tmp_path)) and b"sleep" in cmdline
        return sleeping or (b"mcp-server-everything" in cmdline and under(tmp_path, cwd, cmdline))

    with running_app(tmp_path, config, held_env(), leftovers=leftovers) as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        assert wait_until(lambda: TOKEN_LINE.search(_log(tmp_path)) is not None, 60)
        found = TOKEN_LINE.search(_log(tmp_path))
        assert found is not None
        token = found.group(1)
        port = json.loads((tmp_path / "state" / "heartbeat.json").read_text())["port"]
        url = f"http://127.0.0.1:{port}/mcp/coder/every"
        session = _initialize(url, token)
        echo = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"message": "from the sandbox"}},
        }
        status, _, body = _post(url, token, echo, session)
        assert status == 200, body
        assert "Echo: from the sandbox" in body
        get_env = {**echo, "id": 2, "params": {"name": "get-env", "arguments": {}}}
        status, _, body = _post(url, token, get_env, session)
        assert status == 200, body
        home = tmp_path / "state" / "mcp" / "every" / "coder" / "home"
        assert json.dumps(str(home))[1:-1] in body, body


def test_a_stdio_server_sees_a_path_directory_under_fleetwardens_home_not_its_prefix(
    tmp_path: Path,
) -> None:
    """A ``bin`` directory under Fleetwarden's HOME on its PATH comes back in the server's
    sandbox alone: a credential file beside it (``~/.tool/credentials.toml``) is out of
    the server's sight, though Fleetwarden's user could read it."""
    srv, home = tmp_path / "srv", tmp_path / "fwhome"
    (tmp_path / "work").mkdir()
    srv.mkdir()
    tool = home / ".tool"
    (tool / "bin").mkdir(parents=True)
    (tool / "bin" / "tool").write_text("#!/bin/sh\necho tool\n")
    (tool / "bin" / "tool").chmod(0o755)
    secret = tool / "credentials.toml"
    secret.write_text('token = "held"\n')
    secret.chmod(0o644)
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(CONFIG.format(probe=PROBE, srv=srv, waiter=WAITER))
    env = held_env(HOME=str(home), PATH=f"{tool / 'bin'}:{os.environ['PATH']}")

    probe = probing(tmp_path)

    def leftovers(cwd: str, cmdline: bytes) -> bool:
        sleeping = cwd.startswith(str(tmp_path)) and b"sleep" in cmdline
        return sleeping or probe(cwd, cmdline)

    with running_app(tmp_path, config, env, leftovers=leftovers) as bot:
        bot.command("spawn coder", r"Agent coder started", timeout=120)
        assert wait_until(lambda: TOKEN_LINE.search(_log(tmp_path)) is not None, 60)
        found = TOKEN_LINE.search(_log(tmp_path))
        assert found is not None
        port = json.loads((tmp_path / "state" / "heartbeat.json").read_text())["port"]
        url = f"http://127.0.0.1:{port}/mcp/coder/probe"
        session = _initialize(url, found.group(1))
        token = found.group(1)
        shown = _call(url, token, session, 1, "read", str(tool / "bin" / "tool"))
        assert shown.startswith("#!/bin/sh"), shown
        said = _call(url, token, session, 2, "read", str(secret))
        assert said.startswith("error: No such file"), said
        bot.command("stop coder", r"(?i)stopped", timeout=60)
        assert wait_until(lambda: not processes_where(probe), 30), "the server outlived its run"
