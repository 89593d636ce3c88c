"""Command handlers: one coroutine per command, each returning markdown.

Handlers validate what the grammar cannot (paths, names) and call the fleet; the
renderers in :mod:`bot.render` shape the answer. Errors are raised, not rendered:
the router turns them into one-line replies and audit outcomes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot import render
from bot.acl import Role
from bot.commands import help_text
from bot.errors import CommandError
from bot.grammar import Command, CommandSpec
from connectors.base import InboundMessage
from fleet.clock import Clock
from fleet.supervisor import Fleet, RosterDiff
from fleet.windows import DEFAULT_WINDOW


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed, authorised command and who sent it."""

    message: InboundMessage
    role: Role
    command: Command

    def arg(self, name: str) -> str:
        return self.command.args[name]

    @property
    def who(self) -> str:
        return f"{self.message.sender} on {self.message.connector}"


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer. With ``topic``, it goes into that topic's thread (opened with
    this reply as its root where the room has none yet)."""

    markdown: str
    topic: str | None = None


Handler = Callable[[Request], Awaitable[str | Reply]]
RosterReloader = Callable[[], Awaitable[RosterDiff]]
Follower = Callable[[InboundMessage, str, str], None]  # (message, agent, first screen)


class Handlers:
    """The commands of the fleet, bound to one :class:`~fleet.supervisor.Fleet`."""

    def __init__(
        self,
        *,
        fleet: Fleet,
        specs: Sequence[CommandSpec],
        clock: Clock,
        prefix: str,
        logs_lines: int,
        reload_roster: RosterReloader | None = None,
        follow_screen: Follower | None = None,
    ) -> None:
        self._fleet = fleet
        self._specs = specs
        self._clock = clock
        self._prefix = prefix
        self._logs_lines = logs_lines
        self._reload_roster = reload_roster
        self._follow_screen = follow_screen

    def table(self) -> Mapping[str, Handler]:
        """Command name → handler, for the router."""
        return {
            "help": self.help,
            "ps": self.ps,
            "spawn": self.spawn,
            "stop": self.stop,
            "restart": self.restart,
            "send": self.send,
            "logs": self.logs,
            "watch": self.watch,
            "usage": self.usage,
            "roster": self.roster,
            "roster reload": self.roster_reload,
            "whoami": self.whoami,
        }

    async def help(self, req: Request) -> str:
        return help_text(self._specs, req.command.args.get("COMMAND"), prefix=self._prefix)

    async def ps(self, req: Request) -> str:
        return render.ps(await self._fleet.ps(), self._clock.now(), await self._fleet.drift())

    async def spawn(self, req: Request) -> Reply:
        flags = req.command.flags
        workdir = _workdir(flags.get("workdir"))
        outcome = await self._fleet.spawn(
            req.arg("NAME"),
            runtime=_opt_str(flags.get("runtime")),
            model=_opt_str(flags.get("model")),
            prompt=_opt_str(flags.get("prompt")),
            workdir=workdir,
            by=req.who,
        )
        text = render.spawned(outcome.status, outcome.started, outcome.output)
        return Reply(text, topic=outcome.status.name)

    async def stop(self, req: Request) -> str:
        name = req.arg("NAME")
        info = await self._fleet.stop_agent(
            name, force=bool(req.command.flags.get("force")), by=req.who
        )
        return render.stopped(name, info)

    async def restart(self, req: Request) -> str:
        return render.restarted(await self._fleet.restart(req.arg("NAME"), by=req.who))

    async def send(self, req: Request) -> str:
        name, text = req.arg("NAME"), req.arg("TEXT")
        if not text.strip():
            raise CommandError(f"nothing to send — usage: send {name} TEXT")
        return render.sent(name, await self._fleet.send(name, text))

    async def logs(self, req: Request) -> str:
        name = req.arg("NAME")
        lines = req.command.flags.get("lines", self._logs_lines)
        count = lines if isinstance(lines, int) else self._logs_lines
        return render.logs(name, await self._fleet.logs(name, count), count)

    async def watch(self, req: Request) -> Reply:
        name = req.arg("NAME")
        screen = await self._fleet.snapshot(name)
        if req.command.flags.get("follow") and self._follow_screen is not None:
            self._follow_screen(req.message, name, screen)
        return Reply(render.screen(name, screen), topic=name)

    async def usage(self, req: Request) -> str:
        name = req.command.args.get("NAME")
        window = req.command.str_flag("window") or DEFAULT_WINDOW
        since = self._fleet.window_start(window)
        totals = await self._fleet.usage(since, agent=name)
        known = name is None or bool(totals) or await self._fleet.knows(name)
        return render.usage(totals, window=window, since=since, agent=name, known=known)

    async def roster(self, req: Request) -> str:
        return render.roster(self._fleet.roster())

    async def roster_reload(self, req: Request) -> str:
        if self._reload_roster is None:
            raise CommandError(
                "there is no config file to reload: Fleetwarden runs on its defaults"
            )
        return render.roster_diff(await self._reload_roster())

    async def whoami(self, req: Request) -> str:
        return render.whoami(req.message.sender, req.role.value, req.message.connector)


def _opt_str(value: str | int | bool | None) -> str | None:
    return value if isinstance(value, str) else None


def _workdir(value: str | int | bool | None) -> Path | None:
    if not isinstance(value, str):
        return None
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise CommandError(f"--workdir must be an absolute path, got {value!r}")
    if not path.is_dir():
        raise CommandError(f"--workdir {value!r} is not an existing directory — create it first")
    return path
