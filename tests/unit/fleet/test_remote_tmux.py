"""The tmux client on another host: its calls as argv lists on the host's private server
(``tmux -S STATE_DIR/tmux.sock``), under a systemd user scope when the host has one, and a
host that cannot be reached refused with why."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fleet.backends.remote_tmux import SCOPE, RemoteTmuxClient
from fleet.errors import LaunchFailed
from fleet.hosts.connection import HostLink
from fleet.hosts.place import HostPlace
from fleet.hosts.remote import RemoteResult

PLACE = HostPlace("box2", "/home/fw", "/home/fw/state")


class FakeLink:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.state = type("S", (), {"value": "down"})()
        self.error = "connection refused"

    async def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (HostLink.run's)
    ) -> RemoteResult:
        self.calls.append(list(argv))
        return RemoteResult(0, "ok\n", "")


class FakeHosts:
    def __init__(self, up: bool) -> None:
        self.up = up
        self.fake = FakeLink()

    def link(self, name: str) -> HostLink | None:
        return self.fake  # type: ignore[return-value]

    def place(self, name: str) -> HostPlace | None:
        return PLACE if self.up else None


async def test_a_call_runs_on_the_hosts_private_server_and_a_new_server_in_a_scope() -> None:
    hosts = FakeHosts(up=True)
    client = RemoteTmuxClient("box2", hosts)
    result = await client.run(["list-sessions"], ["kill-session", "-t", "=a;"])
    assert result.status == 0 and result.stdout == "ok\n"
    assert hosts.fake.calls[-1] == [
        "tmux", "-u", "-f", "/dev/null", "-S", "/home/fw/state/tmux.sock",
        "list-sessions", ";", "kill-session", "-t", "=a\\;",
    ]  # fmt: skip
    await client.run(["new-session", "-d"], prefix=SCOPE)
    assert hosts.fake.calls[-1][: len(SCOPE) + 1] == [*SCOPE, "tmux"]


async def test_a_host_that_cannot_be_reached_is_refused_with_why() -> None:
    client = RemoteTmuxClient("box2", FakeHosts(up=False))
    with pytest.raises(LaunchFailed, match=r"host box2 cannot be reached now \(down: connection"):
        await client.run(["list-sessions"], error=LaunchFailed)
