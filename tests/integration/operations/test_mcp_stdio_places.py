"""``fleetwarden check-config``, the real command, on stdio servers that name an agent's
workdir in the spellings a program reads as a path: a quoted ``NODE_OPTIONS`` value, an
argument file, a percent-encoded ``file:`` URL, ``python3 -c`` code and a quoted ``=``
value. Each exits 2 naming the server, the key, the path and how it is read."""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env

pytestmark = pytest.mark.integration


def check(root: Path, server: str, **env: str) -> subprocess.CompletedProcess[str]:
    """check-config on a config whose one stdio server is ``server`` (YAML lines under its
    name) and whose agent ``a`` works in ``root/work``, with ``env`` in its environment."""
    config = root / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "mcp:\n"
        "  hooked:\n"
        f"{server}"
        "agents:\n"
        "  - name: a\n"
        "    workdir: ./work\n"
        "    mcp: [hooked]\n"
    )
    return subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config)],
        env=clean_env(**env),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("server", "key", "how"),
    [
        (
            "    command: node\n    args: [/srv/mcp/server.js]\n"
            "    env: {{NODE_OPTIONS: '--require \"{work}/x.js\"'}}\n",
            "env.NODE_OPTIONS",
            "",
        ),
        ("    command: node\n    args: ['@{srv}/args.txt']\n", "args[0]", "in the argument file"),
        (
            "    command: node\n    args: ['file://{encoded}/x.js']\n",
            "args[0]",
            "as a file URL",
        ),
        (
            "    command: python3\n"
            "    args: [-c, \"import sys; sys.path.insert(0, '{work}'); import hook\"]\n",
            "args[1]",
            "in its code",
        ),
        ("    command: node\n    args: ['--opt=\"{work}/x.js\"']\n", "args[0]", ""),
    ],
    ids=["quoted-node-options", "argument-file", "percent-encoded-url", "python-c", "opt-equals"],
)
def test_each_spelling_of_the_agents_workdir_is_refused(
    tmp_path: Path, server: str, key: str, how: str
) -> None:
    """The spelling is read as the program reads it, and the server refused at its line:
    exit 2, the server, the key, the path in the workdir and how it was read."""
    work, srv = tmp_path / "work", tmp_path / "srv"
    work.mkdir()
    srv.mkdir()
    (srv / "args.txt").write_text(f'--require "{work}/x.js"\n')
    encoded = str(work).replace("/work", "/w%6Frk")
    done = check(tmp_path, server.format(work=work, srv=srv, encoded=encoded))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if "MCP server hooked" in line]
    assert f"mcp.hooked.{key}: MCP server hooked's {key} '{work}" in line
    assert "is inside agent a's workdir" in line
    assert how in line
    assert "keep the server's program, cwd and every path it is given apart" in line


def test_the_same_server_apart_from_every_workdir_passes(tmp_path: Path) -> None:
    """The same spellings naming a folder of the server's own: check-config exits 0."""
    (tmp_path / "work").mkdir()
    srv = tmp_path / "srv"
    srv.mkdir()
    (srv / "args.txt").write_text(f'--require "{srv}/x.js"\n')
    done = check(
        tmp_path,
        "    command: node\n"
        f"    args: ['@{srv}/args.txt', 'file://{srv}/x.js', '--opt=\"{srv}/x.js\"']\n"
        f"    env: {{NODE_OPTIONS: '--require \"{srv}/x.js\"'}}\n",
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("server", "key", "how"),
    [
        (
            "    command: node\n    args: ['--import=file://LOCALHOST{work}/x.mjs']\n"
            "    sandbox: none\n",
            "args[0]",
            "as a file URL",
        ),
        (
            "    command: sh\n    args: [-c, 'exec node --import {tilde}/x.mjs -e 1']\n"
            "    sandbox: none\n",
            "args[1]",
            "",
        ),
    ],
    ids=["uppercase-localhost-url", "tilde-user"],
)
def test_a_host_or_home_spelled_another_way_is_refused(
    tmp_path: Path, server: str, key: str, how: str
) -> None:
    """``file://LOCALHOST/…`` (a host read without regard to case) and ``~user/…`` (expanded
    as a shell does) naming the agent's workdir: exit 2 at the server's line."""
    work = tmp_path / "work"
    work.mkdir()
    me = pwd.getpwuid(os.getuid())
    tilde = f"~{me.pw_name}/" + os.path.relpath(work, me.pw_dir)
    done = check(tmp_path, server.format(work=work, tilde=tilde))
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if "MCP server hooked" in line]
    assert f"mcp.hooked.{key}: MCP server hooked's {key} " in line
    assert "is inside agent a's workdir" in line
    assert how in line


def test_a_value_from_fleetwardens_environment_is_read_too(tmp_path: Path) -> None:
    """``env_env: {NODE_OPTIONS: HOOK_OPTS}`` whose variable names the agent's workdir:
    exit 2 at the line, the variable's value never shown."""
    work = tmp_path / "work"
    work.mkdir()
    server = (
        "    command: node\n    args: [-e, '1']\n"
        "    env_env: {NODE_OPTIONS: HOOK_OPTS}\n    sandbox: none\n"
    )
    done = check(tmp_path, server, HOOK_OPTS=f'--import "{work}/x.mjs"')
    assert done.returncode == 2, done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if "MCP server hooked" in line]
    assert "mcp.hooked.env_env.NODE_OPTIONS: MCP server hooked's env_env.NODE_OPTIONS" in line
    assert "is inside agent a's workdir" in line
    assert str(work) not in done.stdout + done.stderr
    apart = check(tmp_path, server, HOOK_OPTS="--max-old-space-size=64")
    assert apart.returncode == 0, apart.stdout + apart.stderr
