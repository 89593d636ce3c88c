"""Pipelines: a mission made of one task per stage, each stage's task started once the
stages before it are done and their gates passed (:mod:`.schema` the config's section and
its graph, :mod:`.gates` what a gate runs, :mod:`.handoff` what a stage is told of the one
before, :mod:`.flow` the stages moved as their tasks end)."""
