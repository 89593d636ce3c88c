"""The ledger's schema steps of planned spend (26 on): each run's quote, and the asks a
run or a budget at its cap puts to its operators."""

from __future__ import annotations

from fleet.ledger.database.steps.migration import Migration

SPEND: tuple[Migration, ...] = ()
