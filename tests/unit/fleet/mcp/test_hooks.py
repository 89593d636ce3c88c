"""The hooks: every ask is asked until one denies, an ask that fails denies (fail closed),
and a failing audit listener does not keep the others from hearing."""

from __future__ import annotations

from fleet.mcp.hooks import ALLOW, Ask, McpAudit, McpCall, McpHooks, Outcome, Verdict

CALL = McpCall("coder", "tracker", "echo", {"text": "hi"})


async def test_no_ask_allows_and_the_first_denial_wins() -> None:
    """Without asks a call is allowed; with asks, the first that says no is the verdict."""
    asked: list[str] = []

    def ask(name: str, verdict: Verdict) -> Ask:
        async def answer(call: McpCall) -> Verdict:
            asked.append(name)
            return verdict

        return answer

    assert await McpHooks().ask(CALL) == ALLOW
    hooks = McpHooks(asks=(ask("a", ALLOW), ask("b", Verdict(False, "no")), ask("c", ALLOW)))
    assert await hooks.ask(CALL) == Verdict(False, "no")
    assert asked == ["a", "b"]


async def test_an_ask_that_fails_denies() -> None:
    """An ask raising denies the call, said so."""

    async def broken(call: McpCall) -> Verdict:
        raise RuntimeError("chat is down")

    verdict = await McpHooks(asks=(broken,)).ask(CALL)
    assert not verdict.allowed and "could not be asked" in verdict.why


async def test_a_failing_audit_listener_does_not_silence_the_others() -> None:
    """Each listener hears the record even when one before it fails."""
    heard: list[McpAudit] = []

    async def broken(record: McpAudit) -> None:
        raise RuntimeError("ledger down")

    async def keeper(record: McpAudit) -> None:
        heard.append(record)

    record = McpAudit("coder", "tracker", "tools/call", "echo", Outcome.OK, 0.1, 10, 20, "{}", "ok")
    await McpHooks(audits=(broken, keeper)).audit(record)
    assert heard == [record]
