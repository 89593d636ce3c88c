"""What ``spawn`` takes besides the agent's name, checked before anything starts: its
spend (:mod:`.spend`: the run's cap, and the usual cost said in its answer) and its
repository (:mod:`.repository`: ``--repo``, ``--base``, ``--fresh``); all of its flags are
read into the launch it asks for by :mod:`.request`."""
