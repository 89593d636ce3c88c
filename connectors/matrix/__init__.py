"""The Matrix connector: operators command the fleet from Matrix rooms, one thread per agent.

Its rooms: ``inbound`` (the sync loop, served rooms, events translated into inbound
messages), ``messages`` (what the bot posts: contents, replies, posting, direct rooms),
``encryption`` (the device, keys, trust, cross-signing), ``verification`` (verifying
operators' devices by emoji) and ``cli`` (``fleetwarden matrix setup``, ``device``,
``trust``, ``cross-sign``). Beside them: ``connector`` (the :class:`MatrixConnector`),
``config`` (settings), ``session`` (login) and ``wire`` (nio calls, errors, retries).

Nothing is imported here: loading the config must not load matrix-nio. Import
``connectors.matrix.connector.MatrixConnector`` where it is used.
"""
