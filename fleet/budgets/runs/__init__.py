"""A run's own cap: armed at its launch, watched as it spends, cut when it is spent, and what a
run usually costs."""
