"""The cost of a merged change, reckoned from the ledger's changes
(:mod:`fleet.ledger.stores.code.changes`): what each change came to (:mod:`.outcome`) and the
report per agent, runtime and model served (:mod:`.report`). Pure: no clock, no I/O."""
