"""Opening one SSH connection to a host: the client keys of its entry, the host-key check,
and what each failure means.

Keys come from the entry's key file (the passphrase from the environment variable the
entry names) or from the ssh-agent at ``SSH_AUTH_SOCK``. The environment is passed in,
never read globally; a passphrase is held only long enough to decrypt the key and never
appears in a message (what is said is the variable's name). Nothing else the local user
has is used: no ``~/.ssh/config``, default identity files, CA bundle, or agent unless the
entry asks for it.

Only a key on record in the entry's known_hosts is accepted. A host offering another is
refused with :func:`fleet.hosts.link.known.refusal`'s message (the fingerprint it offered, the
fix); a login the host refuses is :class:`HostLoginRefused`; anything else (unreachable,
timed out, handshake cut) is a plain :class:`HostError`, worth retrying.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from fleet.hosts.errors import HostError, HostLoginRefused, ssh_says
from fleet.hosts.link import ssh as asyncssh
from fleet.hosts.link.known import offered_key, read_known, recorded_keys, refusal
from fleet.hosts.schema import HostEntry

AGENT_SOCKET_VAR = "SSH_AUTH_SOCK"


def load_key_file(entry: HostEntry, env: Mapping[str, str]) -> asyncssh.SSHKey:
    """The entry's private key, decrypted with the passphrase its variable holds. Blocking
    (a passphrase's key derivation takes a while): run it in a thread."""
    if entry.key_file is None:
        raise HostLoginRefused(f"host {entry.name} has no key_file (it uses the ssh-agent)")
    passphrase: str | None = None
    if entry.key_passphrase_env is not None:
        passphrase = env.get(entry.key_passphrase_env)
        if passphrase is None:
            raise HostLoginRefused(
                f"host {entry.name}: key_passphrase_env names {entry.key_passphrase_env}, "
                "which is not set in Fleetwarden's environment: set it, or remove "
                "key_passphrase_env for a key without a passphrase"
            )
    try:
        return asyncssh.read_private_key(entry.key_file, passphrase)
    except OSError as exc:
        raise HostLoginRefused(
            f"host {entry.name}: cannot read key_file {entry.key_file}: {exc.strerror}"
        ) from None
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        hint = ""
        if "passphrase" in str(exc).lower():
            hint = (
                " (an encrypted key needs key_passphrase_env)"
                if passphrase is None
                else f" (is {entry.key_passphrase_env} the key's passphrase?)"
            )
        raise HostLoginRefused(
            f"host {entry.name}: cannot load key_file {entry.key_file}: {exc}{hint}"
        ) from None


@asynccontextmanager
async def client_keys(
    entry: HostEntry, env: Mapping[str, str]
) -> AsyncIterator[Sequence[asyncssh.SSHKey | asyncssh.SSHKeyPair]]:
    """The keys to offer the host, for the length of a login (an agent's keys sign through
    the agent, which stays connected until then). Raises :class:`HostLoginRefused`."""
    if entry.key_file is not None:
        yield [await asyncio.to_thread(load_key_file, entry, env)]
        return
    path = env.get(AGENT_SOCKET_VAR)
    if not path:
        raise HostLoginRefused(
            f"host {entry.name} logs in with the ssh-agent (agent: true), but "
            f"{AGENT_SOCKET_VAR} is not set in Fleetwarden's environment: start an agent "
            "and load the key (ssh-add), or give the entry a key_file"
        )
    agent = asyncssh.SSHAgentClient(path)
    try:
        try:
            keys = await agent.get_keys()
        except (OSError, ValueError, asyncssh.Error) as exc:
            raise HostLoginRefused(
                f"host {entry.name}: cannot use the ssh-agent at {path}: {exc}"
            ) from None
        if not keys:
            raise HostLoginRefused(
                f"host {entry.name}: the ssh-agent at {path} holds no keys: add one (ssh-add)"
            )
        yield list(keys)
    finally:
        agent.close()
        await agent.wait_closed()


class Watcher(asyncssh.SSHClient):
    """Remembers the key the host offered when it was not on record, and why the
    connection ended."""

    def __init__(self) -> None:
        self.offered: asyncssh.SSHKey | None = None
        self.lost: Exception | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.offered = key
        return False  # asyncssh accepted the keys on record itself: this one is not

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc


async def dial(
    entry: HostEntry,
    env: Mapping[str, str],
    *,
    connect_timeout: float,
    keepalive_interval: float,
    keepalive_count_max: int,
) -> tuple[asyncssh.SSHClientConnection, Watcher]:
    """A logged-in connection to the host, and its :class:`Watcher`. Raises
    :class:`~fleet.hosts.errors.HostKeyError`, :class:`HostLoginRefused` or
    :class:`HostError`."""
    target = entry.target
    known = await asyncio.to_thread(read_known, entry.known_hosts)
    recorded = recorded_keys(known, target)
    watcher = Watcher()
    async with client_keys(entry, env) as keys:
        try:
            conn = await asyncssh.connect(
                target.address,
                target.port,
                username=target.user,
                client_factory=lambda: watcher,
                known_hosts=known,
                client_keys=keys,
                agent_path=None,
                preferred_auth="publickey",
                config=None,
                x509_trusted_certs=None,
                agent_forwarding=False,
                connect_timeout=connect_timeout,
                keepalive_interval=keepalive_interval,
                keepalive_count_max=keepalive_count_max,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise refusal(entry, watcher.offered, recorded) from None
        except asyncssh.KeyExchangeFailed as exc:
            if recorded:  # re-keyed, maybe with a kind of key not on record
                key = await offered_key(target, recorded)
                if key not in recorded:
                    raise refusal(entry, key, recorded) from None
            raise HostError(f"host {entry.name}: key exchange failed: {ssh_says(exc)}") from None
        except asyncssh.PermissionDenied as exc:
            raise HostLoginRefused(
                f"host {entry.name} ({target}) refused the login: {ssh_says(exc)}; check that "
                f"the key is in the authorized_keys of {target.user} there"
            ) from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise HostError(f"cannot reach host {entry.name} ({target}): {ssh_says(exc)}") from None
    return conn, watcher
