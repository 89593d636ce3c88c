"""The doors of locked agents: each agent's door to a loopback port its URLs name (the
metering proxy, the heartbeat endpoint), recorded in ``<root>/<agent>/doors.json`` so that
:meth:`LockedDoors.reattach` opens the same ones after a restart, and its egress door, where
Fleetwarden answers as the forward proxy of its allow-list
(:mod:`fleet.sandbox.egress.egress_proxy`), each refusal there counted for the agent
(:mod:`fleet.sandbox.egress.refusals`). :meth:`LockedDoors.block` closes the egress door and
cuts its connections; the block is kept as a file beside the doors, so it outlives a
restart, until :meth:`LockedDoors.unblock`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.sandbox.egress.doors import DoorSet, Handler, Served, fixed
from fleet.sandbox.egress.egress_proxy import ForwardProxy, Refusal
from fleet.sandbox.egress.refusals import RefusalBook

log = logging.getLogger(__name__)

EGRESS_DOOR = "egress.sock"
DOORS_FILE = "doors.json"
BLOCKED_FILE = "egress-blocked"


class LockedDoors:
    """Locked agents' doors under ``root`` (one directory an agent); ``uid_for``: the host
    uid that connects through an agent's doors (``None``: Fleetwarden's own)."""

    def __init__(self, root: Path, uid_for: Callable[[str], int | None]) -> None:
        self._root = root
        self._uid_for = uid_for
        self.refusals: RefusalBook | None = None
        self._doors: dict[AgentName, DoorSet] = {}
        self._in_place: dict[int, Served] = {}  # port → its server, served by its doors
        self._allow: dict[AgentName, tuple[str, ...]] = {}

    def door_dir(self, name: str) -> Path:
        """Where ``name``'s doors are (shown inside its sandbox)."""
        return self._root / name / "doors"

    def egress_door(self, name: str) -> Path:
        """Where ``name``'s allow-list door is here (open while its run is)."""
        return self.door_dir(name) / EGRESS_DOOR

    def serve_in_place(self, port: int, server: Served) -> None:
        """Have the doors to loopback ``port`` serve its connections in place with
        ``server`` (:attr:`fleet.connections.loopback.Served.factory` of Fleetwarden's own server on
        that port) rather than pipe each to the port (doors opened from now on)."""
        self._in_place[port] = server

    async def launching(self, spec: AgentSpec, ports: list[int]) -> None:
        """Open ``spec``'s doors to ``ports`` (and its egress door), recorded for a
        restart."""
        place = self._root / spec.name
        place.mkdir(mode=0o700, parents=True, exist_ok=True)
        (place / DOORS_FILE).write_text(json.dumps({"ports": ports}))
        await self._open(spec, ports)

    async def open_remote_egress(self, spec: AgentSpec) -> Path:
        """The door here that serves the allow-list's forward proxy to ``spec``'s agent on
        another host (its host's link forwards the sandbox's door there to it)."""
        if spec.name not in self._doors:  # Fleetwarden's own link connects, no lane's user
            self._doors[spec.name] = DoorSet(self.door_dir(spec.name), owner=None)
        await self._open(spec, [])
        return self.egress_door(spec.name)

    async def reattach(self, spec: AgentSpec) -> None:
        """Open a running locked agent's doors again (after Fleetwarden restarted)."""
        try:
            saved = json.loads((self._root / spec.name / DOORS_FILE).read_text())
            ports = [int(port) for port in saved["ports"]]
        except (OSError, ValueError, KeyError, TypeError):
            ports = []
        await self._open(spec, ports)

    async def close(self, name: AgentName) -> None:
        """Close the doors of ``name``'s run, which has ended."""
        doors = self._doors.pop(name, None)
        self._allow.pop(name, None)
        if doors is not None:
            await doors.close_all()

    async def close_all(self) -> None:
        for doors in self._doors.values():
            await doors.close_all()
        self._doors.clear()

    # -- egress block ----------------------------------------------------------------------

    def blocked(self, name: str) -> bool:
        return (self._root / name / BLOCKED_FILE).exists()

    async def block(self, name: AgentName) -> bool:
        """Cut ``name``'s allow-list now and for its next runs; whether a door was open."""
        (self._root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        (self._root / name / BLOCKED_FILE).touch()
        doors = self._doors.get(name)
        if doors is not None:
            return await doors.close(EGRESS_DOOR)
        return False

    async def unblock(self, name: AgentName) -> bool:
        """Let ``name`` reach its allow-list again; whether a door was opened."""
        (self._root / name / BLOCKED_FILE).unlink(missing_ok=True)
        doors, allow = self._doors.get(name), self._allow.get(name)
        if doors is None or not allow:
            return False
        await doors.open(EGRESS_DOOR, self._egress_handler(name, allow))
        return True

    # -- internals ---------------------------------------------------------------------

    async def _open(self, spec: AgentSpec, ports: Iterable[int]) -> None:
        if spec.name not in self._doors:
            owner = self._uid_for(spec.name)  # the agent's own user connects
            self._doors[spec.name] = DoorSet(self.door_dir(spec.name), owner=owner)
        doors = self._doors[spec.name]
        try:
            for port in ports:
                served = self._in_place.get(port)
                if served is not None:
                    await doors.open_served(f"tcp-{port}.sock", served)
                else:
                    await doors.open(f"tcp-{port}.sock", fixed(port))
            if spec.egress_allow:
                self._allow[spec.name] = spec.egress_allow
                if not self.blocked(spec.name):
                    handler = self._egress_handler(spec.name, spec.egress_allow)
                    await doors.open(EGRESS_DOOR, handler)
        except OSError as exc:
            raise LaunchFailed(f"{spec.name}: could not open its sandbox's doors: {exc}") from exc

    def _egress_handler(self, name: AgentName, allow: tuple[str, ...]) -> Handler:
        """The forward proxy of ``name``'s allow-list, its refusals counted."""
        return ForwardProxy(name, allow, self._refused).serve

    def _refused(self, refusal: Refusal) -> None:
        if self.refusals is not None:
            self.refusals.note(refusal)
        else:
            log.warning("egress of %s refused: %s", refusal.agent, refusal.why)
