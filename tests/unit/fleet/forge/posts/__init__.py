"""What the forge is told: the status comment, the footer, the pull request's words."""
