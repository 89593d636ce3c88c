"""The app's forges phases: each ``forges:`` entry's API client with the GitHub Apps'
tokens for git (:func:`open_forges`); the forge door on the heartbeat endpoint (made before
it listens; it reaches the desk once forge work is up); forge work over the fleet and the
repositories (:func:`start_forges`), the webhook endpoint — on the dashboard's
address, or there on its own when the dashboard is off — and the rounds the scheduler runs
(:mod:`fleet.forge.runs.rounds`: the pollers, the round that keeps forge runs moving, the
Apps' tokens for git renewed)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import ChainMap
from collections.abc import Awaitable, Callable, Mapping, Sequence

from aiohttp import web

from bot.app.fleet import Fleeted
from bot.app.grounds import Grounds
from bot.app.ledger import Ledgered
from bot.app.repos import version
from bot.app.spend import Spend
from bot.app.stops import Stop
from bot.chat.agent_text import quotes_escaped
from bot.config import Config
from bot.config.forge_checks import app_token_variable
from bot.dashboard.listener import Listening, listen, middleware
from bot.dashboard.settings import DashboardSection
from bot.render.forge import no_run_news, pull_news
from fleet.clock import Clock
from fleet.forge.api.app_token import AppKey
from fleet.forge.api.git_tokens import GitTokens
from fleet.forge.api.gitea import GiteaApi
from fleet.forge.api.github import GitHubApi
from fleet.forge.door.door import ForgeDoor
from fleet.forge.events.endpoint import Refusal, WebhookEndpoint, WebhookForge
from fleet.forge.facts import NoRunNews, PullNews
from fleet.forge.fleet_launcher import FleetLauncher
from fleet.forge.model import ForgeApi
from fleet.forge.posts.provenance import ProvenanceSource
from fleet.forge.posts.publish import Publisher, Tell
from fleet.forge.runs.desk import ForgeDesk
from fleet.forge.runs.polling import ForgePolling
from fleet.forge.runs.rounds import Rounds
from fleet.forge.runs.watch import ForgeWatch
from fleet.forge.runs.work import ForgeWork
from fleet.forge.schema import ForgeEntry
from fleet.forge.text.shown import shown_text
from fleet.ledger import Ledger
from fleet.ledger.forge_records import Slug
from fleet.names import is_agent_name
from fleet.notices import Delivery, Notice
from fleet.redaction.known import Secret
from fleet.repos.service import Repos
from fleet.repos.verbs import RepoVerbs
from fleet.supervisor.admission.admit import Admission
from fleet.supervisor.fleet import Fleet

log = logging.getLogger(__name__)

SETTLE_SECONDS = 20.0
"""How long a stop waits for the events already taken to be acted on."""


def open_api(entry: ForgeEntry, environ: Mapping[str, str], clock: Clock) -> ForgeApi:
    """``entry``'s client, with its credential from ``environ`` (checked at load)."""
    if entry.kind == "gitea":
        assert entry.token_env is not None
        return GiteaApi(entry.api_url, environ.get(entry.token_env, ""), clock=clock)
    if entry.app is not None:
        key = AppKey(
            environ.get(entry.app.app_id_env, ""), environ.get(entry.app.private_key_env, "")
        )
        return GitHubApi(entry.api_url, key, clock=clock)
    assert entry.token_env is not None
    return GitHubApi(entry.api_url, environ.get(entry.token_env, ""), clock=clock)


async def open_forges(at: Grounds) -> AppForges:
    """The forges' clients, to be stopped from now on, with the GitHub Apps' tokens that
    their repositories' git uses minted."""
    forges = AppForges(at.cfg, at.environ, at.clock)
    at.stops.add(Stop.FORGES, forges.stop)
    await forges.prime()
    return forges


async def start_forges(
    at: Grounds,
    forges: AppForges,
    ledgered: Ledgered,
    fleeted: Fleeted,
    spend: Spend,
    repos: Repos | None,
    verbs: RepoVerbs | None,
) -> list[web.RouteDef]:
    """Forge work started over the running fleet; the webhook routes, to be served."""
    return await forges.start(
        ledger=ledgered.ledger,
        fleet=fleeted.fleet,
        repos=repos,
        verbs=verbs,
        admission=fleeted.fleet.admission,
        redact=at.redactor.redact,
        version=version(),
        notify=ledgered.notifier.post,
    )


