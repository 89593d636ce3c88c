"""fleet.hosts against a real OpenSSH server (tests/sshd_server.py) on 127.0.0.2-4: host
keys trusted and refused, commands run word for word, the link's reconnect loop, the
probe, and logging in with an encrypted key or the ssh-agent."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import stat
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fleet.hosts.errors import HostDown, HostKeyChanged, RemoteCommandFailed
from fleet.hosts.link.backoff import Backoff
from fleet.hosts.link.connection import HostLink, LinkSettings, LinkState, LinkStatus
from fleet.hosts.link.known import trust
from fleet.hosts.probe import probe
from fleet.hosts.schema import HostEntry

# Until tests/conftest.py imports them for every test module.
from tests.sshd_server import SshServer

pytestmark = [pytest.mark.integration]

WAIT = 20.0  # seconds any one expected state change may take here


def host_entry(server: SshServer, known_hosts: Path, name: str = "box2", **more: Any) -> HostEntry:
    data = {
        "name": name,
        "ssh": server.ssh_target,
        "key_file": str(server.client_key),
        "known_hosts": str(known_hosts),
        **more,
    }
    return HostEntry.model_validate({k: v for k, v in data.items() if v is not None})


@contextlib.asynccontextmanager
async def started(link: HostLink) -> AsyncIterator[HostLink]:
    await link.start()
    try:
        yield link
    finally:
        await link.stop()


def counting_sleep(calls: list[float]) -> Callable[[float], Awaitable[None]]:
    """asyncio.sleep that notes each wait asked for."""

    async def sleep(seconds: float) -> None:
        calls.append(seconds)
        await asyncio.sleep(seconds)

    return sleep


async def program(*argv: str, env: dict[str, str] | None = None) -> str:
    """Run a local program to its end; its output, or AssertionError with its stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"{argv[0]} exited {proc.returncode}: {err.decode()}"
    return out.decode()


