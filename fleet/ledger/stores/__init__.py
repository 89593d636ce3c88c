"""The ledger's stores, one per concern, each over the one opened database, in rooms: the
fleet running, what it spends, its work on code, and the operators around it."""
