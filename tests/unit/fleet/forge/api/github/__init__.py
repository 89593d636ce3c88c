"""The GitHub client against the strict fake GitHub: with a PAT, as an App, and its reviews
and drafts."""
