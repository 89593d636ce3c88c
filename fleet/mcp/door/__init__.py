"""The door itself: the routes an agent's MCP client talks to (:mod:`.routes`), each MCP
session relayed to a connection of its own (:mod:`.session`), every method governed
(:mod:`.methods`, :mod:`.gate`), the messages in flight (:mod:`.exchange`, :mod:`.held`,
:mod:`.waiting`), the calls counted (:mod:`.calls`) and the sessions opened (:mod:`.opens`)."""
