"""Connectors: one adapter per chat system behind one small interface (:class:`Connector`)."""

from connectors.base import (
    Connector,
    ConnectorHealth,
    InboundMessage,
    OutboundMessage,
    SendResult,
)

__all__ = ["Connector", "ConnectorHealth", "InboundMessage", "OutboundMessage", "SendResult"]
