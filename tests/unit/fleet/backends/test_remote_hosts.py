"""Each configured host's backends: ``tmux@NAME`` and ``subprocess@NAME`` added to the
backends by name (one already there kept), none without hosts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fleet.backends.base import Backend
from fleet.backends.process import SubprocessBackend
from fleet.backends.remote_hosts import HostBackends
from fleet.hosts.schema import HostEntry
from fleet.hosts.service import Hosts
from fleet.timing.clock import ManualClock


def hosts(*names: str) -> Hosts:
    entries = tuple(
        HostEntry(name=name, ssh=f"fw@10.0.0.{i + 2}", key_file=Path("/k"), known_hosts=Path("/kh"))
        for i, name in enumerate(names)
    )
    return Hosts(entries, env={}, clock=ManualClock(datetime(2026, 1, 1, tzinfo=UTC)))


async def test_each_host_adds_its_tmux_and_headless_backends(tmp_path: Path) -> None:
    """Two backends a host, named after it; a name already taken keeps its backend; the
    stop closes them and the hosts' links."""
    mine = SubprocessBackend(tmp_path)
    backends: dict[str, Backend] = {"subprocess@box3": mine}
    made = HostBackends(hosts("box2", "box3"), backends)
    assert sorted(backends) == ["subprocess@box2", "subprocess@box3", "tmux@box2", "tmux@box3"]
    assert backends["subprocess@box3"] is mine
    assert made.hosts.names() == ["box2", "box3"]
    await made.stop()


def test_no_hosts_add_no_backends() -> None:
    """Without ``hosts:`` the backends are as they were."""
    backends: dict[str, Backend] = {}
    HostBackends(hosts(), backends)
    assert backends == {}
