"""The config file's ``dashboard:`` section: where the read-only web dashboard listens,
what its links say, and the token that guards ``/metrics`` and ``/api`` for scripts.

The dashboard is off unless the section is there. It listens on loopback by default; a
non-loopback address is refused unless the dashboard serves TLS itself (``tls_cert`` and
``tls_key``) or the config says plainly that something else encrypts it
(``allow_plain_http: true``, e.g. a TLS reverse proxy on a private network). A
``public_url`` must be ``https`` off this machine: the sign-in link travels in it.

On this machine the dashboard goes by a name of its own (:func:`own_name`), never
``127.0.0.1`` or ``localhost``: a browser sends a cookie to every port of the name it was
set for, and any local user or agent may listen on another port of those.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fleet.connections.listen import split_listen as split_host_port
from fleet.destinations import is_loopback
from fleet.private_files import write_private
from fleet.schema import ConfigPath, EnvVarName

DEFAULT_LISTEN = "127.0.0.1:8750"
OWN_NAME_FILE = "dashboard-name"
"""In the state dir, mode 0600: the dashboard's own name on this machine (:func:`own_name`)."""
_OWN_NAME = re.compile(r"fleetwarden-[a-z2-7]{26}\.localhost")
_own_names: dict[Path, str] = {}  # by state dir: read once, never changed while it runs


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as its parts (:func:`fleet.connections.listen.split_listen`)."""
    return split_host_port(text, DEFAULT_LISTEN)


def own_name(state_dir: Path, *, make: bool = False) -> str | None:
    """The dashboard's own host name on this machine, ``fleetwarden-LABEL.localhost``, or
    ``None`` before it was made. LABEL is 130 random bits, made (``make``) at the
    dashboard's first start and kept in the state dir.

    Browsers resolve every ``*.localhost`` name to this machine, through an SSH tunnel's
    local end too. The session cookie is set for this name alone: a page on another local
    port, reached as ``127.0.0.1``, ``localhost`` or any other name, is sent nothing, and
    only a link from Fleetwarden carries the name (an agent cannot read the state dir).
    Raises ``OSError`` when ``make`` cannot write it."""
    known = _own_names.get(state_dir)
    if known is not None:
        return known
    path = state_dir / OWN_NAME_FILE
    try:
        name = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        name = ""
    if not _OWN_NAME.fullmatch(name):
        if not make:
            return None
        label = base64.b32encode(secrets.token_bytes(17)).decode().rstrip("=").lower()[:26]
        name = f"fleetwarden-{label}.localhost"
        write_private(path, name + "\n")
    _own_names[state_dir] = name
    return name


class DashboardSection(BaseModel):
    """The web dashboard: read-only pages of the fleet, budgets, usage, accounts, hosts,
    approvals and the audit trail, live; their JSON twins under `/api`; and Prometheus
    `/metrics`. Sign-in is a one-time link the `dashboard` command sends privately."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field(
        default=DEFAULT_LISTEN,
        description=(
            "The address and port it listens on. Loopback by default: reach it through an "
            "SSH tunnel (`ssh -L 8750:127.0.0.1:8750 HOST`) or a TLS reverse proxy. Any "
            "other address needs `tls_cert` and `tls_key`, or `allow_plain_http: true`."
        ),
    )
    public_url: str | None = Field(
        default=None,
        description=(
            "The address sign-in links say, as people reach it: an `https` URL off this "
            "machine (e.g. `https://fleet.example.org` behind a TLS reverse proxy). "
            "Default, with a loopback `listen`: the dashboard's own name, "
            "`http://fleetwarden-LABEL.localhost:PORT` (LABEL random, kept in the state "
            "dir's `dashboard-name`), which browsers resolve to this machine; otherwise "
            "`http://LISTEN` (`https://` with TLS)."
        ),
    )
    metrics_token_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding a bearer token for `/metrics` and `/api` "
            "(`Authorization: Bearer TOKEN`), for Prometheus and scripts. Without one, "
            "both need a sign-in, from this machine too (or `fleetwarden status`, which "
            "uses a token of its own in the state dir)."
        ),
    )
    tls_cert: ConfigPath | None = Field(
        default=None, description="A PEM certificate chain: the dashboard serves HTTPS itself."
    )
    tls_key: ConfigPath | None = Field(default=None, description="The PEM key of `tls_cert`.")
    allow_plain_http: bool = Field(
        default=False,
        description=(
            "Serve plain HTTP on a non-loopback `listen` address. Only when something else "
            "encrypts the way (a TLS reverse proxy, a VPN): sign-in links and cookies would "
            "otherwise cross the network readable."
        ),
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        try:
            split_listen(value)
        except ValueError as exc:
            raise PydanticCustomError(
                "dashboard_listen", "{problem}", {"problem": str(exc)}
            ) from None
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError(
                "dashboard_url",
                "{url!r} is not an http(s) URL: write e.g. https://fleet.example.org",
                {"url": value},
            )
        if parts.query or parts.fragment or parts.username or parts.password:
            raise PydanticCustomError(
                "dashboard_url",
                "{url!r} must be a plain base URL: no user, query or fragment",
                {"url": value},
            )
        if is_loopback(parts.hostname):
            raise PydanticCustomError(
                "dashboard_url_loopback",
                "{url!r} is on this machine, where a browser would send the session cookie "
                "to every other local port of that name: leave public_url out, and links "
                "name the dashboard by a name of its own (fleetwarden-LABEL.localhost)",
                {"url": value},
            )
        if parts.scheme == "http":
            raise PydanticCustomError(
                "dashboard_url_plain",
                "{url!r} is plain http on the network: sign-in links would cross it "
                "readable. Use https (a TLS reverse proxy), or leave public_url out",
                {"url": value},
            )
        return value.rstrip("/")

    @model_validator(mode="after")
    def _exposure(self) -> DashboardSection:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise PydanticCustomError(
                "dashboard_tls_pair", "tls_cert and tls_key go together: set both, or neither"
            )
        host, _ = split_listen(self.listen)
        if not is_loopback(host) and self.tls_cert is None and not self.allow_plain_http:
            raise PydanticCustomError(
                "dashboard_exposed",
                "listen {listen} is not a loopback address, and the dashboard would serve "
                "plain HTTP there: set tls_cert and tls_key, or keep it on 127.0.0.1 behind "
                "a TLS reverse proxy (public_url: https://...) or an SSH tunnel, or set "
                "allow_plain_http: true if something else encrypts the way",
                {"listen": self.listen},
            )
        return self

    def settings(self, state_dir: Path | None = None) -> DashboardSettings:
        """The section as the server uses it; ``state_dir`` keeps its own name."""
        host, port = split_listen(self.listen)
        tls = (self.tls_cert, self.tls_key) if self.tls_cert and self.tls_key else None
        return DashboardSettings(
            host=host,
            port=port,
            metrics_token_env=self.metrics_token_env,
            tls=tls,
            secure_cookies=self.public_url.startswith("https://")
            if self.public_url
            else tls is not None,
            local_only=self.public_url is None and is_loopback(host),
            configured_url=self.public_url,
            state_dir=state_dir,
        )


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """Where the dashboard listens and how it is reached.

    ``local_only``: it is reached on this machine (no ``public_url``, a loopback
    ``listen``), so no reverse proxy stands in front of it. It then goes by its own name
    (:attr:`own_name`)."""

    host: str
    port: int
    metrics_token_env: str | None
    tls: tuple[Path, Path] | None
    secure_cookies: bool
    local_only: bool
    configured_url: str | None = None
    state_dir: Path | None = None

    @property
    def own_name(self) -> str | None:
        """The host name browsers reach it by on this machine (:func:`own_name`): the only
        one its session cookie is set for. ``None`` behind a ``public_url``, off loopback,
        or before its first start made it."""
        if not self.local_only or self.state_dir is None:
            return None
        return own_name(self.state_dir)

    @property
    def public_url(self) -> str:
        """The address sign-in links say: the configured ``public_url``, else the own name
        and port (before the first start, or without a state dir: ``LISTEN``)."""
        if self.configured_url is not None:
            return self.configured_url
        scheme = "https" if self.tls else "http"
        name = self.own_name
        if name is None:
            name = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{name}:{self.port}"
