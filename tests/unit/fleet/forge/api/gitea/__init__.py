"""The Gitea client against the strict fake Gitea: every call, and its reviews and drafts."""
