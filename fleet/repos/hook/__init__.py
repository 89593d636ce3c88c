"""The git door's pre-receive hook and what it reads of a push: the door repo's policy
(:mod:`.policy`), the ref rules and refusals (:mod:`.receive`), the added lines and the
secret scan (:mod:`.scan`), every object and name a push brings (:mod:`.objects`), each
commit object whole (:mod:`.commits`) and what counts as CI (:mod:`.ci_paths`)."""
