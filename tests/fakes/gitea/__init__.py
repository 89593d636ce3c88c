"""A fake Gitea: its REST API held to its Swagger description, its git over smart HTTP, its
webhooks."""
