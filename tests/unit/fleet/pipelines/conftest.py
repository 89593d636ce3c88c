"""The register's fixtures (the runs' side, the fake fleet its launches go to, the register
over an admission of no caps), shared with the pipelines' tests."""

from tests.unit.fleet.tasks.conftest import fleet, register, task_runs

__all__ = ["fleet", "register", "task_runs"]
