"""The ``resume`` command: continue an agent that a budget's ``freeze`` cutoff paused,
before its window resets. Needs the operator role."""

from __future__ import annotations

from collections.abc import Mapping

from bot.errors import CommandError
from bot.grammar import ArgSpec, CommandSpec
from bot.request import Handler, Reply, Request
from fleet.supervisor import Fleet

RESUME = CommandSpec(
    name="resume",
    summary="Continue an agent a budget's freeze cutoff paused.",
    args=(ArgSpec("NAME", "The frozen agent, as `ps` shows it."),),
    control=True,
    description=(
        "A budget with `cutoff: freeze` pauses its agents' processes (SIGSTOP) when it "
        "reaches its limit, and continues them when its window resets. `resume` continues "
        "one now. Its budget is still at its limit, so its model requests are still refused "
        "until the reset, a higher limit (`budget set`), or a burst."
    ),
    examples=("resume coder-1",),
)


class LimitCommands:
    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def table(self) -> Mapping[str, Handler]:
        return {"resume": self.resume}

    async def resume(self, req: Request) -> Reply:
        name = req.arg("NAME")
        frozen = {freeze.agent: freeze for freeze in await self._fleet.frozen()}
        freeze = frozen.get(name)
        if freeze is None or not await self._fleet.thaw(name):
            raise CommandError(
                f"{name} is not frozen: `resume` continues an agent a budget's freeze "
                "cutoff paused (`ps` shows them as frozen)"
            )
        text = (
            f"Resumed **{name}**: its processes continue. {freeze.budget} is still at its "
            "limit, so its model requests are refused until the window resets."
        )
        return Reply(text, topic=name, thread_line=f"Resumed by {req.message.sender}.")
