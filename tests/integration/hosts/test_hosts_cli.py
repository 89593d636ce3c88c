"""`fleetwarden hosts trust NAME` and `fleetwarden hosts check` against a real OpenSSH
server: a host whose key is not on record cannot be used and `check` says how to trust
it; `trust` with the wrong expected fingerprint records nothing; `trust` shows the key's
fingerprint and records it (the file made 0600); then `check` finds the host usable."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.sshd_server import SshServer

pytestmark = pytest.mark.integration


def fleetwarden(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLEETWARDEN), *args], capture_output=True, text=True, timeout=60, env=clean_env()
    )


def test_trust_records_a_hosts_key_and_check_then_finds_it_usable(
    tmp_path: Path, ssh_hosts: tuple[SshServer, SshServer]
) -> None:
    host, _ = ssh_hosts
    known = tmp_path / "keys" / "known_hosts"
    known.parent.mkdir()
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "hosts:\n"
        f"  - {{name: box2, ssh: '{host.ssh_target}', key_file: '{host.client_key}',"
        f" known_hosts: '{known}', state_dir: {host.state_dir('fw-cli')[0]}}}\n"
    )
    before = fleetwarden("hosts", "check", "--config", str(config))
    assert before.returncode == 1, before
    assert "box2" in before.stdout and "cannot be used" in before.stdout
    assert "fleetwarden hosts trust box2" in before.stdout
    assert host.fingerprint() in before.stdout

    wrong = fleetwarden(
        "hosts", "trust", "box2", "--config", str(config), "--expect", "SHA256:" + "A" * 43
    )
    assert wrong.returncode == 1 and "nothing recorded" in wrong.stderr, wrong
    assert not known.exists() or host.fingerprint() not in known.read_text()

    trusted = fleetwarden(
        "hosts", "trust", "box2", "--config", str(config), "--expect", host.fingerprint()
    )
    assert trusted.returncode == 0, trusted
    assert f"recorded its key {host.fingerprint()}" in trusted.stdout
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    again = fleetwarden("hosts", "trust", "box2", "--config", str(config))
    assert "already on record" in again.stdout, again

    after = fleetwarden("hosts", "check", "--config", str(config))
    assert after.returncode == 0, after
    assert "box2" in after.stdout and ": ok — load" in after.stdout and "tmux" in after.stdout

    unknown = fleetwarden("hosts", "trust", "box9", "--config", str(config))
    assert unknown.returncode == 2 and "no host 'box9'" in unknown.stderr
