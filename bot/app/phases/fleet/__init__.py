"""The fleet: the launcher, the one admission over it and the fleet handed both (launching),
the postbox between agents and the tasks they hand on (peers, peer_traffic), the budgets'
cutoffs carried out on it."""
