"""A run's quote, made at its admission and kept on the run: what it is expected to cost
from the agent's earlier runs on the same runtime and model (:mod:`.quote`, pure), the
words it is told in (:mod:`.words`), and the reckoning against the ledger
(:mod:`.service`). The record itself is the ledger's
(:class:`fleet.ledger.records.quotes.Quote`)."""
