"""The git door: smart HTTP through which agents fetch and push (:mod:`.server`), the
door repo each line has (:mod:`.line_repo`), the lines as the door sees them
(:mod:`.lines`) and what its hook refused each run (:mod:`.refusals`). The hook program
itself is :mod:`fleet.repos.hook`."""
