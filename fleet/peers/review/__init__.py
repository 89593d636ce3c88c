"""A second agent's review of a task's work before a human's: the stage
(:mod:`fleet.peers.review.stage`), what it says (:mod:`fleet.peers.review.words`), what
it hands on (:mod:`fleet.peers.review.handoff`) and a line changed since its approval
(:mod:`fleet.peers.review.changed`)."""
