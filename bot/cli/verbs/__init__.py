"""The chat verbs typed in a shell (``fleetwarden ps``, ``spawn``, ``send`` …): which words
are one (:mod:`.words`, read before anything heavy loads), how they are sent to the running
orchestrator's control socket and its answer printed (:mod:`.shell`), and what the config
must say for a shell to command (:mod:`.operator`)."""
