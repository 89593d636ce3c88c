"""Agents on one SSH host, against a real sshd and bubblewrap there.

Logged in as an ordinary user, the agents share its uid, so only what every sandbox there
hides keeps them apart — decided by the host's layout at each launch, never by which agents
were known then: two hostile agents with workdirs in the host's `workdirs:` directory,
started in either order, cannot read each other's 0600 files, and a workdir outside what
every sandbox there hides is refused with the fix.

Logged in as root, each agent runs there as a uid of its own, as here: it cannot read the
other's files nor root's 0600 files (as root's, its sandbox could), and its doors, HOME and
workdir are its own."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.sandbox.lanes import SPAN
from tests import sandbox_need
from tests.integration.conftest import processes_under
from tests.integration.console_bot import ConsoleBot, processes_where, wait_until
from tests.integration.hosts.test_hosts_e2e import WAIT, _started
from tests.integration.sandbox.test_sandbox import HOSTILE, attack
from tests.sshd_server import SshServer, _new_server

pytestmark = [
    pytest.mark.integration,
    sandbox_need.BWRAP,
    sandbox_need.root("makes the host's workdirs as its login user, and logs in as root"),
]


@contextlib.contextmanager
def workdirs_of(owner: int) -> Iterator[Path]:
    """A directory outside /home for a host's agents' workdirs, ``owner``'s."""
    where = Path("/var/tmp") / f"fw-hostwork-{uuid.uuid4().hex[:8]}"
    where.mkdir(mode=0o700)
    os.chown(where, owner, owner)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def root_ssh_host() -> Iterator[SshServer]:
    """A host of this test's own on 127.0.0.6 that lets root in; what ran there from its
    state dirs is killed after."""
    server = _new_server("127.0.0.6", "root")
    try:
        server.start()
        yield server
    finally:
        for made in server.state_dirs:
            for pid in processes_under(made):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        server.close()


def _workdir(top: Path, name: str, owner: int, targets: dict[str, str]) -> Path:
    """``name``'s workdir: the hostile agent, what it will try to reach, and a 0600 file of
    its own; all ``owner``'s."""
    work = top / name
    work.mkdir(mode=0o700)
    shutil.copy(HOSTILE, work / HOSTILE.name)
    (work / "targets.json").write_text(json.dumps(targets))
    secret = work / "secret.txt"
    secret.write_text(f"{name}'s own notes\n")
    secret.chmod(0o600)
    for path in (work, *work.iterdir()):
        os.chown(path, owner, owner)
    return work


def _config(tmp_path: Path, host: SshServer, workdirs: Path, agents: dict[str, str]) -> Path:
    """A config with ``host`` as box4 (its agents' workdirs in ``workdirs``) and hostile
    agents on it: name → its workdir and what else its entry says."""
    known = tmp_path / "known_hosts"
    known.write_text(host.known_hosts_line() + "\n")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "connectors: {console: {}}\n"
        "defaults: {stop_grace_seconds: 1}\n"
        "hosts:\n"
        f"  - {{name: box4, ssh: '{host.ssh_target}', key_file: '{host.client_key}',"
        f" known_hosts: '{known}', state_dir: {host.state_dir('fw-lanes')[0]},"
        f" workdirs: '{workdirs}'}}\n"
        "agents:\n"
        + "".join(
            f"  - {{name: {name}, runtime: command, backend: tmux, host: box4,"
            f" argv: [python3, -I, {HOSTILE.name}], {entry}}}\n"
            for name, entry in agents.items()
        )
    )
    return config