class AppForges:
    """The forges of the config, from their clients to the round over their runs."""

    def __init__(self, cfg: Config, environ: Mapping[str, str], clock: Clock) -> None:
        self._cfg = cfg
        self._environ = environ
        self._clock = clock
        self.apis: dict[str, ForgeApi] = {
            name: open_api(entry, environ, clock) for name, entry in cfg.forges.items()
        }
        # Made before the heartbeat endpoint listens; it reaches the desk once forge work is up.
        self.door: ForgeDoor | None = (
            ForgeDoor(lambda: self.desk, clean=shown_text) if cfg.forges else None
        )
        self.work: ForgeWork | None = None
        self.desk: ForgeDesk | None = None
        self.rounds: Rounds | None = None  # for the scheduler, once started
        self._alone: Listening | None = None
        # The installation tokens of GitHub Apps, by the variable their repository's git
        # reads (bot.config.forge_checks.app_token_variable), renewed by the rounds.
        self._tokens = GitTokens(self.apis, app_repos(cfg))
        self.git_tokens: dict[str, str] = self._tokens.tokens
        self.repo_environ: Mapping[str, str] = ChainMap(self.git_tokens, dict(environ))

    async def prime(self) -> None:
        """Mint the Apps' installation tokens for git now (each lasts an hour: the rounds
        renew them from the start on)."""
        if self._tokens.wanted:
            await self._tokens.renew()

    def known_secrets(self) -> list[Secret]:
        """The forges' tokens, keys and webhook secrets, for the redactor."""
        found: list[Secret] = []
        for name, entry in self._cfg.forges.items():
            variables = [entry.token_env, entry.webhook_secret_env]
            if entry.app is not None:
                variables.append(entry.app.private_key_env)
            for variable in variables:
                value = self._environ.get(variable) if variable else None
                if value:
                    found.append(Secret(value, f"secret of forge {name}"))
        return found  # the Apps' installation tokens: the repositories' (their environ)

    async def start(
        self,
        *,
        ledger: Ledger,
        fleet: Fleet,
        repos: Repos | None,
        verbs: RepoVerbs | None,
        admission: Admission,
        redact: Callable[[str], str],
        version: str,
        notify: Callable[[Notice], Awaitable[object]] | None = None,
    ) -> list[web.RouteDef]:
        """Forge work started; the webhook routes for the dashboard to serve. ``notify``
        posts to chat what is wrong with a forge's credential or address at start, and a
        forge run's pull request that could not be opened (and when it is open)."""
        cfg = self._cfg
        if not cfg.forges:
            return []
        self.rounds = Rounds(tokens=self._tokens)
        if repos is None or verbs is None:
            log.warning("forges are configured but no repository names one: nothing to do")
            return []
        launcher = FleetLauncher(fleet, repos, verbs, ledger, admission)
        source = ProvenanceSource(ledger, self._clock, version)
        publisher = Publisher(
            forges=cfg.forges,
            apis=self.apis,
            ledger=ledger,
            launcher=launcher,
            clock=self._clock,
            source=source,
            redact=redact,
            tell=_teller(notify),
        )
        work = ForgeWork(
            forges=cfg.forges,
            apis=self.apis,
            repos=cfg.repos,
            ledger=ledger,
            launcher=launcher,
            publisher=publisher,
            clock=self._clock,
        )
        self.work = work
        fleet.subscribe(work.on_fleet_event)  # a freed slot starts a queued run
        self.desk = ForgeDesk(work)  # the door reaches it from now on
        self.rounds = Rounds(
            watch=ForgeWatch(work, self.desk), polls=self._polls(work), tokens=self._tokens
        )
        # The bot's own login, as its credential says it is; then the deliveries taken but
        # not acted on before the last stop.
        work.spawn(
            _checked(work, list(cfg.forges), notify), "the forges' logins and kept deliveries"
        )
        hooked = {
            name: WebhookForge(entry, self._environ.get(entry.webhook_secret_env, "").encode())
            for name, entry in cfg.forges.items()
            if entry.webhook_secret_env and self._environ.get(entry.webhook_secret_env)
        }
        if not hooked:
            return []

        async def audit(refusal: Refusal) -> None:
            detail = f"webhook refused ({refusal.status}): {refusal.why}"
            if refusal.status == 200:
                detail = f"webhook {refusal.delivery}: {refusal.why}"
            await ledger.forge.audit_forge(None, "-", "webhook", refusal.status == 200, detail)

        endpoint = WebhookEndpoint(
            hooked,
            receive=work.receive,
            seen=ledger.forge.take_delivery,
            audit=audit,
            clock=self._clock,
            held=work.holds.refusal,
        )
        return endpoint.routes()

    async def listen_alone(
        self, routes: Sequence[web.RouteDef], *, address: str | None = None
    ) -> None:
        """Serve ``routes`` on the dashboard's default address (or ``address``), the
        dashboard being off."""
        if not routes:
            return
        section = DashboardSection() if address is None else DashboardSection(listen=address)
        settings = section.settings(self._cfg.state_dir)
        app = web.Application(middlewares=[middleware(settings)])
        app.add_routes(list(routes))
        self._alone = await listen(app, settings)
        log.info("forge webhooks taken on %s:%s", settings.host, self._alone.port)

    @property
    def webhook_port(self) -> int | None:
        return self._alone.port if self._alone is not None else None

    def _polls(self, work: ForgeWork) -> list[ForgePolling]:
        """The polling of each forge that sets ``poll_seconds``, over its repositories."""
        found = []
        for name, entry in self._cfg.forges.items():
            if entry.poll_seconds is None:
                continue
            slugs = [
                Slug.parse(slug)
                for repo in self._cfg.repos.values()
                if repo.forge == name and (slug := repo.forge_slug()) is not None
            ]
            api = self.apis[name]
            found.append(ForgePolling.of(name, entry, api, slugs, work=work, clock=self._clock))
        return found

    async def stop(self) -> None:
        if self.rounds is not None:
            await self.rounds.stop()
        if self.work is not None:
            # What was taken is acted on before the stop: a delivery already recorded
            # would be answered "already had it" if the forge sent it again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.work.settle(), SETTLE_SECONDS)
            await self.work.close()
        if self._alone is not None:
            await self._alone.close()
            self._alone = None
        for api in self.apis.values():
            await api.close()


