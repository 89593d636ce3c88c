"""The ledger's stores, one per concern, each over the one opened database."""
