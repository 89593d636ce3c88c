"""Host keys: which key each host must offer, recording one (``hosts trust``), and the
refusal when a host offers another.

A host's key is on record in the ``known_hosts`` file its entry names, in OpenSSH's format
(``[address]:port`` for a port other than 22). Nothing is ever accepted silently: a
connection to a host whose key is not on record, or whose key differs from the one on
record, is refused with a message naming the host, the fingerprint it offered and the
fix. :func:`trust` is the one way a key gets on record: it reads the key the host offers
(a key exchange and nothing more: no login, nothing sent), and records it; it refuses to
replace a different key on record unless told to.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fleet.hosts.errors import (
    HostError,
    HostKeyChanged,
    HostKeyError,
    HostKeyUnknown,
    ssh_says,
)
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.schema import DEFAULT_PORT, HostEntry, SshTarget
from fleet.private_files import open_private, write_private

log = logging.getLogger(__name__)

KEY_CHECK_HINT = "on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"


@dataclass(frozen=True, slots=True)
class Trusted:
    """What :func:`trust` did: the key's fingerprint and known_hosts line, whether it was
    newly recorded (``False``: it already was), and the fingerprints it replaced."""

    fingerprint: str
    line: str
    recorded: bool
    replaced: tuple[str, ...] = ()


def host_pattern(address: str, port: int) -> str:
    """How known_hosts names a host: ``address``, or ``[address]:port`` off port 22."""
    return address if port == DEFAULT_PORT else f"[{address}]:{port}"


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:…``, as ``ssh-keygen -lf`` prints it."""
    return key.get_fingerprint("sha256")


def key_line(target: SshTarget, key: asyncssh.SSHKey) -> str:
    """The known_hosts line recording ``key`` for ``target``'s address and port."""
    kind, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
    return f"{host_pattern(target.address, target.port)} {kind} {blob}"


