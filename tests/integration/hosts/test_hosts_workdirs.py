"""Where a workdir on an SSH host may not lie, against a real sshd and bubblewrap there (the
host's login an ordinary user, its agents sharing its uid).

A sandbox there binds its own workdir back whole, so a workdir inside another agent's, or
holding one, is refused at spawn with the fix — whichever of the two started first — where
the local sandbox would hide the nested one. So are workdirs in the host's state dir
(`lib/` with Fleetwarden's scripts, another agent's HOME) and in the login's `~/.ssh`.
`check-config` names the nested pair from the config alone, without connecting."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import sandbox_need
from tests.integration.console_bot import FLEETWARDEN, clean_env
from tests.integration.hosts.test_hosts_e2e import WAIT, _started
from tests.integration.hosts.test_hosts_lanes import workdirs_of
from tests.sshd_server import SshServer

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
    sandbox_need.root("makes the host's workdirs as its login user"),
]


def _config(
    path: Path, host: SshServer, state: str, workdirs: Path, agents: dict[str, Path]
) -> Path:
    known = path.parent / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    path.write_text(
        f"state_dir: ./{path.stem}-state\n"
        "connectors: {console: {}}\n"
        "defaults: {stop_grace_seconds: 1}\n"
        "hosts:\n"
        f"  - {{name: box4, ssh: '{host.ssh_target}', key_file: '{host.client_key}',"
        f" known_hosts: '{known}', state_dir: {state}, workdirs: '{workdirs}'}}\n"
        "agents:\n"
        + "".join(
            f"  - {{name: {name}, runtime: stub, backend: tmux, host: box4, egress_allow: [],"
            f" workdir: '{work}'}}\n"
            for name, work in agents.items()
        )
    )
    return path


def _made(path: Path, owner: int) -> Path:
    """``path`` (and its parents up to an existing one) made 0700, ``owner``'s."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for made in reversed(missing):
        made.mkdir(mode=0o700)
        os.chown(made, owner, owner)
    return path


def test_a_workdir_inside_or_around_anothers_is_refused_whichever_starts_first(
    tmp_path: Path, private_ssh_host: SshServer
) -> None:
    """b's workdir lies in a's. a first: b is refused (it lies inside a's); with a fresh
    orchestrator, b first: a is refused (it holds b's). The fix is named each time; the
    one started runs."""
    host, login = private_ssh_host, private_ssh_host.login.uid
    with workdirs_of(login) as top:
        work = {"a": _made(top / "a", login), "b": _made(top / "a" / "b", login)}
        orders = (("a", "b", "lies inside"), ("b", "a", "holds"))
        for round_, (first, second, how) in enumerate(orders):
            state = host.state_dir("fw-nest")[0]
            config = _config(tmp_path / f"round{round_}.yaml", host, state, top, work)
            bot = _started(tmp_path, config, "box4")
            try:
                bot.command(f"spawn {first}", rf"Agent {first} started", timeout=WAIT)
                bot.command(f"spawn {second}", rf"{second} cannot start.*$", timeout=WAIT)
                reply = bot.output_since_command
                assert f"its workdir {work[second]} {how} {work[first]}, another" in reply, reply
                assert "give each agent a directory of its own side by side" in reply, reply
                bot.command(f"stop {first}", rf"Stopped {first}", timeout=WAIT)
                assert bot.quit(WAIT) == 0
            finally:
                if bot.proc.poll() is None:
                    bot.kill()


def test_workdirs_in_the_hosts_state_dir_or_the_logins_ssh_are_refused(
    tmp_path: Path, private_ssh_host: SshServer
) -> None:
    """`lib/` (the scripts a root login runs as root), another agent's HOME there, and the
    login's `~/.ssh`: each spawn is refused, saying which place and the fix."""
    host, login = private_ssh_host, private_ssh_host.login.uid
    state, where = host.state_dir("fw-guarded")
    ssh_dir = Path(host.login.home) / ".ssh"
    made_ssh = not ssh_dir.exists()
    work = {
        "scripts": _made(where / "lib", login),
        "nosy": _made(where / "agents" / "other" / "home", login),
        "keys": _made(ssh_dir, login),
    }
    try:
        with workdirs_of(login) as top:
            config = _config(tmp_path / "fw.yaml", host, state, top, work)
            bot = _started(tmp_path, config, "box4")
            try:
                for name in ("scripts", "nosy"):
                    bot.command(f"spawn {name}", rf"{name} cannot start.*$", timeout=WAIT)
                    reply = bot.output_since_command
                    assert f"its workdir {work[name]} lies in the host's state dir {where}" in reply
                    assert "leave workdir out for a directory of its own there" in reply, reply
                bot.command("spawn keys", r"keys cannot start.*$", timeout=WAIT)
                reply = bot.output_since_command
                assert f"its workdir {ssh_dir} lies in {ssh_dir}, a hidden directory" in reply
                assert "choose a directory that is not hidden" in reply, reply
                assert bot.quit(WAIT) == 0
            finally:
                if bot.proc.poll() is None:
                    bot.kill()
    finally:
        if made_ssh:
            shutil.rmtree(ssh_dir, ignore_errors=True)


def test_check_config_names_nested_workdirs_on_a_host_without_connecting(
    tmp_path: Path, private_ssh_host: SshServer
) -> None:
    """The host is stopped: `check-config` still says which agents nest, and the fix."""
    host = private_ssh_host
    host.stop()
    top = tmp_path / "work"
    work = {"a": _made(top / "a", 0), "b": _made(top / "a" / "b", 0)}
    config = _config(tmp_path / "fw.yaml", host, "~/fw-check", top, work)
    checked = subprocess.run(
        [str(FLEETWARDEN), "check-config", "--config", str(config)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert checked.returncode == 2, checked
    assert (
        f"agent 'b' cannot start on host box4: its workdir {work['b']} lies inside {work['a']}"
    ) in checked.stderr, checked.stderr
    assert f"agent 'a' cannot start on host box4: its workdir {work['a']} holds" in checked.stderr
