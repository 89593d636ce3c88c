"""The credentials Fleetwarden holds stay out of every agent's reach by config.

Every secret the config names for Fleetwarden itself — in any ``*_env`` key outside the
roster: a repository's token, a forge's token, App key and webhook secret, an MCP server's
credential (each value of its ``headers_env`` or ``env_env``), a chat connector's token,
password or store passphrase, the dashboard's metrics token, the ledger's password, a
host's key passphrase, an account's credential — is Fleetwarden's. An agent reaches the
upstream only through its git door, the forge only through its forge door and an MCP
server only through its MCP door, each of which checks what it does; the others are never
an agent's at all. The
same variable named in an agent's ``secret_env`` (or set in its ``env``) would hand it the
credential itself. :func:`door_secret_problems` refuses that, naming the agent and the part
of the config that holds the variable.

The keys are found by walking the validated config (:func:`held_by_fleetwarden`), so a
secret key added to the schema is covered without a word here; :func:`_what` only names
the known ones in plainer words. An account's variable in ``secret_env`` is left to
:mod:`bot.config.reading.load`, which refuses it with the account to name instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from bot.config.checks.problems import ConfigProblem, Locator
from bot.config.roster.file import RosterSource
from bot.config.schema import ConfigFile
from fleet.mcp.config.rules import holding

Loc = tuple[str | int, ...]

GIT_DOOR = "the upstream only through its git door"
FORGE_DOOR = "the forge only through its forge door"
MCP_DOOR = "the MCP server only through its MCP door"
NOT_SECRET = frozenset({"app_id_env"})
"""``*_env`` keys whose variable holds nothing secret (a GitHub App's id is public)."""
_ROSTER = "agents"
"""The section holding the agents' own settings (what is checked), not Fleetwarden's."""
_AGENTS_OWN = "secret_env"
"""The key of the variables an agent is given (``defaults.secret_env`` too): never held."""


@dataclass(frozen=True, slots=True)
class Held:
    """A variable holding one of Fleetwarden's credentials: what it is, in words, where
    the config names it (``forges.gh.token_env``), and the door an agent reaches what it
    opens through, if any (``None``: no agent reaches it at all)."""

    what: str
    path: str
    door: str | None
    loc: Loc


def held_by_fleetwarden(document: ConfigFile) -> dict[str, Held]:
    """Each variable ``document`` names for a credential of Fleetwarden's own → what it
    holds (the first place naming it, when several do)."""
    held: dict[str, Held] = {}
    for loc, variable in env_variables(document):
        if loc[0] == _ROSTER or _AGENTS_OWN in loc or loc[-1] in NOT_SECRET:
            continue
        what, door = _what(document, loc)
        held.setdefault(variable, Held(what, Locator(None)(loc)[1], door, loc))
    return held


def door_secret_problems(document: ConfigFile, roster: RosterSource) -> Iterator[ConfigProblem]:
    """Agents whose ``secret_env`` or ``env`` names a variable holding one of
    Fleetwarden's credentials."""
    held = held_by_fleetwarden(document)
    if not held:
        return
    for index, agent in enumerate(document.agents):
        who = f"agent {agent.name!r}"
        for where, variable in holding(agent.secret_env, agent.env, held):
            found = held[variable]
            if where[0] == "secret_env" and found.loc[0] == "accounts":
                continue  # said by the loader, with its fix
            if where[0] == "secret_env":
                message = (
                    f"{who} would get {variable}, which holds {found.what} ({found.path}): "
                    f"{_whose(found)}. Remove it from secret_env (a token of the agent's own "
                    "goes in a variable of its own)"
                )
            else:
                message = (
                    f"{who} sets {variable} in its env, the variable that holds {found.what} "
                    f"({found.path}): give the agent's variable another name "
                    f"({_whose(found)}; an agent never holds nor shadows it)"
                )
            yield _problem(roster, ("agents", index, *where), message)


def _whose(found: Held) -> str:
    if found.door is None:
        return "that credential is Fleetwarden's own, never an agent's"
    return f"that credential is Fleetwarden's, and an agent reaches {found.door}"


def env_variables(value: object, loc: Loc = ()) -> Iterator[tuple[Loc, str]]:
    """Each variable a ``*_env`` key under ``value`` names, with where it is: a key naming
    one (``token_env``), each of a list (``secret_env``) and each value of a mapping (an MCP
    server's ``headers_env``, ``env_env``). The one walk over the config's variables: what
    Fleetwarden holds (:func:`held_by_fleetwarden`), and every secret the log redactor
    learns (:meth:`bot.config.reading.resolved.Config.secret_env_names`)."""
    if isinstance(value, BaseModel):
        for field, info in type(value).model_fields.items():
            key = info.alias or field
            item = getattr(value, field)
            if not field.endswith("_env"):
                yield from env_variables(item, (*loc, key))
            elif isinstance(item, str):
                yield (*loc, key), item
            elif isinstance(item, tuple | list | frozenset):
                for index, variable in enumerate(item):
                    if isinstance(variable, str):
                        yield (*loc, key, index), variable
            elif isinstance(item, Mapping):
                for name, variable in item.items():
                    if isinstance(variable, str):
                        yield (*loc, key, str(name)), variable
    elif isinstance(value, Mapping):
        for name, item in value.items():
            yield from env_variables(item, (*loc, str(name)))
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield from env_variables(item, (*loc, index))


def _what(document: ConfigFile, loc: Loc) -> tuple[str, str | None]:
    """What the variable at ``loc`` holds, in words, and the door an agent reaches what it
    opens through (``None``: none)."""
    match loc:
        case ("repos", str(name), "token_env"):
            return f"repository {name}'s token", GIT_DOOR
        case ("forges", str(name), "token_env"):
            return f"forge {name}'s token", FORGE_DOOR
        case ("forges", str(name), "app", _):
            return f"forge {name}'s App key", FORGE_DOOR
        case ("forges", str(name), "webhook_secret_env"):
            return f"forge {name}'s webhook secret", FORGE_DOOR
        case ("forges", str(name), "signing_secret_env"):
            return f"forge {name}'s webhook signing token", FORGE_DOOR
        case ("connectors", "matrix", "access_token_env"):
            return "the Matrix bot's access token", None
        case ("connectors", "matrix", "password_env"):
            return "the Matrix bot's password", None
        case ("connectors", "matrix", "store_passphrase_env"):
            return "the passphrase of the Matrix bot's crypto store", None
        case ("connectors", "discord", "token_env"):
            return "the Discord bot's token", None
        case ("connectors", "slack", "bot_token_env"):
            return "the Slack app's bot token", None
        case ("connectors", "slack", "app_token_env"):
            return "the Slack app's app-level token", None
        case ("connectors", "slack", "signing_secret_env"):
            return "the Slack app's signing secret", None
        case ("dashboard", "metrics_token_env"):
            return "the dashboard's metrics token", None
        case ("ledger_password_env",):
            return "the ledger's password", None
        case ("hosts", int(index), "key_passphrase_env"):
            return f"the passphrase of host {document.hosts[index].name}'s key", None
        case ("accounts", str(name), _):
            return f"account {name}'s credential", None
        case ("mcp", str(name), "headers_env", str(header)):
            return f"MCP server {name}'s {header} header", MCP_DOOR
        case ("mcp", str(name), "env_env", str(variable)):
            return f"MCP server {name}'s {variable}", MCP_DOOR
        case ("mcp", str(name), "oauth", "client_id_env" | "client_secret_env" as key):
            return f"MCP server {name}'s OAuth client {key.split('_')[1]}", MCP_DOOR
    return "a credential of Fleetwarden's", None


def _problem(roster: RosterSource, loc: Loc, message: str) -> ConfigProblem:
    line, path, _ = roster.locate(loc)
    return ConfigProblem(roster.file_name, line, path, message)
