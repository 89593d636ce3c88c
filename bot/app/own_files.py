"""What ``fleetwarden run`` reads and writes is Fleetwarden's own, judged before anything
starts (:mod:`fleet.owned_places`): the config file and the roster file it names (with every
folder above them), and the state dir.

A config file another user owns or may write (or one in a folder they may write, where
they could swap it) would let that user run Fleetwarden's agents with ``sandbox: none`` and
``egress: open``; a state dir of theirs, rename and plant files where Fleetwarden keeps its
secrets. Either is refused, with the fix (``chown``, ``chmod go-w``), before the log file or
anything else is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot.app.lock import own_state_dir
from bot.commands.errors import CommandError
from bot.config.reading.resolved import Config
from fleet.errors import FleetwardenError
from fleet.owned_places import not_ours


class ConfigNotOurs(FleetwardenError):
    """The config file, or the roster file it names, is not Fleetwarden's own."""


def refusal(
    config: Config, environ: Mapping[str, str], outcome: str = "nothing was started"
) -> str | None:
    """Why ``run`` must not start on ``config``, nor a reload read it again (its files or
    state dir not Fleetwarden's own, or unreadable), or ``None``. ``outcome``: what the
    refusal left undone, as the message says it."""
    try:
        check_own_files(config, environ, outcome)
    except (FleetwardenError, OSError) as exc:
        return str(exc)
    return None


def check_own_files(
    config: Config, environ: Mapping[str, str], outcome: str = "nothing was started"
) -> None:
    """Raise :class:`ConfigNotOurs` or :class:`~bot.app.lock.StateDirNotOurs` unless the
    config's files and its state dir are Fleetwarden's own. Raises ``OSError`` when one
    cannot be read."""
    for path in _read_files(config, environ):
        found = not_ours(path)
        if found is None:
            continue
        what = "The config file" if found.path == path else f"A folder above config {path}"
        raise ConfigNotOurs(
            f"{what}: {found}. Another user could swap it for a config of their own (an "
            f"agent with `sandbox: none`, `egress: open`); {outcome}. Keep the config "
            f"where only Fleetwarden's user may write it: `{found.fix}`"
        )
    own_state_dir(config.state_dir)


def check_config_path(path: Path) -> Path:
    """``path``, the config ``run`` was named, as its real path once it is found
    Fleetwarden's own: read from there on, a link on the way re-pointed later changes
    nothing. Raises :class:`ConfigNotOurs`, or ``OSError`` when it cannot be read."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    found = not_ours(absolute)
    if found is not None:
        what = "The config file" if found.path == absolute else f"On the way to config {path}"
        raise ConfigNotOurs(
            f"{what}: {found}. Another user could swap it for a config of their own; nothing "
            f"was started. Keep the config where only Fleetwarden's user may write it: "
            f"`{found.fix}`"
        )
    return absolute.resolve()


def _read_files(config: Config, environ: Mapping[str, str]) -> list[Path]:
    from bot.app.roster_edits import roster_files  # the roster's edits: loaded to run

    if config.source is None:
        return []
    try:
        return roster_files(config, environ)
    except CommandError:  # a roster file it could not name was refused when loading
        return [config.source]
