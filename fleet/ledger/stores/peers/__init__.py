"""The ledger's stores of agents working together: messages with their receipts
(:mod:`.messages`) and rounds of review (:mod:`.reviews`)."""
