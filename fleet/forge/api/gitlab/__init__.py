"""GitLab's API as Fleetwarden speaks it: the client (:mod:`.client`, ``GitLabApi`` over
REST), its answers read into values (:mod:`.read`) and who is who on it (:mod:`.people`:
a user's id, access level and no-reply address)."""
