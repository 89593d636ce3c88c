"""``fleetwarden accounts login NAME`` and ``fleetwarden accounts check``.

``login`` makes the ChatGPT login of a ``chatgpt_subscription`` account: it runs Codex's
own login flow (``codex login``, or ``codex login --device-auth`` on a machine without a
browser) with a private ``CODEX_HOME``, checks that what it wrote is a ChatGPT login, and
keeps it at ``<state_dir>/accounts/NAME/auth.json`` (mode 0600, written whole). With
``--from PATH`` it takes a Codex ``auth.json`` made elsewhere instead; that copy must then
never be used again — two copies of one login race at refresh, and the loser's login is
revoked. ``check`` asks each account's provider whether its credential is accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import aiohttp

from bot.config import Config
from bot.render import fleet as render
from fleet.accounts.chatgpt import ChatGptLogin, keep_login, parse_login
from fleet.accounts.doctor import Checked, check_accounts
from fleet.accounts.model import AccountError, AccountKind, login_path
from fleet.timing.clock import SystemClock

CODEX_CONFIG = 'cli_auth_credentials_store = "file"\n'


def configure_parser(parser: argparse.ArgumentParser, config_help: str) -> None:
    sub = parser.add_subparsers(dest="accounts_command", metavar="COMMAND", required=True)
    login = sub.add_parser(
        "login",
        help="make the ChatGPT login of a chatgpt_subscription account",
        description=(
            "Run Codex's login flow with a private CODEX_HOME and keep the login in the "
            "state dir, or take a Codex auth.json made elsewhere with --from."
        ),
    )
    login.add_argument("name", metavar="NAME", help="the account, as named under accounts:")
    login.add_argument("--config", type=Path, help=config_help)
    login.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="PATH",
        help="take this Codex auth.json instead of logging in (do not use that copy again)",
    )
    login.add_argument(
        "--device-auth",
        action="store_true",
        help="log in with a device code (for a machine without a browser)",
    )
    login.add_argument("--codex", default="codex", help="the codex program (default: codex)")
    check = sub.add_parser(
        "check", help="tell, per account, whether its credential is present and accepted"
    )
    check.add_argument("--config", type=Path, help=config_help)


def main(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    """Run one ``accounts`` subcommand; the exit status."""
    try:
        if args.accounts_command == "login":
            return login(config, args.name, args.source, args.device_auth, args.codex, environ)
        return asyncio.run(check(config, environ))
    except AccountError as exc:
        print(f"fleetwarden: {exc}", file=sys.stderr)
        return 2


def login(
    config: Config,
    name: str,
    source: Path | None,
    device_auth: bool,
    codex: str,
    environ: Mapping[str, str],
) -> int:
    account = config.accounts.accounts.get(name)
    if account is None or account.kind is not AccountKind.CHATGPT_SUBSCRIPTION:
        known = [
            a.name
            for a in config.accounts.accounts.values()
            if a.kind is AccountKind.CHATGPT_SUBSCRIPTION
        ]
        raise AccountError(
            f"no chatgpt_subscription account named {name!r} in the config (those there: "
            f"{', '.join(known) or 'none'}); add `{name}: {{kind: chatgpt_subscription}}` "
            "under accounts:"
        )
    made = _read(source) if source is not None else _codex_login(config, codex, device_auth)
    target = login_path(config.state_dir, name)
    keep_login(target, made)
    plan = f" ({made.plan} plan)" if made.plan else ""
    print(f"account {name}: ChatGPT login kept at {target}{plan}")
    if source is not None:
        print(
            f"Do not use {source} again anywhere (delete it): two copies of one login race "
            "at refresh, and the loser's login is revoked."
        )
    return 0


def _read(source: Path) -> ChatGptLogin:
    try:
        return parse_login(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AccountError(f"cannot read {source}: {exc.strerror or exc}") from None
    except AccountError as exc:
        raise AccountError(f"{source} {exc}") from None


def _codex_login(config: Config, codex: str, device_auth: bool) -> ChatGptLogin:
    program = shutil.which(codex)
    if program is None:
        raise AccountError(
            f"{codex!r} is not on PATH: install Codex (npm install -g @openai/codex) or "
            "pass --codex PATH, or log in elsewhere and use --from PATH"
        )
    home_root = config.state_dir / "accounts"
    home_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".login-", dir=home_root) as home:
        codex_home = Path(home)
        (codex_home / "config.toml").write_text(CODEX_CONFIG, encoding="utf-8")
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(codex_home),
            "CODEX_HOME": str(codex_home),
            "LANG": "C.UTF-8",
        }
        argv = [program, "login", *(["--device-auth"] if device_auth else [])]
        status = subprocess.run(argv, env=env, check=False).returncode
        if status != 0:
            raise AccountError(f"codex login failed (exit status {status}); nothing was kept")
        try:
            text = (codex_home / "auth.json").read_text(encoding="utf-8")
        except OSError:
            raise AccountError("codex login wrote no auth.json; nothing was kept") from None
        try:
            return parse_login(text)
        except AccountError as exc:
            raise AccountError(f"what codex login wrote {exc}") from None


async def check(config: Config, environ: Mapping[str, str]) -> int:
    if not config.accounts:
        print("no accounts are configured (see docs/accounts.md)")
        return 0
    token_urls = {name: entry.token_url for name, entry in config.document.accounts.items()}
    async with aiohttp.ClientSession(trust_env=False) as session:
        results = await check_accounts(
            config.accounts,
            environ=environ,
            state_dir=config.state_dir,
            routes=config.providers,
            token_urls=token_urls,
            session=session,
            now=SystemClock().now(),
        )
    print(render_checks(results))
    return 0 if all(r.ok for r in results) else 1


def render_checks(results: list[Checked]) -> str:
    def mark(value: bool | None) -> str:
        return "yes" if value else ("no" if value is False else "?")

    rows = [
        [
            r.account.name,
            r.account.kind.value,
            r.account.provider,
            mark(r.present),
            mark(r.well_formed if r.present else None),
            mark(r.accepted),
            r.detail,
        ]
        for r in results
    ]
    headers = ("account", "kind", "provider", "present", "well-formed", "accepted", "detail")
    return render.table(headers, rows)
