"""The tmux client on another host: its calls as argv lists on the host's private server
(``tmux -S STATE_DIR/tmux.sock``), under a systemd user scope when the host has one, and a
host that cannot be reached refused with why."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from fleet.backends.remote_tmux import SCOPE
from fleet.backends.remote_tmux_client import RemoteTmuxClient
from fleet.errors import LaunchFailed
from fleet.hosts.link.connection import HostLink
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


def test_a_plans_files_and_environment_name_the_hosts_copies_of_the_scripts() -> None:
    """A CLI's config naming a gate (its path, or a file:// URI) names its copy there."""
    from pathlib import Path

    from fleet.backends.remote_tmux import _remote_text
    from fleet.hosts.place import PACKAGE_ROOT
    from fleet.runtimes.gates import ASK_CLIENT, OPENCODE_PLUGIN

    place = HostPlace(
        "box2",
        "/home/fw",
        "/home/fw/state",
        copied=frozenset({str(ASK_CLIENT), str(OPENCODE_PLUGIN)}),
    )
    text = f'{{"plugin": ["{OPENCODE_PLUGIN.as_uri()}"], "hook": "node {ASK_CLIENT}"}}'
    there = _remote_text(text, place)
    relative = OPENCODE_PLUGIN.relative_to(PACKAGE_ROOT)
    assert f"file:///home/fw/state/lib/{relative}" in there
    assert f"node /home/fw/state/lib/{ASK_CLIENT.relative_to(PACKAGE_ROOT)}" in there
    assert str(PACKAGE_ROOT) not in there
    assert _remote_text("nothing to see", place) == "nothing to see"
    assert Path(place.bundled(ASK_CLIENT)).name == "ask.mjs"
