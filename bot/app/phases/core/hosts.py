"""The app's hosts: each ``hosts:`` entry's link (:class:`~fleet.hosts.service.Hosts`), the
backends that run agents there (:class:`~fleet.backends.remote_hosts.HostBackends`:
``tmux@NAME``, ``subprocess@NAME``: headless), and the scripts each host gets a copy of.
Started once the loopback listeners are up (the hosts forward to them), stopped after the
fleet."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from fleet.backends.base import Backend
from fleet.backends.process import SHIM
from fleet.backends.remote_hosts import HostBackends
from fleet.backends.tmux import LAUNCHER
from fleet.connections.door_client import DOOR_CLIENT
from fleet.forge.door.tools import FW_FORGE, FW_FORGE_PROGRAM
from fleet.hosts.lanes import LANE_FILES, LANE_SETUP, LANE_WRITE
from fleet.hosts.sandbox import EgressDoor
from fleet.hosts.schema import HostEntry
from fleet.hosts.service import Hosts
from fleet.peers.tools import FW_MSG, FW_MSG_PROGRAM
from fleet.runtimes.gates import ASK_CLIENT, OPENCODE_PLUGIN, PI_EXTENSION
from fleet.runtimes.stub import STUB_AGENT, STUB_WORK
from fleet.sandbox.policy import FORWARDER
from fleet.timing.clock import Clock

BUNDLED = (
    SHIM,
    LAUNCHER,
    STUB_AGENT,
    STUB_WORK,
    FORWARDER,
    ASK_CLIENT,
    PI_EXTENSION,
    OPENCODE_PLUGIN,
    LANE_SETUP,
    LANE_WRITE,
    LANE_FILES,
    FW_FORGE,
    FW_FORGE_PROGRAM,
    FW_MSG,
    FW_MSG_PROGRAM,
    DOOR_CLIENT,
)
"""Fleetwarden's standalone scripts each host gets a copy of (the shim, the tmux launcher,
the stub agent and the work it loads, a locked sandbox's forwarder, the gates pi and
opencode load, what readies an agent's lane where the login is root and writes its HOME's
files where it is not, and ``fw-forge`` and ``fw-msg`` with the programs they run and the
door client those load)."""


def make_hosts(
    entries: tuple[HostEntry, ...],
    backends: MutableMapping[str, Backend],
    *,
    environ: Mapping[str, str],
    clock: Clock,
    egress_door: EgressDoor | None = None,
) -> HostBackends:
    """The hosts, each with a copy of the :data:`BUNDLED` scripts, and their backends, added
    to ``backends`` (one ``tmux@NAME`` and one ``subprocess@NAME`` each)."""
    hosts = Hosts(entries, env=environ, clock=clock, bundled=BUNDLED, egress_door=egress_door)
    return HostBackends(hosts, backends)
