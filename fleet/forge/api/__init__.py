"""The forges' APIs: :class:`~fleet.forge.model.ForgeApi` over GitHub's and Gitea's REST, their
JSON read defensively, a GitHub App's tokens and what a forge says of a credential."""
