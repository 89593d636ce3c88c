"""``fleetwarden hosts trust NAME`` and ``fleetwarden hosts check``.

``trust`` connects to the host of a ``hosts:`` entry, shows the fingerprint of the key it
offers, and records that key in the entry's known_hosts file (made 0600 if missing) —
with ``--expect SHA256:…`` (the fingerprint read on the host itself) only if they match;
a different key already on record is replaced only with ``--replace``. ``check`` logs in
to every host and says what it has (load, free disk, agent CLIs, tmux, bubblewrap), or
why it cannot be reached; its exit status is 1 when any host is not usable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.cli.status.command import shown
from bot.config import Config
from fleet.hosts.errors import HostError
from fleet.hosts.link.connection import HostLink, LinkState
from fleet.hosts.link.known import trust
from fleet.hosts.probe import HostFacts, probe
from fleet.hosts.schema import HostEntry
from fleet.timing.clock import SystemClock

CHECK_WAIT = 20.0  # seconds to wait for each host's link


def configure_parser(parser: argparse.ArgumentParser, config_help: str) -> None:
    sub = parser.add_subparsers(dest="hosts_command", metavar="COMMAND", required=True)
    trusting = sub.add_parser(
        "trust",
        help="show a host's key fingerprint and record the key in its known_hosts",
        description=(
            "Connect to the host, show the fingerprint of the key it offers and record it "
            "in the entry's known_hosts file. Check the fingerprint on the host itself "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), or give it with --expect."
        ),
    )
    trusting.add_argument("name", metavar="NAME", help="the host, as named under hosts:")
    trusting.add_argument("--config", type=Path, help=config_help)
    trusting.add_argument(
        "--expect", metavar="SHA256:…", help="record the key only if it has this fingerprint"
    )
    trusting.add_argument(
        "--replace", action="store_true", help="replace a different key already on record"
    )
    checking = sub.add_parser(
        "check", help="log in to every host and say what it has, or why it cannot be reached"
    )
    checking.add_argument("--config", type=Path, help=config_help)


def main(args: argparse.Namespace, config: Config, environ: Mapping[str, str]) -> int:
    if args.hosts_command == "trust":
        return _trust(config, args.name, args.expect, args.replace)
    return asyncio.run(_check(config.hosts, environ))


def _trust(config: Config, name: str, expect: str | None, replace: bool) -> int:
    entry = next((e for e in config.hosts if e.name == name), None)
    if entry is None:
        known = ", ".join(e.name for e in config.hosts) or "none"
        print(
            f"fleetwarden: no host {name!r} in the config's hosts (known: {known})", file=sys.stderr
        )
        return 2
    try:
        done = asyncio.run(trust(entry, expect=expect, replace=replace))
    except HostError as exc:
        print(shown(f"fleetwarden: {exc}"), file=sys.stderr)
        return 1
    where = f"{entry.name} ({entry.target})"
    if not done.recorded:
        print(f"{where}: its key {done.fingerprint} is already on record in {entry.known_hosts}")
    else:
        instead = f", in place of {', '.join(done.replaced)}" if done.replaced else ""
        print(f"{where}: recorded its key {done.fingerprint} in {entry.known_hosts}{instead}")
    return 0


async def _check(entries: tuple[HostEntry, ...], environ: Mapping[str, str]) -> int:
    if not entries:
        print("no hosts in the config: agents run on this machine only")
        return 0
    results = await asyncio.gather(*(_check_one(e, environ) for e in entries))
    for line, _ in results:
        print(shown(line))  # what a host said is in it: nothing of it drives the terminal
    return 0 if all(ok for _, ok in results) else 1


async def _check_one(entry: HostEntry, environ: Mapping[str, str]) -> tuple[str, bool]:
    link = HostLink(entry, env=environ, clock=SystemClock())
    await link.start()
    try:
        try:
            status = await link.wait_for(LinkState.CONNECTED, LinkState.REFUSED, wait=CHECK_WAIT)
        except TimeoutError:
            status = link.status()
        if status.state is not LinkState.CONNECTED:
            why = status.error or f"not connected within {CHECK_WAIT:g} s"
            return f"{entry.name} ({entry.target}): cannot be used — {why}", False
        try:
            facts = await probe(link, entry.state_dir, path=entry.path, host=entry.name)
        except HostError as exc:
            return f"{entry.name} ({entry.target}): connected, but {exc}", False
        return f"{entry.name} ({entry.target}): ok — {_facts(facts)}", True
    finally:
        await link.stop()


def _facts(facts: HostFacts) -> str:
    load = f"load {facts.load[0]:.2f}" if facts.load else "load unknown"
    disk = (
        f"{facts.disk.free_bytes / 2**30:.1f} GiB free"
        if facts.disk is not None
        else "free disk unknown"
    )
    tools = ", ".join(
        f"{t.name} {(t.version or '').split()[0] if t.version else ''}".strip() for t in facts.tools
    )
    return f"{load}, {disk}; has {tools or 'none of the agent CLIs, tmux or bubblewrap'}"
