"""``enforce: strict``: the settings that take an agent out of Fleetwarden's hands — its
spend unmetered (``metering: {enabled: false}``), no sandbox (``sandbox: none``), the host's
whole network (``egress: open``) — refused wherever the config is read (at start, by
``check-config``, by a ``roster reload`` from chat or SIGHUP), each refusal naming the agent,
the line and the fix. With ``enforce: warn`` (the default) they only warn, as ever.

``enforce`` itself is read once, at start: a reload that changes it is refused
(:func:`changed_refusal`), so turning strictness off takes an edit of the file and a restart.
"""

from __future__ import annotations

from collections.abc import Iterator

from bot.config.checks.problems import ConfigProblem, Locator
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile

STRICT = "strict"
WHY = "which `enforce: strict` refuses"


def strict_problems(
    document: ConfigFile, locate: Locator, file_name: str, roster: RosterSource
) -> Iterator[ConfigProblem]:
    """Under ``enforce: strict``: metering off, each agent or ``defaults`` with no sandbox or
    open egress, and each stdio MCP server with no sandbox, on the line that sets it.
    Nothing under ``enforce: warn``."""
    if document.enforce != STRICT:
        return
    names = [agent.name for agent in document.agents]
    if not document.metering.enabled:
        line, path, _ = locate(("metering", "enabled"))
        who = f"agents {', '.join(names)}" if names else "every agent"
        yield ConfigProblem(
            file_name,
            line,
            path,
            f"metering is off, {WHY}: {who} would spend unmetered and unbudgeted; "
            "remove `enabled: false` (or set `metering: {enabled: true}`)",
        )
    for key, bad, fix in (("sandbox", "none", "bwrap"), ("egress", "open", "locked")):
        taking = [a.name for a in document.agents if getattr(a, key) is None]
        if getattr(document.defaults, key) == bad:
            line, path, _ = locate(("defaults", key))
            heirs = f" (agents taking it: {', '.join(taking)})" if taking else ""
            yield ConfigProblem(
                file_name,
                line,
                path,
                f"{key}: {bad} for every agent that sets none, {WHY}{heirs}; "
                f"set `{key}: {fix}` here",
            )
        for index, agent in enumerate(document.agents):
            if getattr(agent, key) == bad:
                line, path, _ = roster.locate(("agents", index, key))
                yield ConfigProblem(
                    roster.file_name,
                    line,
                    path,
                    f"agent {agent.name!r} has {key}: {bad}, {WHY}; set `{key}: {fix}` for it "
                    f"(or remove the line: the default is {fix})",
                )
    for name, server in document.mcp.items():
        if server.command is not None and server.sandbox == "none":
            line, path, _ = locate(("mcp", name, "sandbox"))
            yield ConfigProblem(
                file_name,
                line,
                path,
                f"MCP server {name} has sandbox: none, {WHY}: it would run as Fleetwarden's "
                "user with the host's view, its state dir and every agent's workdir; remove "
                "the line (the default, bwrap, runs it in a sandbox of its own)",
            )


def changed_refusal(started: str, written: str) -> str | None:
    """Why a reload is refused when the file's ``enforce`` differs from the one Fleetwarden
    started with; ``None`` when it does not."""
    if started == written:
        return None
    return (
        f"enforce is {started} since start and the file now says {written}: restart to change "
        "enforce (a reload never changes it); undo that edit to reload the rest"
    )
