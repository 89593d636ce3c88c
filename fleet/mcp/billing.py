"""The billing of priced MCP calls: a call held as a model request is, by a metering
policy (:class:`PolicyBilling`), and the billing read late, at each call, from where the app
opens it (:class:`LateBilling`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fleet.mcp.audits import PROVIDER, model_of
from fleet.mcp.hooks import Billing
from fleet.metering.policy import Estimate, Hold, Policy, Refuse, RequestInfo, Reservation
from fleet.names import AgentName
from fleet.timing.clock import Clock


@dataclass(frozen=True, slots=True)
class _Claim:
    policy: Policy
    agent: str
    reservation: Reservation | None


class PolicyBilling:
    """A priced MCP call held as a model request is (:class:`~fleet.mcp.hooks.Billing`): the
    policy's verdict and its reservation of the call's price, at once (a call held by a
    budget's queue or a cap that asks is refused, saying why: the agent may call again),
    the reservation settled at the price when the call ends (a run's cap charged, the
    budgets' live spend counted), or let go when it was never relayed. ``spent``: told the
    dollars too, when ``policy`` does not bring the quote's hold down itself."""

    def __init__(
        self,
        policy: Callable[[], Policy],
        clock: Clock,
        spent: Callable[[str, int, float | None], None] | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._spent = spent

    def claim(self, agent: str, server: str, usd: float) -> object | str:
        model = model_of(server)
        info = RequestInfo(AgentName(agent), PROVIDER, "", model, False, self._clock.now())
        policy = self._policy()
        said = policy.decide(info)
        if isinstance(said, Refuse | Hold):
            return _refused(server, said)
        estimate = Estimate(tokens=0, usd=usd, model=model, worst_tokens=0, worst_usd=usd)
        held = policy.reserve(info, estimate)
        if isinstance(held, Refuse):
            return _refused(server, held)
        return _Claim(policy, agent, held)

    def settle(self, claim: object, usd: float | None) -> None:
        if not isinstance(claim, _Claim):
            return
        if claim.reservation is not None:
            claim.policy.settle(claim.reservation, 0, usd)
        if self._spent is not None and usd is not None:
            self._spent(claim.agent, 0, usd)


def _refused(server: str, said: Refuse | Hold) -> str:
    held = " for now (call again later)" if isinstance(said, Hold) else ""
    return f"a call of the priced MCP server {server} is refused{held}: {said.reason}"


class LateBilling:
    """The billing ``opened`` finds, read at each call (the app opens it once the fleet is
    made, after the door): none yet, nothing is held or billed but the audit's price."""

    def __init__(self, opened: Callable[[], Billing | None]) -> None:
        self._opened = opened

    def claim(self, agent: str, server: str, usd: float) -> object | str:
        billing = self._opened()
        if billing is None:
            return None
        inner = billing.claim(agent, server, usd)
        return inner if isinstance(inner, str) else _LateClaim(billing, inner)

    def settle(self, claim: object, usd: float | None) -> None:
        if isinstance(claim, _LateClaim):
            claim.billing.settle(claim.inner, usd)


@dataclass(frozen=True, slots=True)
class _LateClaim:
    billing: Billing
    inner: object
