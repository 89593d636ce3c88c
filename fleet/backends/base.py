"""The backend interface: where an agent's process lives. Fleet core never branches on kind."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from fleet.model import AgentSpec, ExitInfo, LaunchPlan, RunHandle


class Backend(Protocol):
    """Starts, watches, feeds and stops agent processes."""

    @property
    def name(self) -> str: ...

    @property
    def tty(self) -> bool:
        """Whether agents run at a real terminal (so runtimes start their interactive UI
        and input is typed), rather than headless with piped input."""
        ...

    async def launch(self, plan: LaunchPlan, run_dir: Path, log_path: Path) -> RunHandle:
        """Start ``plan``; its output is appended to ``log_path``. Raises LaunchFailed."""
        ...

    def is_alive(self, handle: RunHandle) -> bool:
        """Whether the process behind ``handle`` (and not a recycled pid) still runs."""
        ...

    async def wait(self, handle: RunHandle) -> ExitInfo:
        """Return when the process has ended, with how it ended. Works for processes
        launched by an earlier Fleetwarden too."""
        ...

    async def stop(self, handle: RunHandle, *, grace: float, force: bool = False) -> ExitInfo:
        """End the agent and everything it started: SIGTERM, then SIGKILL after ``grace``
        seconds (at once with ``force``)."""
        ...

    async def freeze(self, handle: RunHandle) -> None:
        """Pause every process of the run, and return once they are paused: the kernel's
        cgroup freezer where the run has a group it can freeze, else SIGSTOP to each."""
        ...

    async def thaw(self, handle: RunHandle) -> None:
        """Continue every process of the run :meth:`freeze` paused (thaw, and SIGCONT)."""
        ...

    async def send_input(self, handle: RunHandle, text: str) -> None:
        """Deliver one line of input. Raises AgentNotRunning if nobody reads it."""
        ...

    async def read_output(self, handle: RunHandle, lines: int) -> list[str]:
        """The last ``lines`` lines the agent wrote."""
        ...

    async def snapshot(self, handle: RunHandle) -> str:
        """What the agent's screen shows now (a terminal's visible rows; without a
        terminal, the end of its output), for watching it."""
        ...

    async def sessions(self) -> set[str]:
        """The agent sessions this backend can see right now, launched by us or not (to
        report ones the ledger does not know); empty if it has no such notion."""
        ...


def backend_key(spec: AgentSpec) -> str:
    """The backend that runs ``spec``: its own (``tmux``) here, ``tmux@HOST`` on a host."""
    return spec.backend if spec.host == "local" else f"{spec.backend}@{spec.host}"
