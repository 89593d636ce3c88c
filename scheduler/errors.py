"""The scheduler package's exceptions.

    FleetwardenError                 (fleet.errors)
    └── SchedulerError               the scheduler could not do what was asked
        ├── UnknownJob               no job with that id
        ├── JobAlreadyRunning        run_now while the job runs (one instance at a time)
        ├── JobMissed                the run started too late and was skipped (misfire grace)
        ├── CronError                a crontab line that cannot be used (also a ValueError)
        └── ReportNotPosted          a connector could not take the pacing report

Messages are written for the operator.
"""

from __future__ import annotations

from fleet.errors import FleetwardenError


class SchedulerError(FleetwardenError):
    """The scheduler could not do what was asked."""


class UnknownJob(SchedulerError):
    """No job with that id."""


class JobAlreadyRunning(SchedulerError):
    """``run_now`` asked for a job that is running: it runs one instance at a time."""


class JobMissed(SchedulerError):
    """The run started later than the job's misfire grace time allows, and was skipped."""


class CronError(SchedulerError, ValueError):
    """A crontab expression that cannot be used; the message is written for an operator.
    Also a ``ValueError``: it is what a validator of the expression raises."""


class ReportNotPosted(SchedulerError):
    """At least one connector could not take the report; the others still got it."""
