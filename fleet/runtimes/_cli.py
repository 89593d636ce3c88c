"""What the real agent CLI runtimes share: the shape of a plan and a follow-up, reading
their JSON-lines output, and checking the values that end up on their command lines.

Every value placed in an argv here either sits after ``--`` (the CLI takes no more
options), is an option's value, or has passed a strict pattern, so that nothing an
operator types can turn into a flag.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, LaunchPlan
from fleet.runtimes.base import RuntimeContext, base_env
from fleet.transcript.events import PlainText, StreamParser

# UUIDs (Claude, Codex, pi) and opencode's ``ses_…`` ids; never starts with "-".
_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# "sonnet", "claude-opus-4-8[1m]", "anthropic/claude-sonnet-4-5", "sonnet:high".
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+\[\]-]{0,127}")


class CliRuntime(ABC):
    """An agent CLI run headless (one turn per run, a follow-up resumes its session) or
    as its TUI on a terminal. A subclass says only what is its own: its command lines,
    its environment and config files, and where its output names the session."""

    name: str
    # The protocol of a live session (:mod:`fleet.sessions`) its headless runs speak: one
    # process serves every turn, each written to its stdin (its argv carries no prompt).
    # ``None``: one headless run per turn.
    session_protocol: str | None = None

    def __init__(self, executable: str | None = None) -> None:
        self._exe = self.name if executable is None else executable

    def plan(self, spec: AgentSpec, ctx: RuntimeContext) -> LaunchPlan:
        argv = self.tui_argv(spec) if ctx.tty else self.headless_argv(spec)
        return self._launch_plan(spec, ctx, argv, spec.prompt)

    def follow_up(
        self, spec: AgentSpec, ctx: RuntimeContext, session: str | None, text: str
    ) -> LaunchPlan | None:
        if ctx.tty:
            return None  # the TUI is running: the text is typed into it
        return self._launch_plan(spec, ctx, self.resume_argv(spec, session, text), text)

    def session_id(self, output: str) -> str | None:
        return last_session(output, self.event_session)

    def parser(self, tty: bool) -> StreamParser:
        return PlainText() if tty else self.stream_parser()

    def stream_parser(self) -> StreamParser:
        """A new reader of this CLI's headless JSON stream."""
        return PlainText()

    @abstractmethod
    def tui_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        """The interactive UI, given ``spec.prompt`` as its first message if there is one."""

    @abstractmethod
    def headless_argv(self, spec: AgentSpec) -> tuple[str, ...]:
        """One headless turn on ``spec.prompt`` (see :func:`required_prompt`)."""

    @abstractmethod
    def resume_argv(self, spec: AgentSpec, session: str | None, text: str) -> tuple[str, ...]:
        """A headless turn on ``text`` in ``session`` (see :func:`checked_session`), or in
        the newest session when none is known."""

    @abstractmethod
    def event_session(self, event: Mapping[str, Any]) -> object:
        """The session id that one output event carries, if any."""

    @abstractmethod
    def setup(self, spec: AgentSpec, ctx: RuntimeContext) -> tuple[dict[str, str], dict[Path, str]]:
        """The CLI's own variables, on top of :func:`~fleet.runtimes.base_env`, and the
        config files to write before it starts."""

    def skills_folder(self, ctx: RuntimeContext) -> Path | None:
        """Where the CLI reads its skills in the agent's home, which Fleetwarden fills
        whole at each launch; ``None``: none."""
        return None

    def fresh_folders(self, ctx: RuntimeContext) -> tuple[Path, ...]:
        """The folders of the agent's home each launch empties first
        (:attr:`~fleet.model.LaunchPlan.fresh`): its skills folder, by default."""
        return tuple(f for f in (self.skills_folder(ctx),) if f is not None)

    def _launch_plan(
        self, spec: AgentSpec, ctx: RuntimeContext, argv: tuple[str, ...], prompt: str | None
    ) -> LaunchPlan:
        env = base_env(spec, ctx)
        own_env, files = self.setup(spec, ctx)
        env.update(own_env)
        live = None if ctx.tty else self.session_protocol
        return LaunchPlan(
            argv=argv,
            env=env,
            cwd=ctx.workdir,
            takes_input=ctx.tty or live is not None,
            files=files,
            fresh=self.fresh_folders(ctx),
            session=live,
            prompt=prompt if live is not None else None,
        )


def json_events(output: str) -> Iterator[Mapping[str, Any]]:
    """The JSON objects among ``output``'s lines; other lines (stderr, markers) are skipped."""
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def session_or_none(value: object) -> str | None:
    """``value`` if it looks like a session id a CLI printed, else ``None``."""
    if isinstance(value, str) and _SESSION_ID.fullmatch(value):
        return value
    return None


def last_session(output: str, pick: Callable[[Mapping[str, Any]], object]) -> str | None:
    """The last session id that ``pick(event)`` finds in ``output``: the newest run's."""
    found = None
    for event in json_events(output):
        session = session_or_none(pick(event))
        if session is not None:
            found = session
    return found


def checked_session(session: str) -> str:
    """``session`` for an argv, refused unless it has the shape of a session id."""
    if session_or_none(session) is None:
        raise LaunchFailed(f"cannot resume session {session!r}: not a session id")
    return session


def checked_model(spec: AgentSpec) -> str | None:
    """The spec's model for an argv: a name, never something that reads as a flag."""
    if spec.model is None:
        return None
    if not _MODEL.fullmatch(spec.model):
        raise LaunchFailed(
            f"{spec.name}: model {spec.model!r} is not a model name (letters, digits and "
            "._:/@+[]- only, not starting with a dash)"
        )
    return spec.model


def required_prompt(spec: AgentSpec, runtime: str) -> str:
    """The prompt of a headless run, which these CLIs cannot start without."""
    if not spec.prompt:
        raise LaunchFailed(
            f"{spec.name}: a headless {runtime} run needs a prompt — give the agent one, "
            "or run it on a terminal backend (tmux) to start its interactive UI"
        )
    return spec.prompt


def with_v1(url: str) -> str:
    """``url`` ending in ``/v1``, as OpenAI-style clients want their base URL."""
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def without_v1(url: str) -> str:
    """``url`` without a trailing ``/v1``, for clients that add it themselves."""
    return url.rstrip("/").removesuffix("/v1")
