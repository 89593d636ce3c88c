"""What the app builds from the config before it starts anything: the connectors it lists,
the redactor, the backends, the roster as launch specs, and where agents' providers are
when metering is off. Pure construction: nothing here starts, connects or writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from bot.acl import Acl, Grant, Role
from bot.config import Config
from connectors.base import Connector, OutboundMessage
from connectors.console.connector import ROOM as CONSOLE_ROOM
from connectors.console.connector import ConsoleConnector
from connectors.discord.config import DiscordConfig
from connectors.matrix.config import MatrixConfig
from connectors.receiving import ReceiveFailures
from connectors.slack.config import SlackConfig
from fleet.accounts.book import AccountBook
from fleet.accounts.model import implicit_account, own_key_var
from fleet.accounts.providers import DEFAULT_ROUTES
from fleet.approvals.ask_door import AskDoor, ledger_terms
from fleet.approvals.service import Approvals
from fleet.backends.base import Backend
from fleet.backends.process import SubprocessBackend
from fleet.backends.tmux import TmuxBackend
from fleet.errors import LedgerError, UnknownAgent
from fleet.forge.door.tools import FORGE_TOOLS
from fleet.ledger import Ledger
from fleet.ledger.database.location import LedgerLocation
from fleet.mcp.config.grants import grants_of as mcp_grants
from fleet.mcp.config.places import protected
from fleet.mcp.config.rules import McpRules
from fleet.mcp.model import McpServer
from fleet.mcp.upstream.credentials import McpSecrets, oauth_tokens
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.notices import NoticeBoard
from fleet.peers.tools import PEER_TOOLS
from fleet.redaction.known import EnvSecrets, Secret
from fleet.redaction.redactor import Redactor
from fleet.repos.door.server import GitDoor
from fleet.runs.launch.launch_kit import FleetSettings
from fleet.sandbox.egress.refusals import RefusalBook
from fleet.sandbox.service import SandboxSettings
from fleet.timing.clock import Clock, SystemClock
from fleet.watchdog.heartbeat import Door, HeartbeatServer, OnAsk


def make_connectors(
    config: Config,
    *,
    ledger: Ledger,
    acl: Acl,
    clock: Clock,
    environ: Mapping[str, str],
    failures: ReceiveFailures | None = None,
) -> list[Connector]:
    """The connectors the config lists, in start order. ``failures``: where a connector
    reports an event it received and could not take."""
    connectors: list[Connector] = []
    console: ConsoleConnector | None = None
    if config.console is not None:
        console = ConsoleConnector(config.console, clock)
        connectors.append(console)
    if config.matrix is not None:
        matrix = _matrix(config.matrix, config, ledger, acl, clock, environ, console, failures)
        connectors.append(matrix)
    if config.discord is not None:
        connectors.append(_discord(config.discord, config, ledger, acl, clock, environ, failures))
    if config.slack is not None:
        connectors.append(_slack(config.slack, ledger, acl, clock, environ, failures))
    return connectors


# Each service's connector is imported only when configured: each pulls in its service's
# client library.


def _matrix(
    section: MatrixConfig,
    config: Config,
    ledger: Ledger,
    acl: Acl,
    clock: Clock,
    environ: Mapping[str, str],
    console: ConsoleConnector | None,
    failures: ReceiveFailures | None,
) -> Connector:
    """The Matrix connector: an operator's role told to it by the ACL, an admin's emojis
    shown on the ``console`` (when there is one)."""
    from connectors.matrix.connector import MatrixConnector

    return MatrixConnector(
        section,
        state=ledger.chat,
        clock=clock,
        environ=environ,
        state_dir=config.state_dir,
        role_of=lambda user: _role_name(acl.role_of("matrix", user)),
        default_command_prefix=config.command_prefix,
        announce=_on_console(console),
        failures=failures,
    )


def _discord(
    section: DiscordConfig,
    config: Config,
    ledger: Ledger,
    acl: Acl,
    clock: Clock,
    environ: Mapping[str, str],
    failures: ReceiveFailures | None,
) -> Connector:
    """The Discord connector: whether a user (in their groups) is an operator, asked of the
    ACL."""
    from connectors.discord.connector import DiscordConnector

    return DiscordConnector(
        section,
        threads=ledger.chat,
        environ=environ,
        is_operator=lambda user, groups: acl.role_of("discord", user, groups) is not None,
        default_command_prefix=config.command_prefix,
        failures=failures,
        clock=clock,
    )


def _slack(
    section: SlackConfig,
    ledger: Ledger,
    acl: Acl,
    clock: Clock,
    environ: Mapping[str, str],
    failures: ReceiveFailures | None,
) -> Connector:
    """The Slack connector: whether a user (in their groups) is an operator, asked of the
    ACL."""
    from connectors.slack.connector import SlackConnector

    return SlackConnector(
        section,
        threads=ledger.chat,
        environ=environ,
        is_operator=lambda user, groups: acl.role_of("slack", user, groups) is not None,
        failures=failures,
        clock=clock,
    )


def _on_console(console: ConsoleConnector | None) -> Callable[[str], Awaitable[object]] | None:
    """Where the Matrix connector shows an operator's emojis for an admin: the console."""
    if console is None:
        return None
    return lambda line: console.send(OutboundMessage(room=CONSOLE_ROOM, markdown=line))


