"""Where and how an agent's run starts: its private home and working directory, the
loopback URLs it is given (the metering proxy's, its heartbeat endpoint's), the accounts
that pay for its requests, and its log.

:class:`RunContexts` makes a :class:`~fleet.runtimes.RuntimeContext` for each launch and
remembers which accounts it chose, for the run's report and its environment; the
:class:`~fleet.runs.keeper.RunKeeper` launches with it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping
from pathlib import Path

from fleet.accounts.model import AccountError
from fleet.backends.base import Backend, backend_key
from fleet.errors import LaunchFailed
from fleet.hosts.errors import HostError
from fleet.hosts.schema import LOCAL_HOST, resolve_remote_path
from fleet.hosts.service import Hosts
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.private_files import private_dir
from fleet.runs.launch.launch_kit import LaunchKit
from fleet.runs.layout import AgentPaths
from fleet.runtimes import RuntimeContext
from fleet.timing.clock import Clock

_STANDARD_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
_LOG_PATHS_HELD = 100_000  # log paths remembered (an agent's is a few hundred bytes)


class RunContexts:
    """The contexts the fleet's runs start in."""

    def __init__(self, kit: LaunchKit, *, clock: Clock, backend: Callable[[str], Backend]) -> None:
        """``kit``: what the launches are made with; ``backend``: each backend by name."""
        self._settings = kit.settings
        self._hosts = kit.place.hosts
        self._clock = clock
        self.environ = kit.environ
        self._backend = backend
        self._heartbeats = kit.doors.heartbeats
        self._provider_urls = kit.spend.provider_urls
        self._accounts = kit.spend.accounts
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
        """Where and how ``spec`` runs: its private home, its directory, its URLs. On
        another host: its home and directory there (made at launch), the URLs as the
        host's forwards lead to them, and the host's own ``PATH``."""
        if spec.host != LOCAL_HOST:
            return self._remote_context(spec)
        paths = AgentPaths.of(self._settings.state_dir, spec.name)
        workdir = spec.workdir or paths.work
        private_dir(paths.home)
        if spec.workdir is None:
            private_dir(workdir)
        else:
            workdir.mkdir(parents=True, exist_ok=True)
        environ: Mapping[str, str] = self.environ
        if self._settings.tool_path:
            path = ":".join([*self._settings.tool_path, environ.get("PATH", "/usr/bin:/bin")])
            environ = {**environ, "PATH": path}
        return self._context(spec, paths.home, workdir, environ, lambda url: url)

    def _remote_context(self, spec: AgentSpec) -> RuntimeContext:
        place = self._hosts.place(spec.host) if self._hosts is not None else None
        if self._hosts is None or place is None:
            link = self._hosts.link(spec.host) if self._hosts is not None else None
            why = f" ({link.state.value}: {link.error})" if link and link.error else ""
            raise LaunchFailed(
                f"{spec.name} cannot start: host {spec.host} cannot be reached now{why}; "
                "`hosts` shows it"
            )
        facts = self._hosts.facts(spec.host)
        entry = self._hosts.entry(spec.host)
        # Fleetwarden's own tools (fw-forge) first, from the copies made on the host.
        dirs = [place.bundled(Path(tool)) for tool in self._settings.tool_path]
        dirs += [resolve_remote_path(d, place.home) for d in entry.path] if entry else []
        dirs += [posixpath.dirname(tool.path) for tool in facts.tools] if facts else []
        dirs += [posixpath.join(place.home, ".local", "bin"), *_STANDARD_PATH]
        environ = {"PATH": ":".join(dict.fromkeys(dirs)), "LANG": "C.UTF-8"}
        workdir = spec.workdir or Path(place.work_of(spec.name))
        home = Path(place.home_of(spec.name))

        def url(local: str) -> str:
            try:
                return place.url(local)
            except HostError as exc:
                raise LaunchFailed(f"{spec.name} cannot start: {exc}") from None

        return self._context(spec, home, workdir, environ, url)

    @property
    def hosts(self) -> Hosts | None:
        return self._hosts

    def remote_urls(self, spec: AgentSpec) -> list[str]:
        """The URLs ``spec``'s agent on its host is given (the forwards' ports there)."""
        place = self._hosts.place(spec.host) if self._hosts is not None else None
        if place is None:
            raise LaunchFailed(f"{spec.name} cannot start: host {spec.host} cannot be reached")
        try:
            return [place.url(url) for url in self.urls_of(spec)]
        except HostError as exc:
            raise LaunchFailed(f"{spec.name} cannot start: {exc}") from None

    def host_down(self, host: str) -> str | None:
        """Why ``host`` cannot be reached now (``None``: it can, or it is this machine):
        nothing is known of its agents meanwhile."""
        if host == LOCAL_HOST or self._hosts is None:
            return None
        if self._hosts.place(host) is not None:
            return None
        link = self._hosts.link(host)
        state = link.state.value if link is not None else "unknown"
        return f"host {host} {state}"

    def remote_tools(self, spec: AgentSpec) -> set[str]:
        """The programs ``spec``'s host was last found to have."""
        facts = self._hosts.facts(spec.host) if self._hosts is not None else None
        return {tool.name for tool in facts.tools} if facts is not None else set()

    def _context(
        self,
        spec: AgentSpec,
        home: Path,
        workdir: Path,
        environ: Mapping[str, str],
        url: Callable[[str], str],
    ) -> RuntimeContext:
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
            home=home,
            workdir=workdir,
            environ=environ,
            tty=self._backend(backend_key(spec)).tty,
            provider_urls={p: url(u) for p, u in self._provider_urls_of(spec).items()},
            heartbeat_url=url(beats.url_for(spec.name)) if beats is not None else None,
            heartbeat_token=beats.token_for(spec.name) if beats is not None else None,
            accounts={provider: account.kind.value for provider, account in chosen.items()},
            started_at=self._clock.now(),
            offline=self.offline,
        )

    @property
    def offline(self) -> frozenset[str]:
        """The providers the offline stand-in answers (none without the metering proxy)."""
        return self._provider_urls.offline if self._provider_urls is not None else frozenset()

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