async def until(condition: Callable[[], bool], what: str, wait: float = WAIT) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {wait} s: {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def ssh_agent(socket_path: Path) -> AsyncIterator[None]:
    """An ssh-agent in the foreground at ``socket_path``, yielded once it accepts a
    connection (the socket file is there a moment before it listens), and stopped after,
    however the body ends."""
    log = socket_path.with_name(socket_path.name + ".log")
    with log.open("wb") as err:
        agent = await asyncio.create_subprocess_exec(
            "ssh-agent",
            "-D",
            "-a",
            str(socket_path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WAIT
        while not await accepts(socket_path):
            if agent.returncode is not None:
                said = log.read_text(errors="replace")
                raise AssertionError(f"ssh-agent exited {agent.returncode}: {said}")
            if time.monotonic() > deadline:
                raise AssertionError(f"ssh-agent did not listen at {socket_path} within {WAIT} s")
            await asyncio.sleep(0.02)
        yield
    finally:
        if agent.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                agent.terminate()
            try:
                await asyncio.wait_for(agent.wait(), WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    agent.kill()
                await agent.wait()


async def accepts(socket_path: Path) -> bool:
    """Whether something listens at the Unix socket ``socket_path`` now."""
    try:
        _, writer = await asyncio.open_unix_connection(str(socket_path))
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def test_trust_records_the_key_and_then_the_link_connects(
    ssh_hosts: tuple[SshServer, SshServer], tmp_path: Path
) -> None:
    """`trust` records the host's key (the fingerprint ssh-keygen prints, a 0600 file
    OpenSSH itself reads); a link then connects, and each host logs in its own user."""
    first, second = ssh_hosts
    known = tmp_path / "keys" / "known_hosts"
    box2 = host_entry(first, known)
    box3 = host_entry(second, known, name="box3")

    trusted = await trust(box2)
    assert trusted.recorded and trusted.fingerprint == first.fingerprint()
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    assert known.read_text() == first.known_hosts_line() + "\n"
    # OpenSSH itself finds the line we wrote.
    await program("ssh-keygen", "-F", f"[{first.address}]:{first.port}", "-f", str(known))
    again = await trust(box2)
    assert not again.recorded and known.read_text().count("\n") == 1
    await trust(box3)

    async with started(HostLink(box2, env={})) as link2, started(HostLink(box3, env={})) as link3:
        await link2.wait_for(LinkState.CONNECTED, wait=WAIT)
        await link3.wait_for(LinkState.CONNECTED, wait=WAIT)
        assert (await link2.run(["id", "-un"])).stdout == f"{first.user}\n"
        assert (await link3.run(["id", "-un"])).stdout == f"{second.user}\n"
        assert link2.error is None and link2.attempts == 1


async def test_an_unknown_host_key_is_refused_and_not_retried_until_trusted(
    ssh_hosts: tuple[SshServer, SshServer], tmp_path: Path
) -> None:
    """With no key on record the link is `refused`, naming the host, the fingerprint it
    offered and `fleetwarden hosts trust NAME`; it makes no further attempt until the
    known_hosts file changes, and then connects."""
    server = ssh_hosts[0]
    entry = host_entry(server, tmp_path / "known_hosts")
    sleeps: list[float] = []
    settings = LinkSettings(refused_recheck=0.05)
    link = HostLink(entry, env={}, sleep=counting_sleep(sleeps), settings=settings)
    async with started(link):
        status = await link.wait_for(LinkState.REFUSED, wait=WAIT)
        assert status.error is not None
        assert "host box2" in status.error
        assert server.fingerprint() in status.error
        assert "`fleetwarden hosts trust box2`" in status.error
        assert str(entry.known_hosts) in status.error
        with pytest.raises(HostDown, match="refused"):
            await link.run(["true"])

        await until(lambda: len(sleeps) >= 10, "ten rechecks of the files")
        assert link.attempts == 1 and link.state is LinkState.REFUSED
        assert not entry.known_hosts.exists()  # nothing was written behind our back

        await trust(entry)
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        assert link.attempts == 2
        assert (await link.run(["echo", "in"])).stdout == "in\n"


async def test_a_changed_host_key_is_refused_and_only_replaced_when_asked(
    private_ssh_host: SshServer, tmp_path: Path
) -> None:
    """A host re-keyed while connected is refused on reconnect, naming both keys and
    `--replace`; `trust` will not overwrite the old key unless told to replace it."""
    server = private_ssh_host
    entry = host_entry(server, tmp_path / "known_hosts")
    old = (await trust(entry)).fingerprint
    settings = LinkSettings(refused_recheck=0.05)
    async with started(HostLink(entry, env={}, settings=settings)) as link:
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        server.restart(new_host_key=True)
        new = server.fingerprint()
        assert new != old

        status = await link.wait_for(LinkState.REFUSED, wait=WAIT)
        assert status.error is not None
        assert new in status.error and old in status.error
        assert "`fleetwarden hosts trust box2 --replace`" in status.error
        recorded = entry.known_hosts.read_bytes()
        with pytest.raises(HostKeyChanged, match=re.escape(new)):
            await trust(entry)
        assert entry.known_hosts.read_bytes() == recorded
        assert link.state is LinkState.REFUSED

        replaced = await trust(entry, replace=True)
        assert (replaced.fingerprint, replaced.replaced) == (new, (old,))
        assert entry.known_hosts.read_text() == server.known_hosts_line() + "\n"
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)


async def test_run_passes_each_argument_literally_and_reports_how_it_ended(
    ssh_hosts: tuple[SshServer, SshServer], tmp_path: Path
) -> None:
    """Arguments with spaces, quotes and shell syntax arrive as written (no injection);
    exit codes, stderr, input and a timeout come back."""
    server = ssh_hosts[0]
    entry = host_entry(server, tmp_path / "known_hosts")
    await trust(entry)
    marker = Path(f"/tmp/fw-injected-{uuid.uuid4().hex}")
    words = [f"$(touch {marker}); echo hi", "it's", 'a "quoted" word', "two  spaces", "*", "`id`"]
    async with started(HostLink(entry, env={})) as link:
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        done = await link.run(["printf", "%s\\n", *words])
        assert done.ok and done.stdout == "".join(f"{word}\n" for word in words)
        assert not await asyncio.to_thread(marker.exists)

        assert (await link.run(["sh", "-c", "echo oops >&2; exit 3"])).exit_status == 3
        missing = await link.run(["ls", "/nonexistent-fleetwarden"])
        assert missing.exit_status == 2 and "nonexistent-fleetwarden" in missing.stderr
        assert (await link.run(["no-such-program-fleetwarden"])).exit_status == 127
        assert (await link.run(["cat"], input="héllo\nwörld")).stdout == "héllo\nwörld"
        with pytest.raises(RemoteCommandFailed, match=r"did not finish within 0\.3 s"):
            await link.run(["sleep", "2"], timeout=0.3)
        assert (await link.run(["true"])).ok  # the connection is still good


async def test_the_link_reconnects_after_the_host_comes_back_at_most_once_a_second(
    private_ssh_host: SshServer, tmp_path: Path
) -> None:
    """While the server is down the link retries with backoff, never twice in a second,
    stays `down` since the drop, and reconnects once the server is back."""
    server = private_ssh_host
    entry = host_entry(server, tmp_path / "known_hosts")
    await trust(entry)
    attempts: list[float] = []
    seen = 0

    def on_change(status: LinkStatus) -> None:
        nonlocal seen
        if status.attempts > seen:
            seen = status.attempts
            attempts.append(time.monotonic())

    link = HostLink(entry, env={}, backoff=Backoff(1.0, 2.0), on_change=on_change)
    async with started(link):
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        server.stop()
        down = await link.wait_for(LinkState.DOWN, wait=WAIT)
        assert down.error is not None and "connection lost" in down.error
        await until(lambda: link.attempts >= 4, "three attempts while the server is down")
        assert link.state is LinkState.DOWN and link.since == down.since
        with pytest.raises(HostDown, match="host box2 is down"):
            await link.run(["true"])

        server.start()
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        assert (await link.run(["echo", "back"])).stdout == "back\n"
    # The first attempt connected; the others are one per wait while the server was down.
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts[1:])]
    assert gaps and min(gaps) >= 0.99, gaps


async def test_probe_reads_load_disk_and_tools_of_the_real_host(
    ssh_hosts: tuple[SshServer, SshServer], tmp_path: Path
) -> None:
    """The probe finds the remote user's home, CPUs, load, the free disk under the state
    dir and tmux."""
    server = ssh_hosts[1]
    entry = host_entry(server, tmp_path / "known_hosts", name="box3")
    await trust(entry)
    async with started(HostLink(entry, env={})) as link:
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        facts = await probe(link, entry.state_dir)
    assert facts.home == server.login.home
    assert facts.state_dir == f"{server.login.home}/.fleetwarden-agents"
    assert facts.cpus is not None and facts.cpus >= 1
    assert facts.load is not None and all(value >= 0 for value in facts.load)
    assert facts.disk is not None and 0 < facts.disk.free_bytes <= facts.disk.total_bytes
    tmux = facts.tool("tmux")
    assert tmux is not None and tmux.path.endswith("/tmux")
    assert tmux.version is not None and tmux.version.startswith("tmux ")


async def test_an_encrypted_key_logs_in_with_its_passphrase_from_the_environment(
    private_ssh_host: SshServer, tmp_path: Path
) -> None:
    """key_passphrase_env's variable unlocks the key; without it the link is refused,
    naming the variable and never the passphrase."""
    server = private_ssh_host
    key = tmp_path / "id_locked"
    passphrase = f"pp-{uuid.uuid4().hex}"
    await program("ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-a", "4", "-f", str(key))
    server.authorize(key.with_name(key.name + ".pub"))
    entry = host_entry(
        server, tmp_path / "known_hosts", key_file=str(key), key_passphrase_env="FW_KEY_PASS"
    )
    await trust(entry)

    async with started(HostLink(entry, env={})) as link:
        status = await link.wait_for(LinkState.REFUSED, wait=WAIT)
        assert status.error is not None and "FW_KEY_PASS" in status.error
    wrong = f"not-{passphrase}"
    async with started(HostLink(entry, env={"FW_KEY_PASS": wrong})) as link:
        status = await link.wait_for(LinkState.REFUSED, wait=WAIT)
        assert status.error is not None and "is FW_KEY_PASS the key's passphrase?" in status.error
        assert passphrase not in status.error
    async with started(HostLink(entry, env={"FW_KEY_PASS": passphrase})) as link:
        await link.wait_for(LinkState.CONNECTED, wait=WAIT)
        assert (await link.run(["id", "-un"])).stdout == f"{server.user}\n"
        assert passphrase not in repr(link.status())


async def test_the_ssh_agent_logs_in_when_the_entry_says_agent(
    private_ssh_host: SshServer, tmp_path: Path
) -> None:
    """`agent: true` uses the keys of the agent at SSH_AUTH_SOCK in the environment given
    (not this process's), and is refused with the fix when there is none."""
    server = private_ssh_host
    entry = host_entry(server, tmp_path / "known_hosts", key_file=None, agent=True)
    await trust(entry)
    async with started(HostLink(entry, env={})) as link:
        status = await link.wait_for(LinkState.REFUSED, wait=WAIT)
        assert status.error is not None and "SSH_AUTH_SOCK is not set" in status.error

    socket_path = tmp_path / "agent.sock"
    async with ssh_agent(socket_path):
        env = {"SSH_AUTH_SOCK": str(socket_path)}
        await program("ssh-add", "-q", str(server.client_key), env={**os.environ, **env})
        async with started(HostLink(entry, env=env)) as link:
            await link.wait_for(LinkState.CONNECTED, wait=WAIT)
            assert (await link.run(["id", "-un"])).stdout == f"{server.user}\n"
