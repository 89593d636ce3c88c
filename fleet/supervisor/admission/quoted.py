"""A launch's quote at its admission (:mod:`fleet.budgets.quoting`): the runtime, model and
cap the run will really have — the agent's settings under what the request overrides, after
the budgets' fallback moved it — its quote from the agent's earlier runs there, and whether
it is under the launch's limit (the request's ``quote_under``, else the agent's own)."""

from __future__ import annotations

from typing import Protocol

from fleet.budgets.quoting.quote import fits_under
from fleet.budgets.quoting.service import Quoting
from fleet.budgets.quoting.words import Asker, over_limit
from fleet.errors import FleetError
from fleet.ledger.records.quotes import Quote
from fleet.model import AgentSpec
from fleet.supervisor.admission.request import ASKED_BY_A_PERSON, LaunchRequest


class Specs(Protocol):
    """The agents' settings, as the supervisor has them."""

    async def spec(self, name: str) -> AgentSpec: ...


async def quoted(
    request: LaunchRequest, specs: Specs, quoting: Quoting
) -> tuple[Quote, str | None]:
    """``request``'s quote, and why it is not started when it is over its limit (``None``:
    no limit, or under it)."""
    try:
        spec: AgentSpec | None = await specs.spec(request.agent)
    except FleetError:  # nobody knows it yet: an ad hoc agent of the defaults
        spec = None
    limit = request.quote_under
    if spec is None:
        runtime, model = request.runtime or quoting.default_runtime, request.model
        cap = request.run_budget
    else:
        runtime = request.runtime or spec.runtime
        same_cli = runtime == spec.runtime
        model = request.model if request.model is not None else (spec.model if same_cli else None)
        cap = request.run_budget if request.run_budget is not None else spec.run_budget
        limit = limit if limit is not None else spec.quote_under
    quote = await quoting.quote(request.agent, runtime, model, cap)
    if limit is None or fits_under(quote, limit):
        return quote, None
    asker: Asker = "config"
    if request.origin in ASKED_BY_A_PERSON:
        asker = "chat" if request.quote_under is not None else "roster"
    unlimited = spec is None or spec.quote_under is None  # the flag left out: no limit
    said = over_limit(quote, limit, asker, priced=quoting.priced(model), unlimited=unlimited)
    return quote, said
