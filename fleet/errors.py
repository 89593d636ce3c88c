"""The root of every Fleetwarden exception, and the fleet package's own tree.

    FleetwardenError                 root of everything Fleetwarden raises
    ├── ConfigError                  (bot.config.checks.problems) a bad configuration file
    ├── ConnectorError               (connectors.errors) a chat service failed
    ├── SchedulerError               (scheduler.errors) the scheduler could not do it;
    │                                CronError, a crontab line that cannot be used, is one
    ├── JsonRefused                  (fleet.hostile_json) JSON from outside not taken
    ├── OverCap, LengthMismatch      (fleet.capped_body) a body over its cap, or not the
    │                                length it said
    ├── LedgerError                  the ledger could not be opened or migrated
    │   └── LeaseLost                another orchestrator holds the lease: act no more
    └── FleetError                   the fleet could not do what was asked
        ├── InvalidAgentName         a name outside [a-z][a-z0-9-]{0,31}
        ├── UnknownAgent             no agent of that name
        ├── UnknownRuntime           no runtime of that name
        ├── AgentNotRunning          the agent has no live process
        ├── AgentStillRunning        the agent is live, and what was asked needs it ended
        ├── LaunchFailed             the backend could not start the process
        ├── BudgetError              (fleet.budgets.model) a budget or burst that cannot
        │                            be applied
        └── HostError                (fleet.hosts.errors) a host reached over SSH could
                                     not be used; its own tree is drawn there

Messages are written for the operator: they say what was wrong and how to fix it.
Operator-facing command errors (shown in chat) live in ``bot.commands.errors``.
"""

from __future__ import annotations


class FleetwardenError(Exception):
    """Root of every exception Fleetwarden raises on purpose."""


class LedgerError(FleetwardenError):
    """The ledger database could not be opened, migrated or written."""


class LeaseLost(LedgerError):
    """Another orchestrator took the lease this one held: it must not act any more."""


class FleetError(FleetwardenError):
    """The fleet could not do what was asked."""


class InvalidAgentName(FleetError):
    """An agent name outside the allowed pattern."""


class UnknownAgent(FleetError):
    """No agent of that name is known."""


class UnknownRuntime(FleetError):
    """No runtime of that name is registered."""


class AgentNotRunning(FleetError):
    """The agent has no live process to act on."""


class AgentStillRunning(FleetError):
    """The agent is live (starting, running, idle or stalled); the operation needs it ended."""


class LaunchFailed(FleetError):
    """The backend could not start the agent's process."""
