"""GitHub's API as Fleetwarden speaks it: the client (:mod:`.client`, ``GitHubApi`` over
REST), its answers read into values (:mod:`.read`), the GraphQL mutations that lift and set
a pull request's draft flag (:mod:`.graphql`) and a GitHub App's tokens (:mod:`.app_token`)."""
