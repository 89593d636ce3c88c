"""The commands on agents and their runs: spawn, restart, send and watch, the levers (freeze,
stop all) and resume, forget, and what the runs did (logs, runs)."""
