"""How a run went, as its output tells it: the events of one run read into the facts its
summary needs (the agent's last message, the CLI's own end, its troubles), and how it ended
said in words that name the fix."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from fleet.transcript.events import (
    AgentEvent,
    ErrorKind,
    Malformed,
    RunEnded,
    Said,
    ToolUsed,
    Trouble,
    Waiting,
)


class Outcome(enum.StrEnum):
    """How a run ended, as its summary says it."""

    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    TIMED_OUT = "killed by timeout"
    RESTARTED = "stalled and restarted"
    CUT_OFF = "stopped by its budget"
    LOST = "ended while Fleetwarden was away"


@dataclass(slots=True)
class RunReading:
    """The facts of one run's events, gathered as they are read (:meth:`add`)."""

    last_message: str | None = None
    ended: RunEnded | None = None
    troubles: list[Trouble] = field(default_factory=list)
    waiting: str | None = None
    tool_calls: int = 0
    unreadable: int = 0

    def add(self, event: AgentEvent) -> None:
        match event:
            case Said(text=text) if text.strip():
                self.last_message = text.strip()
            case ToolUsed():
                self.tool_calls += 1
            case Trouble():
                if len(self.troubles) < 20:
                    self.troubles.append(event)
            case Waiting(reason=reason):
                self.waiting = reason
            case RunEnded():
                self.ended = event
                if event.result and event.result.strip() and event.ok:
                    self.last_message = event.result.strip()
            case Malformed():
                self.unreadable += 1
            case _:
                pass

    @property
    def trouble(self) -> Trouble | None:
        """The trouble that says most about a failure: an auth, rate-limit or network
        one before any other, the last of its kind."""
        for kind in (ErrorKind.AUTH, ErrorKind.RATE_LIMIT, ErrorKind.NETWORK):
            found = [t for t in self.troubles if t.kind is kind]
            if found:
                return found[-1]
        return self.troubles[-1] if self.troubles else None


def why(
    outcome: Outcome,
    reading: RunReading,
    *,
    runtime: str,
    exit_reason: str,
    ending_reason: str | None,
    has_account: bool,
) -> str:
    """How the run ended, in words: what went wrong and, when there is one, the fix."""
    if outcome is Outcome.FINISHED:
        return exit_reason
    if outcome in (Outcome.STOPPED, Outcome.TIMED_OUT, Outcome.RESTARTED, Outcome.CUT_OFF):
        return ending_reason or exit_reason
    trouble = reading.trouble
    if trouble is not None:
        return trouble_in_words(trouble, runtime=runtime, has_account=has_account)
    if reading.waiting is not None:
        return f"it stopped waiting for input: {one_line(reading.waiting)}"
    if reading.ended is not None and not reading.ended.ok and reading.ended.result:
        return f"{one_line(reading.ended.result)} ({exit_reason})"
    return exit_reason


def trouble_in_words(trouble: Trouble, *, runtime: str, has_account: bool) -> str:
    """One line for a CLI's error, naming what to do about it."""
    said = one_line(trouble.reason)
    if trouble.kind is ErrorKind.AUTH:
        if not has_account:
            return (
                f"not logged in: this agent has no credentials — add an account for "
                f"{runtime}, see docs/accounts.md ({runtime} said: {said})"
            )
        return (
            f"the provider refused its account's credentials ({runtime} said: {said}) — "
            "`fleetwarden accounts check` tells which and why"
        )
    if trouble.kind is ErrorKind.RATE_LIMIT:
        return (
            f"rate limited by the provider ({runtime} said: {said}) — `accounts` shows its windows"
        )
    if trouble.kind is ErrorKind.NETWORK:
        return f"could not reach the provider ({runtime} said: {said})"
    return f"{runtime} reported an error: {said}"


def one_line(text: str, limit: int = 300) -> str:
    """``text``'s first non-blank line, cut to ``limit`` characters."""
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
