"""The ``forget`` command: take an ended agent out of ``ps`` for good, its runs, usage and
audit trail kept in the ledger for reports. Needs the admin role."""

from __future__ import annotations

from collections.abc import Mapping

from bot.grammar import ArgSpec, CommandSpec
from bot.request import Handler, Request
from fleet.supervisor import Fleet

FORGET = CommandSpec(
    name="forget",
    summary="Take an ended agent out of `ps`; its runs and usage stay for reports.",
    args=(ArgSpec("NAME", "The agent, as `ps` shows it; it must not be running."),),
    control=True,
    admin_only=True,
    description=(
        "For an agent that has ended (exited, failed or stopped), typically one a `roster "
        "reload` removed: `ps` and the watchdog no longer see it. Its runs, usage and audit "
        "trail stay in the ledger, and `usage` and the reports still count them. An agent "
        "still running or starting is refused: `stop NAME` first. A later `spawn NAME` "
        "starts it afresh."
    ),
    examples=("forget old-coder",),
)


class ForgetCommand:
    """The ``forget`` handler over the app's :class:`~fleet.supervisor.Fleet`."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def table(self) -> Mapping[str, Handler]:
        return {"forget": self.forget}

    async def forget(self, req: Request) -> str:
        name = req.arg("NAME")
        await self._fleet.forget(name)
        return (
            f"Forgot **{name}**: `ps` no longer lists it. Its runs, usage and audit trail stay "
            f"in the ledger; `spawn {name}` starts it afresh."
        )
