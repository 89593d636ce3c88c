"""The forges' APIs: :class:`~fleet.forge.model.ForgeApi` over GitHub's, Gitea's and GitLab's
REST through one shared seam, their JSON read defensively, a GitHub App's tokens and what a
forge says of a credential."""
