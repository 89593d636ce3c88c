"""The config file's ``pipelines:`` section: named pipelines, each a mapping of stages in
order; a stage names the agent that does it (``agent:``) or the class of agent
(``role:``, an agent's ``class:``), the stages it waits for (``after:``, by default the
stage before it) and the gate its work passes before the next stage starts: ``auto``,
``approve`` (an operator says so in chat) or ``{check: COMMAND}`` (an argv list, a string
split as a shell would split words but never given to one, run in the stage's checkout).

What is checked across the section — a stage's agent or role the roster has not, an
``after:`` naming no stage of the pipeline, a loop of ``after:`` — is
:func:`pipeline_problems`; a ``check:`` gate on a stage an agent does that could not run
it (on another host, or with no sandbox) is :func:`check_gate_problems`; the config's
checks across entries run both."""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Annotated, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from fleet.schema import did_you_mean

NAME_PATTERN: Final = r"[a-z][a-z0-9-]{0,31}"
_NAME = re.compile(NAME_PATTERN)
CHECK_TIMEOUT: Final = 600.0
"""How long a ``check:`` gate's command may run, by default, in seconds."""
CHECK_TIMEOUT_MAX: Final = 3600.0
Loc = tuple[str | int, ...]


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise PydanticCustomError(
            "pipeline_name",
            "invalid name {name}: must match {pattern} (a lowercase letter, then up to 31 "
            "lowercase letters, digits or '-'; for example 'ship' or 'code')",
            {"name": repr(value[:40]), "pattern": NAME_PATTERN},
        )
    return value


Name = Annotated[str, AfterValidator(_name)]


class CheckGate(BaseModel):
    """``{check: [make, test]}``: the stage passes when the command exits 0 in its
    checkout."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    check: tuple[str, ...] = Field(
        description=(
            "The command run in the stage's checkout once its run ends, as an argv list "
            "(`[make, test]`); a string is split into words as a shell would, never run by "
            "one. Exit 0 passes the gate; anything else stops the mission."
        )
    )
    timeout: float = Field(
        default=CHECK_TIMEOUT,
        gt=0,
        le=CHECK_TIMEOUT_MAX,
        description="Seconds the command may run before it is stopped (the gate fails).",
    )

    @field_validator("check", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as exc:
                raise PydanticCustomError(
                    "check_words",
                    "cannot split {value} into words ({problem}): write it as a list, "
                    "check: [make, test]",
                    {"value": repr(value[:60]), "problem": str(exc)},
                ) from None
        return value

    @field_validator("check")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not value[0].strip():
            raise PydanticCustomError(
                "check_empty",
                "a check needs a command to run: for example check: [make, test]",
            )
        return value


def _gate_kind(value: object) -> str:
    return "check" if isinstance(value, Mapping | CheckGate) else "word"


Gate = Annotated[
    Annotated[Literal["auto", "approve"], Tag("word")] | Annotated[CheckGate, Tag("check")],
    Discriminator(_gate_kind),
]


class StageEntry(BaseModel):
    """One stage: who does it, what it waits for, and its gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent: str | None = Field(
        default=None, description="The agent of the roster that does the stage's work."
    )
    role: str | None = Field(
        default=None,
        description=(
            "Instead of `agent:`, the class of agent that does it (an agent's `class:`): "
            "the first agent of the roster of that class."
        ),
    )
    after: tuple[str, ...] | None = Field(
        default=None,
        description=(
            "The stages this one waits for, each done and through its gate; default: the "
            "stage before it (the first stage: none)."
        ),
    )
    gate: Gate = Field(
        default="auto",
        description=(
            "What the stage's work passes before the next stage starts: `auto` (its run "
            "ended well), `approve` (an operator answers `mission approve M` in chat) or "
            "`{check: COMMAND}` (the command exits 0 in the stage's checkout)."
        ),
    )

    @model_validator(mode="after")
    def _one_doer(self) -> StageEntry:
        if (self.agent is None) == (self.role is None):
            raise PydanticCustomError(
                "stage_doer",
                "a stage names who does it: either `agent: NAME` or `role: CLASS`, not "
                "both and not neither",
            )
        return self

    @property
    def doer(self) -> str:
        """``agent coder`` or ``role reviewer``: who does the stage, in words."""
        return f"agent {self.agent}" if self.agent is not None else f"role {self.role}"


