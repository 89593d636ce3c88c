"""Where and how an agent's run starts: its private home and working directory, the
loopback URLs it is given (the metering proxy's, its heartbeat endpoint's), the accounts
that pay for its requests, and its log.

:class:`RunContexts` makes a :class:`~fleet.runtimes.RuntimeContext` for each launch and
remembers which accounts it chose, for the run's report and its environment; the
:class:`~fleet.run_keeper.RunKeeper` launches with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from fleet.accounts.model import AccountError
from fleet.backends.base import Backend
from fleet.clock import Clock
from fleet.errors import LaunchFailed
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.private_files import private_dir
from fleet.runs import AgentPaths
from fleet.runtimes import RuntimeContext
from fleet.status import AccountAssigner, FleetSettings, HeartbeatIssuer, ProviderUrlIssuer

_LOG_PATHS_HELD = 100_000  # log paths remembered (an agent's is a few hundred bytes)


class RunContexts:
    """The contexts the fleet's runs start in."""

    def __init__(
        self,
        *,
        settings: FleetSettings,
        clock: Clock,
        environ: Mapping[str, str],
        backend: Callable[[str], Backend],
        heartbeats: HeartbeatIssuer | None = None,
        provider_urls: ProviderUrlIssuer | None = None,
        accounts: AccountAssigner | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.environ = environ
        self._backend = backend
        self._heartbeats = heartbeats
        self._provider_urls = provider_urls
        self._accounts = accounts
        self._logs: dict[AgentName, Path] = {}  # each agent's log path, made once
        # provider -> account name, of the last context made for each agent
        self._chosen: dict[AgentName, dict[str, str]] = {}

    def log_path(self, name: AgentName) -> Path:
        path = self._logs.get(name)
        if path is None:
            if len(self._logs) >= _LOG_PATHS_HELD:
                self._logs.clear()
            path = self._logs[name] = AgentPaths.of(self._settings.state_dir, name).log
        return path

    def context(self, spec: AgentSpec) -> RuntimeContext:
        """Where and how ``spec`` runs: its private home, its directory, its URLs."""
        paths = AgentPaths.of(self._settings.state_dir, spec.name)
        workdir = spec.workdir or paths.work
        private_dir(paths.home)
        if spec.workdir is None:
            private_dir(workdir)
        else:
            workdir.mkdir(parents=True, exist_ok=True)
        beats = self._heartbeats
        try:
            chosen = (
                self._accounts.assign(spec.name, spec.runtime, spec.account)
                if self._accounts is not None
                else {}
            )
        except AccountError as exc:  # said to whoever launched it, like any failed launch
            raise LaunchFailed(f"{spec.name} cannot start: {exc}") from exc
        self._chosen[spec.name] = {p: account.name for p, account in chosen.items()}
        return RuntimeContext(
            home=paths.home,
            workdir=workdir,
            environ=self.environ,
            tty=self._backend(spec.backend).tty,
            provider_urls=self._provider_urls_of(spec),
            heartbeat_url=beats.url_for(spec.name) if beats is not None else None,
            heartbeat_token=beats.token_for(spec.name) if beats is not None else None,
            accounts={provider: account.kind.value for provider, account in chosen.items()},
            started_at=self._clock.now(),
        )

    def chosen(self, spec: AgentSpec) -> dict[str, str]:
        """Provider → the account chosen for ``spec``'s last context."""
        return self._chosen.get(spec.name, {})

    def account_names(self, spec: AgentSpec) -> tuple[str, ...]:
        """The accounts that pay for ``spec``'s requests now, by name."""
        return tuple(sorted(set(self.chosen(spec).values())))

    def urls_of(self, spec: AgentSpec) -> list[str]:
        """The loopback URLs ``spec``'s agent is given: a locked sandbox opens doors to them."""
        urls = list(self._provider_urls_of(spec).values())
        if self._heartbeats is not None:
            urls.append(self._heartbeats.url_for(spec.name))
        return urls

    def _provider_urls_of(self, spec: AgentSpec) -> Mapping[str, str]:
        if self._provider_urls is not None:
            return self._provider_urls.urls_for(spec.name)
        return self._settings.provider_urls