def _role_name(role: Role | None) -> str | None:
    return None if role is None else role.value


MCP_LABEL = "MCP credential "
"""How :func:`fleet.mcp.upstream.credentials.secrets_of` starts a held credential's label."""


def redactor(config: Config, environ: Mapping[str, str]) -> Redactor:
    """The one redactor, knowing the secret variables the config names; the app adds the
    servers and logins that make secrets at run time. The MCP servers' credentials are
    among the variables named; a ``Bearer`` header's token alone is added, as the door
    scrubs it, and the OAuth access tokens held for them, as they are renewed."""
    return Redactor(
        [
            EnvSecrets(config.secret_env_names(), environ),
            BareMcpTokens(config.mcp.values(), environ),
            oauth_tokens(config.mcp.values()),
        ]
    )


class BareMcpTokens:
    """The MCP servers' held tokens without their scheme (``Bearer T`` → ``T``, which a
    server may echo alone), labelled by their variable as the whole values are
    (:class:`~fleet.redaction.known.EnvSecrets` of the config's secret variables)."""

    def __init__(self, servers: Iterable[McpServer], environ: Mapping[str, str]) -> None:
        whole = {environ.get(v, "").strip() for server in servers for v in server.credential_envs}
        self._secrets = tuple(
            Secret(held.value, held.what.removeprefix(MCP_LABEL))
            for held in McpSecrets(servers, environ).known_secrets()
            if held.value not in whole
        )

    def known_secrets(self) -> Iterable[Secret]:
        return self._secrets


def unset_secrets(config: Config, environ: Mapping[str, str]) -> list[str]:
    """The variables the config names as holding a secret that are not set in ``environ``:
    a redactor made here cannot know their values."""
    return sorted(name for name in config.secret_env_names() if not environ.get(name))


def prefixes(config: Config) -> dict[str, str]:
    """Connectors whose command prefix differs from the top-level one."""
    own = {"matrix": config.matrix, "discord": config.discord, "slack": config.slack}
    return {
        name: section.command_prefix
        for name, section in own.items()
        if section is not None and section.command_prefix is not None
    }


def roster_of(config: Config) -> dict[AgentName, AgentSpec]:
    """The config's roster as launch specs. With metering on, an agent that names no
    account but lists a provider key in ``secret_env`` is on that key's implicit account."""
    specs: dict[AgentName, AgentSpec] = {}
    for entry in config.agents:
        spec = entry.to_spec(config.defaults)
        own = own_key_var(spec.runtime, spec.secret_env)
        if spec.account is None and own is not None and config.metering is not None:
            spec = replace(spec, account=implicit_account(*own).name)
        specs[entry.name] = spec
    return specs


def tmux_socket_name(state_dir: Path) -> str:
    """The private tmux server of the Fleetwarden that owns ``state_dir``."""
    return f"fleetwarden-{hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]}"


def default_backends(config: Config) -> dict[str, Backend]:
    """Subprocess agents, and tmux agents on a tmux server private to this state dir."""
    return {
        "subprocess": SubprocessBackend(),
        "tmux": TmuxBackend(tmux_socket_name(config.state_dir)),
    }


def account_book(
    config: Config,
    *,
    ledger: Ledger,
    notices: NoticeBoard,
    clock: Clock,
    environ: Mapping[str, str],
) -> AccountBook:
    """The accounts the proxy holds, with each ChatGPT login's refresh URL."""
    book = AccountBook(
        config.accounts,
        environ=environ,
        state_dir=config.state_dir,
        clock=clock,
        ledger=ledger.accounts,
        notices=notices,
        fallback=config.defaults.account,
    )
    for name, entry in config.document.accounts.items():
        book.set_token_url(name, entry.token_url)
    return book


def direct_provider_urls(config: Config) -> dict[str, str]:
    """With metering off, agents go straight to the providers the config changed (the
    built-in ones stay the CLIs' own defaults)."""
    return {
        name: route.upstream
        for name, route in config.providers.items()
        if DEFAULT_ROUTES.get(name) != route and not route.offline
    }


