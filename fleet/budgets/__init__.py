"""Budgets and pacing, decided without a clock of their own: the vocabulary
(:mod:`~fleet.budgets.model`), where windows begin and end (:mod:`~fleet.budgets.pacing.windows`),
the even-spread law (:mod:`~fleet.budgets.pacing.law`), the proxy's policy
(:mod:`~fleet.budgets.pacing.policy`), the config sections (:mod:`~fleet.budgets.schema`) and the
running book that ties them to the ledger (:mod:`~fleet.budgets.service`). The scheduler
only decides *when* a tick runs."""
