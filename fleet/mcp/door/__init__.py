"""The door itself: the routes an agent's MCP client talks to (:mod:`.routes`), each MCP
session relayed to a connection of its own (:mod:`.session`) with the requests it has in
flight (:mod:`.in_flight`) and what the server sends back (:mod:`.from_server`); what the
door lets through (:mod:`.rules`); and what travels, framed and scrubbed (:mod:`.wire`)."""
