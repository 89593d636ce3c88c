"""What the proxy counts: each request's usage read from the provider's answer, estimated
before it is sent, metered in flight, recorded in batches and journalled when the ledger
would not take it."""
