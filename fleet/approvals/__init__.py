"""Approvals: agents' asks for the operator's yes or no, kept in the ledger and answered once."""
