"""The app's ledger phase: the ledger, opened and migrated, its register's words redacted
as they are stored (:func:`redact_register` the ones stored before); the notifier, which
finds threads in it; and the agents' asks (:class:`~fleet.approvals.service.Approvals`)
kept there."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from bot.app import assembly as wiring
from bot.app.grounds import Grounds
from bot.app.stops import Stop
from bot.chat.notifier import Notifier
from bot.config import Config
from fleet.approvals.service import Approvals
from fleet.ledger import Ledger
from fleet.redaction.known import EnvSecrets
from fleet.redaction.redactor import Redactor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Ledgered:
    """What the ledger phase made."""

    ledger: Ledger
    notifier: Notifier
    approvals: Approvals


async def open_ledger(at: Grounds) -> Ledgered:
    """The notifier posts through the running connectors. News at boot is held until they
    run (the notifier's :meth:`~bot.chat.notifier.Notifier.release`)."""
    ledger = await Ledger.connect(wiring.ledger_location(at.cfg, at.environ), at.clock)
    at.stops.add(Stop.LEDGER, ledger.close)
    redact_register_with(ledger, at.redactor, at.cfg, at.environ)
    notifier = Notifier(ledger.chat, at.serving.running)
    at.stops.add(Stop.ORDERING, notifier.ordering.drain)
    approvals = Approvals(ledger.approvals, at.clock)
    notifier.hold()
    return Ledgered(ledger, notifier, approvals)


def redact_register_with(
    ledger: Ledger, redactor: Redactor, config: Config, environ: Mapping[str, str]
) -> None:
    """A task's and a mission's words are redacted as they are stored, with every secret
    this Fleetwarden holds (an agent's secret_env value too): no reader of the ledger needs
    them to redact what it shows. A row is marked so, for the secrets ``config`` names,
    only when the redactor knows each one. Called at start, and with the new config at each
    reload (the redactor learns the variables it names anew; :func:`redact_register` then
    redacts again the rows marked before it named them)."""
    names = config.secret_env_names()
    redactor.add_source(EnvSecrets(names, environ))
    unset = wiring.unset_secrets(config, environ)
    ledger.tasks.redact_with(redactor.redact, names=names, whole=not unset)
    ledger.missions.redact_with(redactor.redact, names=names, whole=not unset)
    ledger.stages.redact_with(redactor.redact)
    if unset:
        log.info(
            "%s not set: the register's words are redacted without their values, and "
            "not marked redacted (fleetwarden tasks withholds them where it cannot check)",
            ", ".join(unset),
        )


async def redact_register(ledger: Ledger) -> None:
    """Redact the register's words stored before they were redacted as stored, or before the
    config named a secret it names now (each row is marked with the secrets it was redacted
    for, so this is done once for each), with every secret this Fleetwarden knows; run once
    it is the active orchestrator and its doors hold their secrets, and after each reload."""
    tasks = await ledger.tasks.redact_stored()
    missions = await ledger.missions.redact_stored()
    if tasks or missions:
        log.info("redacted the words of %d tasks and %d missions stored before", tasks, missions)