class PipelineEntry(BaseModel):
    """A pipeline: its stages, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: dict[Name, StageEntry] = Field(
        description="The stages by name, in the order they are listed (`plan`, `code`, ...)."
    )

    @field_validator("stages")
    @classmethod
    def _some(cls, value: dict[str, StageEntry]) -> dict[str, StageEntry]:
        if not value:
            raise PydanticCustomError(
                "no_stages", "a pipeline needs at least one stage: stages: {plan: {agent: A}}"
            )
        return value

    def edges(self) -> dict[str, tuple[str, ...]]:
        """Each stage and the stages it waits for, the default (the stage before) filled in."""
        found: dict[str, tuple[str, ...]] = {}
        before: str | None = None
        for name, stage in self.stages.items():
            if stage.after is not None:
                found[name] = stage.after
            else:
                found[name] = () if before is None else (before,)
            before = name
        return found


def gate_words(gate: Gate) -> str:
    """``auto``, ``approve`` or ``check: make test``: a gate in words."""
    if isinstance(gate, CheckGate):
        return "check: " + shlex.join(gate.check)
    return gate


def gate_shown(gate: str | Sequence[str]) -> str:
    """A gate as the ledger keeps it (a word, or a check's argv) in words, its command cut
    to 200 characters."""
    if isinstance(gate, str):
        return gate
    words = shlex.join(gate)
    return "check: " + (words if len(words) <= 200 else words[:199] + "…")


def ordered(edges: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """The stages in an order where each comes after those it waits for (listed order
    kept where it may be); ``None`` when ``after:`` makes a loop."""
    done: list[str] = []
    left = list(edges)
    while left:
        ready = [s for s in left if all(a in done or a not in edges for a in edges[s])]
        if not ready:
            return None
        done.append(ready[0])
        left.remove(ready[0])
    return done


def _loop(edges: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One loop of ``after:`` edges, as the stages along it, each waiting for the next and
    the last the first again (empty: none)."""
    state: dict[str, int] = {}  # 1: on the path walked now, 2: no loop through it
    path: list[str] = []

    def visit(stage: str) -> list[str]:
        state[stage] = 1
        path.append(stage)
        for other in edges.get(stage, ()):
            if state.get(other) == 1:
                return [*path[path.index(other) :], other]
            if other not in state and (found := visit(other)):
                return found
        path.pop()
        state[stage] = 2
        return []

    for stage in edges:
        if stage not in state and (found := visit(stage)):
            return found
    return []


def pipeline_problems(
    pipelines: Mapping[str, PipelineEntry],
    agents: Collection[str],
    roles: Collection[str],
) -> Iterator[tuple[Loc, str]]:
    """What is wrong across the ``pipelines:`` section: a stage's agent or role not in the
    roster (``agents``, the classes ``roles``), an ``after:`` naming no stage of its
    pipeline or the stage itself, a loop of ``after:``; each with where it is."""
    for name, pipeline in pipelines.items():
        at: Loc = ("pipelines", name, "stages")
        stages = list(pipeline.stages)
        for stage_name, stage in pipeline.stages.items():
            if stage.agent is not None and stage.agent not in agents:
                yield (*at, stage_name, "agent"), _unknown("agent", stage.agent, agents)
            if stage.role is not None and stage.role not in roles:
                yield (*at, stage_name, "role"), _unknown("role", stage.role, roles)
            for i, other in enumerate(stage.after or ()):
                where = (*at, stage_name, "after", i)
                if other == stage_name:
                    yield where, f"stage {stage_name!r} waits for itself: remove it from after"
                elif other not in pipeline.stages:
                    yield where, _no_stage(name, other, stages)
        edges = {
            s: tuple(a for a in after if a in pipeline.stages and a != s)
            for s, after in pipeline.edges().items()
        }
        loop = _loop(edges)
        if loop:
            yield (
                (*at, loop[0], "after"),
                (
                    f"the stages of pipeline {name!r} wait for each other in a loop ("
                    + " waits for ".join(loop)
                    + "): none of them could ever start; remove one of those `after:`"
                ),
            )


def check_gate_problems(
    pipelines: Mapping[str, PipelineEntry], doers: Sequence[tuple[str, str | None, str]]
) -> Iterator[tuple[Loc, str]]:
    """Each ``check:`` gate on a stage one of whose possible agents could not run it:
    ``doers`` are the roster's agents, each ``(name, class, why it cannot: "" when it
    can)`` — a check runs the agent's code on this machine, sandboxed as that agent."""
    for name, pipeline in pipelines.items():
        for stage_name, stage in pipeline.stages.items():
            if not isinstance(stage.gate, CheckGate):
                continue
            unfit = [
                (agent, why)
                for agent, role, why in doers
                if why and (agent == stage.agent or (role is not None and role == stage.role))
            ]
            if unfit:
                agent, why = unfit[0]
                yield (
                    ("pipelines", name, "stages", stage_name, "gate"),
                    f"stage {stage_name!r} has a check: gate, and its agent {agent!r} {why}: "
                    "a check runs the agent's code on this machine, in the agent's sandbox; "
                    "use `gate: approve` or `gate: auto`, or an agent on `host: local` "
                    "with a sandbox",
                )


def _unknown(kind: str, value: str, known: Collection[str]) -> str:
    listed = ", ".join(sorted(known)) or "none"
    where = "agent of the roster is called" if kind == "agent" else "agent of the roster has class"
    guess = did_you_mean(value, known)
    if guess is not None:
        return f"no {where} {value!r} — did you mean {guess!r}? (here: {listed})"
    fix = "add the agent to the roster" if kind == "agent" else "give an agent `class: ...`"
    return f"no {where} {value!r}: {fix}, or name another (here: {listed})"


def _no_stage(pipeline: str, value: str, stages: list[str]) -> str:
    listed = ", ".join(stages)
    guess = did_you_mean(value, stages)
    if guess is not None:
        return f"pipeline {pipeline!r} has no stage {value!r} — did you mean {guess!r}? ({listed})"
    return f"pipeline {pipeline!r} has no stage {value!r}: after names its stages ({listed})"


def gate_of(found: PipelineEntry, stage: str) -> tuple[str | Sequence[str], float]:
    """A stage's gate as recorded: ``"auto"``, ``"approve"`` or a check's argv; its time."""
    gate = found.stages[stage].gate
    if isinstance(gate, CheckGate):
        return gate.check, gate.timeout
    return gate, 0.0


def no_pipeline(name: str, every: Mapping[str, PipelineEntry]) -> str:
    """The refusal of pipeline ``name``, which ``every`` (the config's) has not."""
    named = name if len(name) <= 40 else name[:37] + "..."
    if not every:
        return f"no pipeline {named!r}: the config has no `pipelines:` section (see the guide)"
    listed = ", ".join(sorted(every))
    guess = did_you_mean(name, every)
    if guess is not None:
        return f"no pipeline {named!r} — did you mean {guess!r}? (pipelines: {listed})"
    return f"no pipeline {named!r}: the config's pipelines are {listed}"
