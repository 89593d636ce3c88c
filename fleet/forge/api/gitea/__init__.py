"""Gitea's (and Forgejo's) API as Fleetwarden speaks it: the client (:mod:`.client`,
``GiteaApi`` over REST) and its answers read into values (:mod:`.read`)."""