def _teller(notify: Callable[[Notice], Awaitable[object]] | None) -> Tell | None:
    """Chat's word on a forge run's pull request, into the agent's threads and the home
    rooms: an alert when it could not be opened (someone must fix why); and a warning on an
    issue given to no agent that can start there."""
    if notify is None:
        return None

    async def tell(news: PullNews | NoRunNews) -> None:
        if isinstance(news, NoRunNews):
            agents = (news.agent,) if is_agent_name(news.agent) else ()
            await notify(Notice(no_run_news(news), tone="warning", agents=agents))
            return
        failed = news.pull is None
        await notify(
            Notice(
                pull_news(news),
                tone="warning" if failed else "ok",
                agents=(news.agent,),
                alert=failed,
            )
        )

    return tell


def app_repos(cfg: Config) -> list[tuple[str, str, Slug]]:
    """(forge, variable, slug) of each repository a GitHub App's token fetches."""
    found = []
    for name, repo in cfg.repos.items():
        forge = cfg.forges.get(repo.forge) if repo.forge else None
        slug = repo.forge_slug()
        if forge is None or forge.app is None or slug is None:
            continue
        if repo.token_env == app_token_variable(name):
            found.append((repo.forge or "", repo.token_env, Slug.parse(slug)))
    return found


async def _checked(
    work: ForgeWork, forges: Sequence[str], notify: Callable[[Notice], Awaitable[object]] | None
) -> None:
    """Each forge asked who its credential is, what is wrong said in chat (the home rooms
    and the console: an operator must act) — once: on the terminal's log lines only when no
    chat took it — then the deliveries kept from before the last stop."""
    for forge in forges:
        why = await work.holds.check_login(forge)
        if why is None:
            continue
        held = forge in work.holds.held
        said = None
        if notify is not None:  # the console is a connector: said there once, by this
            notice = Notice(
                f"⚠ {quotes_escaped(why)}", tone="error" if held else "warning", alert=held
            )
            said = await notify(notice)
        if not isinstance(said, Delivery) or not said.ok:  # no chat took it: the log says it
            log.log(logging.ERROR if held else logging.WARNING, "%s", why)
    await work.resume_kept()
