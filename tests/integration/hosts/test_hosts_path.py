"""The directories on an agent's PATH on an SSH host, under the host's hidden HOME, against a
real OpenSSH server and the host's bubblewrap: the tools in them run (the entry's
``path: [~/.cargo/bin]``, and ``~/.local/bin``, which every agent there has), while the
credentials and data beside them stay out of the agent's sight there, as here
(tests/integration/sandbox/test_sandbox_path_installs.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.hosts.rig import WAIT
from tests.integration.hosts.rig import entry as _entry
from tests.integration.hosts.rig import started as _started
from tests.integration.hosts.rig import until as _until
from tests.sshd_server import SshServer

pytestmark = pytest.mark.integration

SECRETS = (".cargo/credentials.toml", ".local/share/keyrings/login.keyring", ".local/state/h")
READABLE = (".cargo/registry/index.txt", ".local/lib/helper.txt")


def _file(path: Path, text: str, mode: int, uid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    os.chown(path, uid, -1)


def test_an_agent_on_a_host_runs_its_path_tools_but_never_reads_the_credentials_beside_them(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    up, _ = ssh_hosts
    home, uid = Path(up.login.home), up.login.uid
    made = [home / ".cargo", home / ".local"]
    for already in made:
        shutil.rmtree(already, ignore_errors=True)
    for secret in SECRETS:
        _file(home / secret, "fake-secret\n", 0o600, uid)
    for readable in READABLE:
        _file(home / readable, "readable\n", 0o600, uid)
    _file(home / ".cargo/bin/cargo-tool", "#!/bin/sh\necho cargo tool ran\n", 0o700, uid)
    _file(home / ".local/bin/local-tool", "#!/bin/sh\necho local tool ran\n", 0o700, uid)
    for top in made:
        for folder in (top, *[p for p in top.rglob("*") if p.is_dir()]):
            os.chown(folder, uid, -1)
    files = " ".join(str(home / name) for name in (*SECRETS, *READABLE))
    script = (
        f'for f in {files}; do if cat "$f" >/dev/null 2>&1; then echo "SEEN $f"; '
        'else echo "HIDDEN $f"; fi; done; cargo-tool; local-tool; echo PROBED; exec sleep 600'
    )
    known = tmp_path / "known_hosts"
    known.write_text(up.known_hosts_line() + "\n")
    config = tmp_path / "fleetwarden.yaml"
    box = _entry("box2", up.ssh_target, up.client_key, known, up.state_dir("fw-path")[0])
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "hosts:\n"
        + box.replace("max_agents: 4,", "max_agents: 4, path: ['~/.cargo/bin'],")
        + "agents:\n"
        "  - {name: pr, runtime: command, backend: subprocess, host: box2, egress_allow: [],"
        f" argv: {json.dumps(['/bin/sh', '-c', script])}}}\n"
    )
    bot = _started(tmp_path, config, "box2")
    try:
        bot.command("spawn pr", r"pr.*(started|running)", timeout=WAIT)
        said = _until(bot, "logs pr", r"PROBED")
        for secret in SECRETS:
            assert f"HIDDEN {home / secret}" in said, said
        for readable in READABLE:
            assert f"SEEN {home / readable}" in said, said
        assert "cargo tool ran" in said and "local tool ran" in said, said
        bot.command("stop pr", r"(?i)stopped", timeout=WAIT)
        bot.send("quit")
        assert bot.wait(timeout=WAIT) == 0
    finally:
        if bot.proc.poll() is None:
            bot.kill()
        for top in made:
            shutil.rmtree(top, ignore_errors=True)
