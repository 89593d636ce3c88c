"""The ``fallback:`` of an agent entry: the runtime its next run starts on when its budget
turns the run away, the last step of the ladder after the model downgrades.

:class:`FallbackEntry` is the schema; :meth:`FallbackEntry.to_fallback` gives the
:class:`~fleet.model.Fallback` the agent's :class:`~fleet.model.AgentSpec` carries.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from fleet.accounts.schema import AccountRef
from fleet.model import Fallback
from fleet.schema import check_known, schema_context


class FallbackEntry(BaseModel):
    """Another runtime the agent's next run may start on when its budget turns it away."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: str = Field(description="The runtime of the fallback run, e.g. `codex`.")
    account: AccountRef | None = Field(
        default=None,
        description="The account or pool it runs on. Default: that provider's default.",
    )
    model: str | None = Field(
        default=None, min_length=1, description="Its model. Default: the runtime's own."
    )

    @field_validator("runtime")
    @classmethod
    def _check_runtime(cls, value: str, info: ValidationInfo) -> str:
        return check_known("runtime", value, schema_context(info).runtimes)

    def to_fallback(self) -> Fallback:
        return Fallback(self.runtime, self.account, self.model)