def read_known(path: Path) -> asyncssh.SSHKnownHosts:
    """The known_hosts file at ``path`` (none yet: an empty one). Raises :class:`HostError`
    when it cannot be read or holds a line that is not a known_hosts line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise HostError(f"cannot read the known_hosts file {path}: {exc}") from None
    try:
        return asyncssh.import_known_hosts(text)
    except ValueError as exc:
        raise HostError(f"the known_hosts file {path} is not valid: {exc}") from None


def recorded_keys(known: asyncssh.SSHKnownHosts, target: SshTarget) -> list[asyncssh.SSHKey]:
    """The keys on record for ``target`` (as asyncssh matches them when it connects)."""
    port = None if target.port == DEFAULT_PORT else target.port
    return list(known.match(target.address, "", port)[0])


def refusal(
    entry: HostEntry, offered: asyncssh.SSHKey | None, recorded: Sequence[asyncssh.SSHKey]
) -> HostKeyError:
    """The error for a host that offered ``offered`` (``None``: the handshake ended before
    a key was seen) where ``recorded`` is on record."""
    target = entry.target
    where = f"host {entry.name} ({target.address}:{target.port})"
    seen = fingerprint(offered) if offered is not None else None
    offered_text = f"offered the host key {seen}" if seen else "offered no key we could check"
    if recorded:
        on_record = ", ".join(fingerprint(key) for key in recorded)
        return HostKeyChanged(
            f"{where} {offered_text}, but {entry.known_hosts} records {on_record} for it: "
            "the host was reinstalled or re-keyed, or someone is in the middle; nothing was "
            f"sent. Check the key ({KEY_CHECK_HINT}), then run "
            f"`fleetwarden hosts trust {entry.name} --replace`",
            fingerprint=seen,
        )
    return HostKeyUnknown(
        f"{where} {offered_text}, which is not on record in {entry.known_hosts}: check it is "
        f"the host's own key ({KEY_CHECK_HINT}), then run `fleetwarden hosts trust "
        f"{entry.name}`",
        fingerprint=seen,
    )


async def fetch_host_key(
    target: SshTarget, *, algorithms: Sequence[str] = (), wait: float = 10.0
) -> asyncssh.SSHKey:
    """The key ``target`` offers in a key exchange (no login), preferring ``algorithms``."""
    try:
        async with asyncio.timeout(wait):
            key = await asyncssh.get_server_host_key(
                target.address,
                target.port,
                server_host_key_algs=list(algorithms) or (),
                config=None,  # no ~/.ssh/config of whoever runs Fleetwarden
            )
    except TimeoutError:
        raise HostError(
            f"{target.address}:{target.port} did not answer within {wait:g} s"
        ) from None
    except (OSError, asyncssh.Error) as exc:
        raise HostError(f"cannot reach {target.address}:{target.port}: {ssh_says(exc)}") from None
    if key is None:
        raise HostError(f"{target.address}:{target.port} offered no host key")
    return key


async def offered_key(
    target: SshTarget, recorded: Sequence[asyncssh.SSHKey], *, wait: float = 10.0
) -> asyncssh.SSHKey:
    """The key ``target`` offers, asked for in the algorithms of the keys on record first
    (as a connection asks): a host with several keys offers the one on record."""
    algorithms = [alg.decode("ascii") for key in recorded for alg in key.sig_algorithms]
    if algorithms:
        try:
            return await fetch_host_key(target, algorithms=algorithms, wait=wait)
        except HostError:
            pass  # it has no key of those kinds any more: see what it has
    return await fetch_host_key(target, wait=wait)


async def trust(
    entry: HostEntry, *, expect: str | None = None, replace: bool = False, wait: float = 10.0
) -> Trusted:
    """Read the key the host offers and record it in its known_hosts file.

    ``expect``, a fingerprint the operator checked on the host, must match, or nothing is
    recorded. A different key already on record is replaced only with ``replace``;
    otherwise :class:`HostKeyChanged`. Raises :class:`HostError` when the host cannot be
    reached or the file cannot be written."""
    target = entry.target
    recorded = recorded_keys(read_known(entry.known_hosts), target)
    key = await offered_key(target, recorded, wait=wait)
    seen = fingerprint(key)
    if expect is not None and expect.strip() != seen:
        raise HostKeyError(
            f"host {entry.name} ({target.address}:{target.port}) offered the host key "
            f"{seen}, not the {expect.strip()} expected: nothing recorded",
            fingerprint=seen,
        )
    line = key_line(target, key)
    if key in recorded:
        return Trusted(seen, line, recorded=False)
    if recorded and not replace:
        raise refusal(entry, key, recorded)
    replaced = tuple(fingerprint(old) for old in recorded)
    try:
        if recorded:
            _rewrite_without(entry.known_hosts, target)
        _append(entry.known_hosts, line)
    except OSError as exc:
        raise HostError(f"cannot write the known_hosts file {entry.known_hosts}: {exc}") from None
    log.warning(
        "host %s: recorded host key %s in %s%s",
        entry.name,
        seen,
        entry.known_hosts,
        f" in place of {', '.join(replaced)}" if replaced else "",
    )
    return Trusted(seen, line, recorded=True, replaced=replaced)


def _append(path: Path, line: str) -> None:
    """Add ``line`` to ``path``, creating the file 0600 (and its directory 0700)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = open_private(path, os.O_WRONLY | os.O_APPEND)
    with os.fdopen(fd, "ab") as file:
        # A last line without its newline would run into ours.
        gap = b"\n" if os.fstat(fd).st_size and not _ends_with_newline(path) else b""
        file.write(gap + line.encode("ascii") + b"\n")


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def _rewrite_without(path: Path, target: SshTarget) -> None:
    """Drop every line whose keys are on record for ``target`` (a line naming several hosts
    goes whole), keeping comments, markers and other hosts' lines."""
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "@")):
            try:
                if recorded_keys(asyncssh.import_known_hosts(stripped), target):
                    continue
            except ValueError:
                pass  # not ours to judge: kept as it was
        kept.append(line)
    write_private(path, "".join(f"{line}\n" for line in kept))
