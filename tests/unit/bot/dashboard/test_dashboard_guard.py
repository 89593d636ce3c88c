"""What an agent chose reaches the dashboard guarded: its secret sent as a model's or a tool's
name is redacted on every view (and the ``/metrics`` sums), a bidi override shows as its
code point, a request nobody served is no model, and ``/metrics`` keeps a bounded number of
model labels however many names agents send."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.dashboard.pages.metrics import MODEL_LABELS, OTHER, Metrics, Snapshot
from bot.dashboard.pages.views import Views
from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.ledger.records.approvals import Ask
from fleet.ledger.stores.operators.dashboard import UsageSum
from fleet.ledger.stores.spend.usage_rows import NOT_SERVED
from fleet.metering.counting.events import Outcome, Tokens
from fleet.redaction.known import Secret
from fleet.redaction.redactor import Redactor
from fleet.timing.clock import ManualClock
from tests.unit.bot.dashboard.views_rig import views_over
from tests.unit.fleet.ledger.test_ledger_metering import event

TOKEN = "fake-deploy-" + "0123456789abcdef0123"
SHOWN = "[redacted: DEPLOY_TOKEN]"
HIDDEN_X = f"[hidden characters taken out] x{SHOWN}"  # a zero-width space went


class _Held:
    def known_secrets(self) -> Iterable[Secret]:
        return (Secret(TOKEN, "DEPLOY_TOKEN"),)


def _views(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> Views:
    return views_over(ledger, clock, tmp_path, redact=Redactor([_Held()]).redact)


async def test_a_secret_sent_as_a_model_or_a_tool_name_is_on_no_view(
    ledger: Ledger, clock: ManualClock, tmp_path: Path
) -> None:
    """The agent's own secret_env value as the model it asked for (served, as a lenient
    upstream echoes it) and as an ask's tool: redacted on /usage, /approvals and the
    /metrics sums; a bidi override in the ask's subject shows as [U+202E], on one line."""
    await ledger.metering.record_metering(
        [
            event(at=clock.now(), requested_model=TOKEN, served_model=TOKEN),
            event(at=clock.now(), requested_model=f"x\u200b{TOKEN}", served_model=None),
        ],
        [],
    )
    approvals = Approvals(ledger.approvals, clock)
    await approvals.open(
        agent="coder-1",
        run_id=7,
        channel="hook",
        ask=Ask("a", TOKEN, "cat notes\u202etxt.exe\n✅ Allowed once by ann"),
        wait_seconds=600.0,
        max_open=3,
        starter=None,
    )
    views = _views(ledger, clock, tmp_path)
    usage = await views.usage()
    assert {row["model"] for row in usage["rows"]} == {SHOWN, HIDDEN_X}
    assert set(usage["by"]["model"]) == {SHOWN, HIDDEN_X}
    sums, _ = await views.usage_after(0)
    assert {u.model for u in sums} == {SHOWN, HIDDEN_X}
    (ask,) = (await views.approvals())["approvals"]
    assert ask["tool"] == SHOWN
    assert ask["subject"] == "cat notes[U+202E]txt.exe ⏎ ✅ Allowed once by ann"
    everything = repr(usage) + repr(sums) + repr(await views.approvals())
    assert TOKEN not in everything and "\u202e" not in everything


async def test_a_request_nobody_served_is_no_model(ledger: Ledger, clock: ManualClock) -> None:
    """Refused by the proxy, or by the provider as an unknown model: the name the agent
    made up is no model of the sums, and not the agent's latest model either."""
    await ledger.metering.record_metering(
        [event(at=clock.now(), requested_model="claude-haiku-4-5")], []
    )
    refused = event(
        at=clock.now(),
        served_model=None,
        tokens=Tokens(),
        cost_usd=None,
        priced=False,
    )
    await ledger.metering.record_metering(
        [
            replace(refused, requested_model="made-up-1", status=403, outcome=Outcome.REFUSED),
            replace(
                refused, requested_model="made-up-2", status=404, outcome=Outcome.UPSTREAM_ERROR
            ),
        ],
        [],
    )
    sums = await ledger.dashboard.usage_sums()
    assert sorted((u.model, u.requests) for u in sums) == [
        (NOT_SERVED, 2),
        ("claude-sonnet-4-20250514", 1),
    ]
    models = await ledger.dashboard.last_models(clock.now())
    assert models["coder-1"][1] == "claude-sonnet-4-20250514"


async def test_metrics_keep_a_bounded_number_of_model_labels() -> None:
    """600 served models with fresh names: the first MODEL_LABELS get a label each, the
    rest count under (other); every request is still counted."""
    fresh = [
        UsageSum("coder-1", "local", "anthropic", f"fresh-{n}", "", 1, 10, 1, 0, 0, 0.0)
        for n in range(600)
    ]
    batches = iter([(fresh[:300], 300), (fresh[300:], 600)])

    async def usage(after: int) -> tuple[list[UsageSum], int]:
        return next(batches, ([], after))

    metrics = Metrics()
    await metrics.render(Snapshot(), usage)
    text = (await metrics.render(Snapshot(), usage)).decode()
    requests = [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "fleetwarden_model_requests_total"
    ]
    models = {s.labels["model"] for s in requests}
    assert len(models) == MODEL_LABELS + 1 and OTHER in models
    assert sum(s.value for s in requests) == 600
    assert next(s.value for s in requests if s.labels["model"] == OTHER) == 600 - MODEL_LABELS
    assert len(text) < 100_000
