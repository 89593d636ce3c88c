"""The ``accounts`` command: each account the proxy holds — its kind, what its provider
says of each window, where an even spread would be, whether it can be used, and the
agents on it. Read-only (viewer role)."""

from __future__ import annotations

from datetime import datetime

from bot.commands.family import Family, command
from bot.commands.handlers.spend.specs import ACCOUNTS
from bot.commands.routing.request import Request
from bot.render import fleet as render
from fleet.accounts.book import AccountBook
from fleet.accounts.quota import QuotaWindow
from fleet.accounts.routing import current, even_line
from fleet.budgets.resets import reset_tag, window_confidence

NO_ACCOUNTS = (
    "No accounts are configured: agents use the credentials they are given. Add an "
    "`accounts:` section (see docs/accounts.md) so the proxy holds them."
)


class AccountCommands(Family):
    """The ``accounts`` handler over the running :class:`AccountBook` (``None``: metering
    is off, so there are none)."""

    def __init__(self, book: AccountBook | None) -> None:
        self._book = book

    @command(ACCOUNTS)
    async def accounts(self, req: Request) -> str:
        return self.text() or NO_ACCOUNTS

    def text(self) -> str | None:
        """The accounts table, or ``None`` when there are no accounts."""
        book = self._book
        if book is None or not book.accounts:
            return None
        return render_accounts(book, book.now())


def render_accounts(book: AccountBook, now: datetime) -> str:
    """The ``accounts`` answer: a table of windows, one line per unusable account."""
    rows: list[list[str]] = []
    notes: list[str] = []
    for name in sorted(book.accounts.accounts):
        account = book.accounts.accounts[name]
        agents = ", ".join(book.agents_on(name)) or "—"
        kind = account.kind.value.replace("_", " ")
        if account.implicit:
            kind += f" (from {account.secret_env})"
        mark = book.mark_of(name)
        if mark is not None:
            until = f" until {mark.until:%Y-%m-%d %H:%M} UTC" if mark.until else ""
            notes.append(f"- **{name}** cannot be used{until}: {mark.reason}")
        windows = [w for w in book.windows_of(name) if current(w, now)]
        if not windows:
            rows.append([name, kind, account.provider, "—", "—", "—", "—", _status(mark), agents])
        for window in windows:
            rows.append(
                [
                    name,
                    kind,
                    account.provider,
                    window.window,
                    f"{window.used:.0%}",
                    _line(window, now),
                    _reset(window, now),
                    _status(mark, window),
                    agents,
                ]
            )
    headers = ("account", "kind", "provider", "window", "used", "even line", "resets in")
    text = render.table((*headers, "status", "agents"), rows)
    return text + ("\n\n" + "\n".join(notes) if notes else "")


def _line(window: QuotaWindow, now: datetime) -> str:
    line = even_line(window, now)
    return "—" if line is None else f"{line:.0%}"


def _reset(window: QuotaWindow, now: datetime) -> str:
    """``3h00m (provider)``: the time to the window's reset and how sure it is; ``unknown``
    when the provider gave none."""
    if window.resets_at is None:
        return reset_tag(window_confidence(window))
    left = render.duration(max((window.resets_at - now).total_seconds(), 0.0))
    return f"{left} ({reset_tag(window_confidence(window))})"


def _status(mark: object, window: QuotaWindow | None = None) -> str:
    health = getattr(mark, "health", None)
    if health is not None:
        return str(health)
    return window.status.value if window is not None else "ok"
