"""An agent's runs: launching one, watching it, ending it, where its files live on disk, its
output log, and what it did."""
