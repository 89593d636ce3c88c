"""Hosts: other machines agents run on, reached over SSH (their agents in tmux there).

The ``hosts:`` config entries (:mod:`~fleet.hosts.schema`), host keys and ``hosts trust``
(:mod:`~fleet.hosts.link.known`), opening a connection (:mod:`~fleet.hosts.link.dial`), the
persistent link per host with its reconnect loop (:mod:`~fleet.hosts.link.connection`,
:mod:`~fleet.hosts.link.backoff`), one remote command as an argv list
(:mod:`~fleet.hosts.remote`), what a host has (:mod:`~fleet.hosts.probe`) and the errors
(:mod:`~fleet.hosts.errors`)."""
