"""The Matrix connector: operators command the fleet from Matrix rooms, one thread per agent.

Modules: ``config`` (settings), ``session`` (login), ``rooms`` (served rooms, invites),
``sync`` (the sync loop), ``translate`` (events to inbound messages), ``render`` (event
contents), ``outbound`` (posting), ``wire`` (nio calls, errors, retries), ``backoff``,
``payloads`` (JSON shapes), ``connector`` (the :class:`MatrixConnector`), ``setup``
(``fleetwarden matrix setup``: ``setup_flow``, ``setup_types``, ``synapse_admin``).

Nothing is imported here: loading the config must not load matrix-nio. Import
``connectors.matrix.connector.MatrixConnector`` where it is used.
"""
