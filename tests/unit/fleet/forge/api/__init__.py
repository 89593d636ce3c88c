"""The forge clients: GitHub, Gitea and GitLab over REST and GraphQL, tokens, paging."""
