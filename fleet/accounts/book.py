"""The accounts at work: which account pays for each agent's requests, its credential,
whether it can be used now, and what its provider says is left in each window.

:class:`AccountBook` is what the metering proxy consults for every request
(:meth:`~AccountBook.resolve`, answered from memory) and what the supervisor asks when a
run starts (:meth:`~AccountBook.assign`). What must outlive a restart — which account each
agent is on, accounts found unusable, the latest quota windows — is written to the ledger
soon after it changes, never on a request's path (:mod:`fleet.accounts.keeping`).

An account is **unusable** after its provider refused its credential (401: marked until an
operator fixes it, with one notice) or said its window is spent (``rejected``: marked until
the window resets). An agent on a pool then moves to the pool's account with the most room
before its next request; an agent with nowhere to go gets the proxy's refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from fleet.accounts.chatgpt_keeper import LoginKeeper
from fleet.accounts.inject import Credential
from fleet.accounts.keeping import Keeping
from fleet.accounts.model import Account, AccountError, AccountKind, AccountSet, login_path
from fleet.accounts.quota import (
    SOURCE_ANTHROPIC_UNIFIED,
    SOURCE_CLAUDE_STREAM,
    SOURCE_CODEX,
    QuotaStatus,
    QuotaWindow,
    merge,
)
from fleet.accounts.routing import room
from fleet.accounts.state import AccountLedger, Assignment, Health, Mark
from fleet.notices import Notice, NoticeBoard
from fleet.redaction.known import Secret
from fleet.timing.clock import Clock

log = logging.getLogger(__name__)

_SPENDABLE: Final = frozenset({SOURCE_ANTHROPIC_UNIFIED, SOURCE_CODEX, SOURCE_CLAUDE_STREAM})
REJECTED_FALLBACK: Final = timedelta(minutes=5)  # a rejection that names no reset


class AccountBook:
    """Every account, its credential and its health; the agents on each."""

    def __init__(
        self,
        accounts: AccountSet,
        *,
        environ: Mapping[str, str],
        state_dir: Path,
        clock: Clock,
        ledger: AccountLedger | None = None,
        notices: NoticeBoard | None = None,
        fallback: str | None = None,
    ) -> None:
        self.accounts = accounts
        self._environ = environ
        self._clock = clock
        self.kept = Keeping(ledger)  # what outlives a restart, written soon after it changes
        self.notices = notices
        self._fallback = fallback
        self.logins: dict[str, LoginKeeper] = {}
        self._token_urls: dict[str, str] = {}
        self._state_dir = state_dir
        self._assigned: dict[tuple[str, str], str] = {}
        self._wanted: dict[str, tuple[str, str | None]] = {}  # agent -> (runtime, wanted)
        self._marks: dict[str, Mark] = {}
        self.windows: dict[tuple[str, str], QuotaWindow] = {}
        self._tasks: set[asyncio.Task[object]] = set()

    def set_token_url(self, account: str, url: str) -> None:
        self._token_urls[account] = url

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Read the ChatGPT logins and what the ledger remembers; start the writer."""
        for account in self.accounts.accounts.values():
            if account.kind is AccountKind.CHATGPT_SUBSCRIPTION:
                keeper = LoginKeeper(
                    account.name,
                    login_path(self._state_dir, account.name),
                    self._token_urls.get(account.name, ""),
                )
                try:
                    keeper.load()
                except AccountError as exc:
                    self._mark(account.name, Health.MISSING, str(exc), None, notify=False)
                self.logins[account.name] = keeper
        ledger = self.kept.ledger
        if ledger is not None:
            for row in await ledger.account_assignments():
                if row.account in self.accounts.accounts:
                    self._assigned[(row.agent, row.provider)] = row.account
                    self._wanted[row.agent] = (row.runtime, row.wanted)
            now = self._clock.now()
            for mark in await ledger.account_marks():
                owner = self.accounts.accounts.get(mark.account)
                live = mark.until is None or mark.until > now
                # A refused key or token is fixed by setting the variable and restarting:
                # only a spent window, or a ChatGPT login (remade in the state dir), stays.
                kept = mark.health is Health.REJECTED or (
                    owner is not None
                    and owner.kind is AccountKind.CHATGPT_SUBSCRIPTION
                    and mark.health is not Health.OK
                )
                if owner is not None and live and kept and mark.account not in self._marks:
                    self._marks[mark.account] = mark
            self.windows = merge(self.windows, await ledger.quota_windows())
        self.kept.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.kept.stop()

    # -- a new run ---------------------------------------------------------------------

    def assign(self, agent: str, runtime: str, wanted: str | None) -> dict[str, Account]:
        """The accounts a new run of ``agent`` uses, per provider: of its pool's accounts
        that are usable now, the one with the most room (:func:`room`). Raises
        :class:`AccountError` when the agent names an account it cannot use, or when
        every account it could use is unusable, saying why."""
        now = self._clock.now()
        choices = self.accounts.choices(runtime, wanted, fallback=self._fallback)
        chosen: dict[str, Account] = {}
        for provider, members in choices.items():
            account = self._best(members, now)
            if account is None:
                why = "; ".join(self._why(m.name, now) for m in members)
                raise AccountError(f"no usable {provider} account for {agent}: {why}")
            chosen[provider] = account
        self._wanted[agent] = (runtime, wanted)
        for who, provider in [key for key in self._assigned if key[0] == agent]:
            if provider not in chosen:  # this run does not use it: no longer the agent's
                del self._assigned[(who, provider)]
                self.kept.assigned(Assignment(agent, provider, "", now))
        for provider, account in chosen.items():
            self._set_assignment(agent, provider, account.name, now)
        return chosen

    # -- a request ---------------------------------------------------------------------

    def holds(self, agent: str) -> bool:
        """Whether the proxy holds credentials for ``agent`` (its run was assigned
        accounts): then whatever credential it sends is dropped, on every route."""
        return agent in self._wanted

    def resolve(self, agent: str, provider: str) -> Credential | str | None:
        """The credential to inject for ``agent``'s request to ``provider``; a refusal
        (why, in words) when its accounts are all unusable; ``None`` when its run was given
        no account for that provider — never another account it was not assigned."""
        now = self._clock.now()
        name = self._assigned.get((agent, provider))
        if name is None:
            return None
        if not self.usable(name, now):
            moved = self._move(agent, provider, name, now)
            if moved is None:
                return f"account {name} cannot be used: {self._why(name, now)}"
            name = moved
        return self._credential(self.accounts.accounts[name])

    def _credential(self, account: Account) -> Credential | str:
        if account.kind is AccountKind.CHATGPT_SUBSCRIPTION:
            keeper = self.logins.get(account.name)
            login = keeper.login if keeper is not None else None
            if login is None:
                return f"account {account.name} has no ChatGPT login"
            return Credential(account, login.access_token, login.account_id)
        secret = self._environ.get(account.secret_env or "", "").strip()
        if not secret:
            return f"account {account.name}: {account.secret_env} is not set"
        return Credential(account, secret)

    def _move(self, agent: str, provider: str, name: str, now: datetime) -> str | None:
        """Move ``agent`` off unusable account ``name`` to the best usable one of its pool."""
        runtime, wanted = self._wanted.get(agent, ("", None))
        try:
            members = self.accounts.choices(runtime, wanted, fallback=self._fallback).get(
                provider, ()
            )
        except AccountError:
            members = ()
        best = self._best([m for m in members if m.name != name], now)
        if best is None:
            return None
        self._set_assignment(agent, provider, best.name, now)
        log.info("agent %s moved from account %s to %s", agent, name, best.name)
        self._post(
            Notice(
                f"**{agent}** moved from account **{name}** to **{best.name}**: "
                f"{self._why(name, now)}.",
                tone="warning",
                agents=(agent,),
                home_too=False,
            )
        )
        return best.name

    # -- what the provider said --------------------------------------------------------

    def observe(self, windows: Iterable[QuotaWindow]) -> None:
        """Take in quota windows the provider reported; a ``rejected`` one marks its
        account until it resets."""
        fresh = [w for w in windows if w.account in self.accounts.accounts]
        if not fresh:
            return
        before = self.windows
        self.windows = merge(before, fresh)
        for window in fresh:
            key = (window.account, window.window)
            if self.windows.get(key) is window:
                self.kept.observed(before.get(key), window)
            # A subscription's window spent; an API key's per-minute limit is not a window
            # to leave the account over (its reset is seconds away).
            if window.status is QuotaStatus.REJECTED and window.source in _SPENDABLE:
                until = window.resets_at or window.observed_at + REJECTED_FALLBACK
                self._mark(
                    window.account,
                    Health.REJECTED,
                    f"its {window.window} window is used up",
                    until,
                    notify=True,
                )

    def refused(self, account: str, status: int) -> None:
        """The provider refused ``account``'s credential (401 or 403)."""
        self._mark(
            account,
            Health.UNAUTHORIZED,
            f"the provider refused its credential ({status})",
            None,
            notify=True,
        )

    def revoked(self, account: str, why: str) -> None:
        self._mark(account, Health.UNAUTHORIZED, why, None, notify=True)

    # -- reading -----------------------------------------------------------------------

    def usable(self, account: str, now: datetime | None = None) -> bool:
        mark = self._marks.get(account)
        now = now or self._clock.now()
        if mark is not None and mark.until is None and self._logged_in_again(mark):
            return True
        return mark is None or (mark.until is not None and mark.until <= now)

    def _logged_in_again(self, mark: Mark) -> bool:
        """Whether an operator made the ChatGPT login again since ``mark`` (``accounts
        login`` while this Fleetwarden runs): then it is read and the mark lifted."""
        keeper = self.logins.get(mark.account)
        if keeper is None:
            return False
        try:
            changed = keeper.path.stat().st_mtime > mark.at.timestamp()
            if changed:
                keeper.load()
        except (OSError, AccountError):
            return False
        if changed:
            log.info("account %s: a new ChatGPT login was found", mark.account)
            del self._marks[mark.account]
            self._mark_ok(mark.account)
        return changed

    def _mark_ok(self, account: str) -> None:
        now = self._clock.now()
        self.kept.marked(Mark(account, Health.OK, "", now, now))

    def mark_of(self, account: str) -> Mark | None:
        mark = self._marks.get(account)
        if mark is not None and mark.until is not None and mark.until <= self._clock.now():
            return None
        return mark

    def agents_on(self, account: str) -> list[str]:
        return sorted({a for (a, _), name in self._assigned.items() if name == account})

    def account_of(self, agent: str, provider: str) -> str | None:
        return self._assigned.get((agent, provider))

    def accounts_of(self, agent: str) -> list[tuple[str, str]]:
        """``(provider, account)`` of every provider ``agent``'s requests go to."""
        return sorted((p, name) for (a, p), name in self._assigned.items() if a == agent)

    def windows_of(self, account: str) -> list[QuotaWindow]:
        return sorted(
            (w for (name, _), w in self.windows.items() if name == account),
            key=lambda w: w.window,
        )

    def now(self) -> datetime:
        return self._clock.now()

    def known_secrets(self) -> list[Secret]:
        """The ChatGPT logins' tokens as they are now (a refresh replaces them), for the
        redactor; keys and tokens from variables are the config's, which it knows."""
        held = [keeper.login for keeper in self.logins.values() if keeper.login is not None]
        tokens = [t for h in held for t in (h.access_token, h.refresh_token, h.id_token)]
        return [Secret(token, "ChatGPT login") for token in tokens]

    # -- internals ---------------------------------------------------------------------

    def _best(self, members: Sequence[Account], now: datetime) -> Account | None:
        usable = [m for m in members if self.usable(m.name, now) and self._has_secret(m)]
        if not usable:
            return None
        # max() keeps the first of equals: config order breaks ties.
        return max(usable, key=lambda m: room(self.windows_of(m.name), now))

    def _has_secret(self, account: Account) -> bool:
        return isinstance(self._credential(account), Credential)

    def why_not(self, account: str) -> str:
        """Why ``account`` cannot be used now, in words (never its credential)."""
        return f"account {account} cannot be used: {self._why(account, self._clock.now())}"

    def _why(self, account: str, now: datetime) -> str:
        mark = self._marks.get(account)
        if mark is not None and (mark.until is None or mark.until > now):
            until = f" until {mark.until:%H:%M} UTC" if mark.until is not None else ""
            return f"{account}: {mark.reason}{until}"
        credential = self._credential(self.accounts.accounts[account])
        return credential if isinstance(credential, str) else f"{account}: usable"

    def _set_assignment(self, agent: str, provider: str, account: str, now: datetime) -> None:
        if self._assigned.get((agent, provider)) == account:
            return
        self._assigned[(agent, provider)] = account
        runtime, wanted = self._wanted.get(agent, ("", None))
        self.kept.assigned(Assignment(agent, provider, account, now, runtime, wanted))

    def _mark(
        self, account: str, health: Health, reason: str, until: datetime | None, *, notify: bool
    ) -> None:
        now = self._clock.now()
        old = self._marks.get(account)
        active = old is not None and (old.until is None or old.until > now)
        self._marks[account] = mark = Mark(account, health, reason, until, now)
        self.kept.marked(mark)
        if active and old is not None and old.health is health:
            return  # one notice per transition, never one per request
        log.warning("account %s is unusable: %s", account, reason)
        if notify:
            fix = (
                f" Log in again: `fleetwarden accounts login {account}`."
                if self.accounts.accounts[account].kind is AccountKind.CHATGPT_SUBSCRIPTION
                else " Check the credential with `fleetwarden accounts check`."
            )
            tail = fix if health is Health.UNAUTHORIZED else ""
            until_text = f" until {until:%Y-%m-%d %H:%M} UTC" if until is not None else ""
            agents = tuple(self.agents_on(account))
            self._post(
                Notice(
                    f"Account **{account}** cannot be used{until_text}: {reason}.{tail}",
                    tone="error" if health is Health.UNAUTHORIZED else "warning",
                    agents=agents,
                    alert=True,  # its agents stop getting answers: a limit or a failure
                )
            )

    def _post(self, notice: Notice) -> None:
        if self.notices is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: nobody to tell
            task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
                self.notices.post(notice)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write what changed to the ledger (:meth:`fleet.accounts.keeping.Keeping.flush`)."""
        await self.kept.flush()
