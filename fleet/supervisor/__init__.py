"""The supervisor: the one place that starts, watches, feeds and stops agents — with the
concurrency caps, placement, the freezer and budget cutoffs it applies."""
