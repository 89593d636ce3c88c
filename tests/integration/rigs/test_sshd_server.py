"""The sshd test fixture itself: a real OpenSSH server that lets its user in with the
client key, and leaves no process behind."""

from __future__ import annotations

import asyncio

import pytest

from fleet.hosts.link.connection import HostLink, LinkState
from fleet.hosts.link.known import trust
from fleet.hosts.schema import HostEntry
from tests.sshd_server import SshServer, descendants, processes_of

pytestmark = [pytest.mark.integration]


async def test_stop_spares_daemons_and_close_kills_every_process_of_the_user(
    private_ssh_host: SshServer,
) -> None:
    """stop() ends sshd and its sessions but not a tmux server a session started (as a
    real sshd restart would); close() kills every process of a dedicated user."""
    server = private_ssh_host
    if not server.login.dedicated:
        pytest.skip("not root: the fixture logs in as the current user, whose processes stay")
    entry = HostEntry.model_validate(
        {
            "name": "box4",
            "ssh": server.ssh_target,
            "key_file": str(server.client_key),
            "known_hosts": str(server.root / "client_known_hosts"),
        }
    )
    await trust(entry)
    link = HostLink(entry, env={})
    await link.start()
    try:
        await link.wait_for(LinkState.CONNECTED, wait=20)
        done = await link.run(["tmux", "-L", "fixture-test", "new-session", "-d", "sleep", "600"])
        assert done.ok, done.stderr
        assert descendants(server.pid or 0)  # the session's sshd processes
    finally:
        await link.stop()
    pid = server.pid or 0
    server.stop()
    assert descendants(pid) == []
    left = processes_of(server.login.uid)
    assert left, "the tmux server outlives sshd, as on a real host"
    await asyncio.to_thread(server.close)
    assert processes_of(server.login.uid) == []
