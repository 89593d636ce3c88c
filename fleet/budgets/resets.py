"""How sure a reset time is, and the words shown beside it: ``resets 18:00 (provider)``. The
``budget`` table, the pacing report and its chart, ``accounts`` and the dashboard all say it
so.

A budget's window ends — resets — at a time someone gave, or that Fleetwarden placed. Its
**confidence** (:class:`~fleet.ledger.records.budgets.Confidence`) says who:

* ``provider`` — the provider said it: the budget's window end is the reset of a fresh
  provider reading (an account's quota window, or the quota headers of a budget naming an
  ``account``, fresher than :data:`~fleet.budgets.pacing.readings.SIGNAL_FRESHNESS`). An
  account's quota window shown in ``accounts`` is always the provider's word when it has a
  reset.
* ``user`` — the user set it: an explicit ``reset_at`` (config or ``budget set
  --reset-at``: a fixed window's end, or where a rolling window repeats from) or a
  calendar window the user chose (``daily``, ``weekly``, ``monthly``: midnight in the
  configured timezone). Whoever wrote such a window may say how sure it is instead
  (``confidence:`` in the config, ``budget set --confidence``): copied from the provider's
  page (``provider``), a guess (``estimated``), or not known (``unknown``); that word is
  the one shown.
* ``estimated`` — a guess at the provider's reset: a budget on an account or provider (it
  mirrors a quota the provider keeps) whose rolling window nobody placed (``5h``, ``7d``
  without ``reset_at``) and no fresh provider reading places, so Fleetwarden lays it back
  to back from the UTC epoch. The same window on a budget of Fleetwarden's own (an agent,
  a group, global) is the window Fleetwarden enforces, so its reset is exact: ``user``,
  the config's window.
* ``unknown`` — no reset is known: a fixed window whose ``reset_at`` has passed (the next
  one is for the provider or an operator to give), an account window the provider gave no
  reset for.

Pure: the window, its end and ``now`` are passed in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from fleet.accounts.quota import QuotaWindow
from fleet.ledger.records.budgets import Confidence, WindowKind, WindowSpec

RESET_TAGS: Final = {
    Confidence.PROVIDER: "provider",
    Confidence.USER: "set by you",
    Confidence.ESTIMATED: "estimated",
    Confidence.UNKNOWN: "unknown",
}
"""The short tag shown in brackets after a reset time: ``resets 18:00 (provider)``."""

_CALENDAR: Final = (WindowKind.DAILY, WindowKind.WEEKLY, WindowKind.MONTHLY)


def reset_confidence(
    window: WindowSpec,
    *,
    end: datetime,
    now: datetime,
    provider_said: bool = False,
    mirrors_provider: bool = False,
) -> Confidence:
    """How sure the reset at ``end`` of a budget with ``window`` is, at ``now``.

    ``provider_said``: ``end`` is the reset of a fresh provider reading;
    ``mirrors_provider``: the budget is on an account or provider, so a window nobody placed
    guesses the provider's. A reset already past is ``unknown`` whoever gave it; otherwise
    see the module's rules, in order.
    """
    if end <= now:
        return Confidence.UNKNOWN
    if provider_said:
        return Confidence.PROVIDER
    if window.reset_at is not None or window.kind in _CALENDAR:
        return window.confidence
    return Confidence.ESTIMATED if mirrors_provider else Confidence.USER


def window_confidence(window: QuotaWindow) -> Confidence:
    """How sure an account's quota window's reset is: the provider's word, or unknown when
    it gave none."""
    return Confidence.PROVIDER if window.resets_at is not None else Confidence.UNKNOWN


def reset_tag(confidence: Confidence) -> str:
    """``provider``, ``set by you``, ``estimated`` or ``unknown``."""
    return RESET_TAGS[confidence]


def resets(when: str | None, confidence: Confidence, *, passed: bool = False) -> str:
    """``resets 18:00 (provider)``, ``resets Mon 00:00 (set by you)``; ``reset unknown``
    without a time; ``reset 09:00 passed, next unknown`` for a window whose end has gone by
    with no new one given."""
    if when is None:
        return "reset unknown"
    if passed:
        return f"reset {when} passed, next unknown"
    return f"resets {when} ({reset_tag(confidence)})"
