"""The SSH link to a host: asyncssh loaded at its first use (:mod:`.ssh`), one connection
dialled with the host's pinned key (:mod:`.dial`, :mod:`.known`), and kept up, its
reconnects backed off (:mod:`.connection`, :mod:`.backoff`)."""
