"""A fake GitLab: its REST API held to its OpenAPI description, its hooks and their sender."""