def sandbox_settings(
    config: Config, backends: Mapping[str, Backend], environ: Mapping[str, str]
) -> SandboxSettings:
    """What agents' sandboxes hide besides the state dir: the config file's directory, the
    ledger's, Fleetwarden's own HOME (its user's keys and logins), the private tmux
    server's socket directory (a way into other panes), and the config's ``workdirs``."""
    hidden = [config.ledger_path.parent]
    home = environ.get("HOME", "")
    if os.path.isabs(home) and os.path.normpath(home) != "/":
        hidden.append(Path(os.path.normpath(home)))
    if config.source is not None:
        hidden.append(config.source.parent)
    for backend in backends.values():
        if isinstance(backend, TmuxBackend):
            hidden.append(backend.socket_path().parent)
    uids = config.document.agent_uids
    return SandboxSettings(
        state_dir=config.state_dir,
        hidden=tuple(hidden),
        workdirs=config.workdirs,
        uids=uids.wanted(),
        uid_count=uids.count,
        config=config.source,
    )


def refusal_book(ledger: Ledger, notices: NoticeBoard | None) -> RefusalBook:
    """What counts and tells the agents' refused egress: the forward proxies' refusals and
    the metering proxy's refused endpoints (``ps``, ``egress NAME``, a notice an hour)."""
    return RefusalBook(
        ledger.refusals, notices.post if notices is not None else None, SystemClock()
    )


def grants_of(config: Config) -> list[Grant]:
    """Who may do what: the config's operators (and the console user) as ACL grants."""
    return [Grant(op.id, Role(op.role), op.connector) for op in config.effective_operators()]


def fleet_settings(cfg: Config) -> FleetSettings:
    """The supervisor's settings from the config: where state lives, and what an agent no
    roster names falls back to (the ``defaults`` section)."""
    return FleetSettings(
        state_dir=cfg.state_dir,
        default_runtime=cfg.defaults.runtime,
        default_backend=cfg.defaults.backend,
        stop_grace=cfg.defaults.stop_grace_seconds,
        reply_wait=cfg.defaults.send_reply_wait_seconds,
        heartbeat_timeout=cfg.defaults.heartbeat_timeout_seconds,
        provider_urls=direct_provider_urls(cfg),
        confinement=(cfg.defaults.sandbox, cfg.defaults.egress, cfg.defaults.egress_allow),
        policy=cfg.defaults.policy,
        run_budget=cfg.defaults.run_budget.to_budget() if cfg.defaults.run_budget else None,
        tool_path=tool_path(cfg),
        git_identity=(cfg.defaults.git_name, cfg.defaults.git_email),
        strict=cfg.document.enforce == "strict",
    )


def mcp_rules(cfg: Config) -> McpRules:
    """What ``cfg`` allows a launch on MCP servers and skills: its servers, and the
    ``defaults``' grants and skills an agent no roster names is given. Read at every launch,
    replaced with the roster by a reload."""
    skills = [*cfg.defaults.skills, *(p for agent in cfg.agents for p in agent.skills or ())]
    places = protected(skills, cfg.mcp)
    return McpRules(dict(cfg.mcp), mcp_grants(cfg.defaults.mcp), cfg.defaults.skills, places)


def tool_path(cfg: Config) -> tuple[str, ...]:
    """Fleetwarden's own tools, first on every agent's PATH: ``fw-msg`` always, and
    ``fw-forge`` with forges."""
    return (str(PEER_TOOLS), *((str(FORGE_TOOLS),) if cfg.forges else ()))


def heartbeat_server(
    config: Config,
    ledger: Ledger,
    approvals: Approvals,
    clock: Clock,
    gits: GitDoor | None = None,
    doors: Sequence[Door] = (),
    hook_asks: Callable[[], OnAsk | None] = lambda: None,
) -> HeartbeatServer:
    """The loopback endpoint agents prove they are alive on, with the ask door beside it,
        where the gates of pi and opencode (and hook commands) ask the operator; ``hook_asks``:
    what answers a TUI's permission hook, once there is one."""

    async def on_beat(agent: str, kind: str) -> None:
        with contextlib.suppress(UnknownAgent):  # a beat from an agent we forgot
            await ledger.heartbeats.record_heartbeat(agent, kind)

    asks = AskDoor(approvals, ledger_terms(ledger.agents, ledger.runs), clock)
    return HeartbeatServer(
        config.state_dir, on_beat, asks=asks, gits=gits, doors=doors, hook_asks=hook_asks
    )


def ledger_location(config: Config, environ: Mapping[str, str]) -> LedgerLocation:
    """Where ``config`` puts the ledger, the PostgreSQL password read from ``environ``."""
    if config.ledger_url is None:
        return LedgerLocation(config.ledger_path)
    password = None
    if config.ledger_password_env is not None:
        password = environ.get(config.ledger_password_env)
        if not password:
            raise LedgerError(
                f"ledger_password_env names {config.ledger_password_env}, which is not set: "
                "export the PostgreSQL password in it (or remove ledger_password_env to use "
                "libpq's PGPASSWORD or ~/.pgpass)"
            )
    return LedgerLocation(config.ledger_path, config.ledger_url, password=password)
