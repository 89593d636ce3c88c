"""The forges' APIs: :class:`~fleet.forge.model.ForgeApi` over GitHub's, Gitea's and GitLab's
REST, one package each (:mod:`.github`, :mod:`.gitea`, :mod:`.gitlab`), through one shared
seam here (:mod:`.client` over :mod:`.rest`, answers read by :mod:`.fields`), their JSON read
defensively, drafts by title prefix, the repositories' git tokens and what a forge says of a
credential."""
