"""What Fleetwarden posts on a forge for a run: its status comment, its pull request, the
provenance footer and the words of a run that could not start or publish."""
