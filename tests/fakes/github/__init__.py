"""A fake GitHub: its REST API held to its OpenAPI description, apps and tokens, reviews,
webhooks."""
