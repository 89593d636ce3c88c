"""The Matrix connector: operators command the fleet from Matrix rooms, one thread per agent.

Modules: ``config`` (settings), ``session`` (login), ``rooms`` (served rooms, invites),
``sync`` (the sync loop), ``translate`` (events to inbound messages), ``render`` (event
contents), ``outbound`` (posting), ``wire`` (nio calls, errors, retries), ``backoff``,
``payloads`` (JSON shapes), ``connector`` (the :class:`MatrixConnector`).
"""

from connectors.matrix.connector import MatrixConnector
from connectors.matrix.rooms import ConnectorState

__all__ = ["ConnectorState", "MatrixConnector"]
