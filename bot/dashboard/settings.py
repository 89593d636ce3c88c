"""The config file's ``dashboard:`` section: where the read-only web dashboard listens,
what its links say, and the token that guards ``/metrics`` and ``/api`` for scripts.

The dashboard is off unless the section is there. It listens on loopback by default; a
non-loopback address is refused unless the dashboard serves TLS itself (``tls_cert`` and
``tls_key``) or the config says plainly that something else encrypts it
(``allow_plain_http: true``, e.g. a TLS reverse proxy on a private network). A
``public_url`` that is not on loopback must be ``https``: the sign-in link travels in it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fleet.schema import ConfigPath, EnvVarName

DEFAULT_LISTEN = "127.0.0.1:8750"


def split_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for IPv6) as its parts; :class:`ValueError` says why not."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is out of range: use 1-65535")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"{host!r} is not an IP address: listen on an address of this machine "
                f"(e.g. {DEFAULT_LISTEN}, or 0.0.0.0:8750 with TLS)"
            ) from None
    return host, number


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal or ``localhost``) is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
            "The address sign-in links say, as people reach it (e.g. "
            "`https://fleet.example.org` behind a TLS reverse proxy). Must be `https` "
            "unless it is on loopback. Default: `http://LISTEN` (`https://` with TLS)."
        ),
    )
    metrics_token_env: EnvVarName | None = Field(
        default=None,
        description=(
            "The environment variable holding a bearer token for `/metrics` and `/api` "
            "(`Authorization: Bearer TOKEN`). Without one, `/metrics` answers loopback "
            "clients only, and `/api` needs a sign-in (or `fleetwarden status`, which uses "
            "a token of its own in the state dir)."
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
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise PydanticCustomError(
                "dashboard_url_plain",
                "{url!r} is plain http on the network: sign-in links would cross it "
                "readable. Use https (a TLS reverse proxy), or a loopback address",
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

    def settings(self) -> DashboardSettings:
        """The section as the server uses it."""
        host, port = split_listen(self.listen)
        tls = (self.tls_cert, self.tls_key) if self.tls_cert and self.tls_key else None
        shown = f"[{host}]" if ":" in host else host
        default_url = f"{'https' if tls else 'http'}://{shown}:{port}"
        public_url = self.public_url or default_url
        return DashboardSettings(
            host=host,
            port=port,
            public_url=public_url,
            metrics_token_env=self.metrics_token_env,
            tls=tls,
            secure_cookies=public_url.startswith("https://"),
            local_only=is_loopback(urlsplit(public_url).hostname or ""),
        )


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    """Where the dashboard listens and how it is reached.

    ``local_only``: its public URL is on loopback, so no reverse proxy stands in front of
    it, and a loopback client is someone on this machine (the rule ``/metrics`` without a
    token rests on)."""

    host: str
    port: int
    public_url: str
    metrics_token_env: str | None
    tls: tuple[Path, Path] | None
    secure_cookies: bool
    local_only: bool
