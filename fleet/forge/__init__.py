"""Work from the forge: GitHub, Gitea and Forgejo issues become sandboxed, metered runs
whose pull request is the conversation, with the forge's token never in an agent's reach."""