def host_uid(workdir: Path) -> int:
    """The host uid of the hostile agent working in ``workdir`` (the host is this machine)."""
    agent = [b"python3", b"-I", HOSTILE.name.encode(), b""]  # not its shim or forwarder
    pids = processes_where(lambda cwd, argv: cwd == str(workdir) and argv.split(b"\0") == agent)
    assert len(pids) == 1, pids
    status = Path(f"/proc/{pids[0]}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])


def _kept_uids(state_dir: Path, names: str) -> dict[str, int]:
    """Give ``names`` their uids in the host's state dir, as a first launch there keeps
    them, but past every fleet's range (:data:`~fleet.sandbox.lanes.SPAN`): the host is
    this machine, where the orchestrator's own fleet and those of other tests hold ranges
    of that span in its register and would each take these agents for another fleet's."""
    uids = {name: SPAN.first + SPAN.count + n for n, name in enumerate(names)}
    state_dir.mkdir(mode=0o700)
    (state_dir / "uids.json").write_text(json.dumps(uids))
    (state_dir / "uids.json").chmod(0o600)
    return uids


def _spawn(bot: ConsoleBot, log: Path, name: str) -> None:
    bot.command(f"spawn {name}", rf"Agent {name} started", timeout=WAIT)
    ready = lambda: log.exists() and "hostile agent ready" in log.read_text()  # noqa: E731
    assert wait_until(ready, timeout=WAIT), log.read_text() if log.exists() else "no log"


def test_agents_sharing_a_hosts_login_started_in_either_order_cannot_read_each_others_files(
    tmp_path: Path, private_ssh_host: SshServer
) -> None:
    """a then b, then b then a: neither reads the other's 0600 file, whichever started
    first (a sandbox made before the other agent was known hides its workdir too)."""
    host, login = private_ssh_host, private_ssh_host.login.uid
    outside = tmp_path / "c-work"  # below no directory every sandbox there hides
    outside.mkdir()
    with workdirs_of(login) as workdirs:
        work = {name: workdirs / name for name in "ab"}
        for me, other in ("ab", "ba"):
            _workdir(workdirs, me, login, {"other_work": str(work[other] / "secret.txt")})
        agents = {name: f"egress: open, workdir: '{work[name]}'" for name in "ab"}
        agents["c"] = f"egress: open, workdir: '{outside}'"
        config = _config(tmp_path, host, workdirs, agents)
        logs = {name: tmp_path / "state" / "agents" / name / "output.log" for name in "ab"}
        bot = _started(tmp_path, config, "box4")
        try:
            for first, second in (("a", "b"), ("b", "a")):
                for name in (first, second):
                    _spawn(bot, logs[name], name)
                for name in (first, second):  # the one started first too
                    got = attack(bot, logs[name], name, "other_work", "write_workdir")
                    assert got["write_workdir"][0] == "open", got
                    assert got["other_work"][0] == "denied", f"{name} read the other's: {got}"
                bot.command(f"stop {first}", rf"Stopped {first}", timeout=WAIT)
                bot.command(f"stop {second}", rf"Stopped {second}", timeout=WAIT)
            bot.command("spawn c", r"c cannot start.*$", timeout=WAIT)
            reply = bot.output_since_command
            assert f"its workdir {outside} lies outside what every sandbox there hides" in reply
            assert re.search(r"name its parent in the host's `?workdirs:", reply), reply
            assert bot.quit(WAIT) == 0
        finally:
            if bot.proc.poll() is None:
                bot.kill()


def test_agents_on_a_host_whose_login_is_root_run_as_uids_of_their_own(
    tmp_path: Path, root_ssh_host: SshServer
) -> None:
    """Each agent there is its own user, the uid the host keeps for it: its workdir and
    HOME are its own (it writes both), its doors answer it (a locked agent's heartbeat and
    proxy, again once a restarted orchestrator has opened them anew), and the other's 0600
    file and root's are closed to it."""
    secret = Path("/var/tmp") / f"fw-rootsecret-{uuid.uuid4().hex[:8]}.env"
    secret.write_text("DATABASE_PASSWORD=fake-root-secret\n")
    secret.chmod(0o600)
    try:
        with workdirs_of(0) as workdirs:
            work = {name: workdirs / name for name in "ab"}
            for me, other in ("ab", "ba"):
                targets = {
                    "other_work": str(work[other] / "secret.txt"),
                    "root_secret": str(secret),
                }
                _workdir(workdirs, me, 0, targets)
            agents = {name: f"egress_allow: [], workdir: '{work[name]}'" for name in "ab"}
            config = _config(tmp_path, root_ssh_host, workdirs, agents)
            kept = _kept_uids(root_ssh_host.state_dirs[-1], "ab")
            logs = {name: tmp_path / "state" / "agents" / name / "output.log" for name in "ab"}
            bot = _started(tmp_path, config, "box4")
            try:
                uids = {}
                for name in "ab":
                    _spawn(bot, logs[name], name)
                    words = ("identity", "write_workdir", "write_home", "heartbeat", "proxy")
                    got = attack(bot, logs[name], name, *words, "other_work", "root_secret")
                    for word in words:
                        assert got[word][0] == "open", (name, word, got)
                    for word in ("other_work", "root_secret"):
                        assert got[word][0] == "denied", (name, word, got)
                    assert "capeff=0000000000000000" in got["identity"][1], got["identity"]
                    uids[name] = host_uid(work[name])
                assert uids == kept, uids  # as the host keeps them, each its own
                assert (work["a"] / "mine.txt").stat().st_uid == uids["a"]
                # A restarted orchestrator opens their doors again, still theirs.
                assert bot.quit(WAIT) == 0
                bot = _started(tmp_path, config, "box4")
                for name in "ab":
                    got = attack(bot, logs[name], name, "heartbeat", "proxy")
                    assert all(verdict == "open" for verdict, _ in got.values()), (name, got)
                for name in "ab":
                    bot.command(f"stop {name}", rf"Stopped {name}", timeout=WAIT)
                assert bot.quit(WAIT) == 0
            finally:
                if bot.proc.poll() is None:
                    bot.kill()
    finally:
        secret.unlink(missing_ok=True)
