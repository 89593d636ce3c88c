"""Fleet: the agents themselves — roster, runtimes, backends, supervisor and the ledger."""
