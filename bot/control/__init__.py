"""The control socket: commands typed in a shell on this machine (``fleetwarden spawn …``)
reach the running orchestrator's router, as chat's do, and get their answer back as text
and data. :mod:`bot.control.wire` is what travels, :mod:`bot.control.door` the server,
:mod:`bot.control.answers` the router's side, :mod:`bot.control.connector` where an answer
given after the shell left goes (a launch it queued, started later)."""
