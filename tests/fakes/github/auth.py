"""Who may call the fake GitHub, as GitHub decides it: a personal access token, a GitHub
App's JWT (RS256, checked with the App's public key, ``iss`` its id, issued in the past,
expiring in the future but no more than ten minutes after it was issued), or an
installation token the fake minted (for the repositories it was narrowed to, with the
permissions it was given, for an hour). And the rate limit every answer reports.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# What an installation may do unless a test says otherwise: all Fleetwarden needs.
DEFAULT_PERMISSIONS: Final = {
    "issues": "write",
    "pull_requests": "write",
    "contents": "write",
    "checks": "write",
    "metadata": "read",
    "members": "read",
}
TOKEN_LIFETIME: Final = timedelta(hours=1)
RATE_LIMIT: Final = 5000
_LEVELS: Final = {"read": 1, "write": 2, "admin": 3}


class Refused(Exception):
    """The fake refuses the call: ``status`` and GitHub's ``message`` for it."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class Grant:
    """What one credential reaches. ``repos`` None: every repository (of ``owner``, for
    an installation)."""

    kind: Literal["pat", "installation", "app"]
    bucket: str  # its rate limit's name
    login: str
    owner: str | None = None
    repos: frozenset[str] | None = None
    permissions: Mapping[str, str] = field(default_factory=dict)
    write: bool = True
    expires_at: datetime | None = None
    installation_id: int | None = None

    def reaches(self, owner: str, name: str) -> bool:
        if self.kind == "app":
            return False
        if self.kind == "installation" and (self.owner or "").casefold() != owner.casefold():
            return False
        if self.repos is None:
            return True
        wanted = name.casefold() if self.kind == "installation" else f"{owner}/{name}".casefold()
        return wanted in self.repos

    def may(self, category: str, level: str) -> bool:
        if self.kind == "pat":
            return self.write or level == "read"
        held = self.permissions.get(category)
        return held is not None and _LEVELS.get(held, 0) >= _LEVELS[level]

    @property
    def refusal(self) -> str:
        """GitHub's words when this credential lacks a permission."""
        if self.kind == "pat":
            return "Resource not accessible by personal access token"
        return "Resource not accessible by integration"


@dataclass
class Installation:
    id: int
    owner: str
    repos: set[str] | None  # names (any case); None: all the owner's repositories
    permissions: dict[str, str]


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class Credentials:
    """The PATs, the App and its installations, and the tokens minted for them."""

    def __init__(self) -> None:
        self.pats: dict[str, Grant] = {}
        self.minted: dict[str, Grant] = {}
        self.app_id: int | None = None
        self.app_slug = "fleetwarden"
        self._public_key: rsa.RSAPublicKey | None = None
        self.installations: dict[int, Installation] = {}

    def add_pat(
        self, token: str, login: str, *, repos: Iterable[str] | None = None, write: bool = True
    ) -> None:
        """Accept ``token`` as ``login``'s PAT reaching ``repos`` (``owner/name``; None:
        every repository), read-only unless ``write``."""
        reach = None if repos is None else frozenset(slug.casefold() for slug in repos)
        self.pats[token] = Grant("pat", f"pat:{login}", login, repos=reach, write=write)

    def enable_app(self, app_id: int, public_key_pem: bytes, slug: str) -> None:
        key = serialization.load_pem_public_key(public_key_pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("a GitHub App's key is RSA")
        self.app_id, self._public_key, self.app_slug = app_id, key, slug

    def install(
        self,
        installation_id: int,
        owner: str,
        repos: Iterable[str] | None,
        permissions: Mapping[str, str] | None,
    ) -> Installation:
        found = Installation(
            installation_id,
            owner,
            None if repos is None else set(repos),
            dict(DEFAULT_PERMISSIONS if permissions is None else permissions),
        )
        self.installations[installation_id] = found
        return found

    def installation_of(self, owner: str, name: str | None) -> Installation | None:
        for found in self.installations.values():
            if found.owner.casefold() != owner.casefold():
                continue
            chosen = found.repos
            if name is None or chosen is None or name.casefold() in {r.casefold() for r in chosen}:
                return found
        return None

    def revoke(self, token: str) -> None:
        self.minted.pop(token, None)
        self.pats.pop(token, None)

    def authenticate(self, header: str | None, now: datetime) -> Grant:
        """The grant of an ``Authorization`` header, or :class:`Refused` (401)."""
        if not header:
            raise Refused(401, "Requires authentication")
        scheme, _, credential = header.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("bearer", "token") or not credential:
            raise Refused(401, "Bad credentials")
        if credential.count(".") == 2:
            return self._app_grant(credential, now)
        grant = self.pats.get(credential) or self.minted.get(credential)
        if grant is None or (grant.expires_at is not None and grant.expires_at <= now):
            raise Refused(401, "Bad credentials")
        return grant

    def _app_grant(self, jwt: str, now: datetime) -> Grant:
        if self._public_key is None or self.app_id is None:
            raise Refused(401, "Bad credentials")
        header_part, payload_part, signature_part = jwt.split(".")
        try:
            header = json.loads(_unb64(header_part))
            claims = json.loads(_unb64(payload_part))
            signature = _unb64(signature_part)
        except (ValueError, binascii.Error):
            raise Refused(401, "A JSON web token could not be decoded") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise Refused(401, "A JSON web token could not be decoded")
        try:
            self._public_key.verify(
                signature,
                f"{header_part}.{payload_part}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise Refused(401, "A JSON web token could not be decoded") from None
        self._check_claims(claims, now)
        return Grant("app", "app", f"{self.app_slug}[bot]")

    def _check_claims(self, claims: Any, now: datetime) -> None:
        if not isinstance(claims, dict) or str(claims.get("iss")) != str(self.app_id):
            raise Refused(401, "'Issuer' claim ('iss') must be an Integer")
        issued, expires = claims.get("iat"), claims.get("exp")
        if not isinstance(issued, int) or issued > now.timestamp():
            raise Refused(
                401,
                "'Issued at' claim ('iat') must be an Integer representing the time that "
                "the assertion was issued",
            )
        if not isinstance(expires, int) or expires <= now.timestamp():
            raise Refused(
                401,
                "'Expiration time' claim ('exp') must be a numeric value representing the "
                "future time at which the assertion expires",
            )
        if expires - issued > 600 or expires > now.timestamp() + 600:
            raise Refused(401, "'Expiration time' claim ('exp') is too far in the future")

    def mint(self, installation_id: int, wanted: Mapping[str, Any], now: datetime) -> Grant:
        """A new installation token's grant (its token is the key in :attr:`minted`)."""
        found = self.installations.get(installation_id)
        if found is None:
            raise Refused(404, "Not Found")
        names = wanted.get("repositories")
        reach: set[str] | None = None if found.repos is None else set(found.repos)
        if names is not None:
            allowed = None if found.repos is None else {r.casefold() for r in found.repos}
            if allowed is not None and any(n.casefold() not in allowed for n in names):
                raise Refused(
                    422,
                    "There is at least one repository that does not exist or is not "
                    "accessible to the parent installation.",
                )
            reach = set(names)
        permissions = dict(wanted.get("permissions") or found.permissions)
        for category, level in permissions.items():
            held = found.permissions.get(category)
            if held is None or _LEVELS.get(held, 0) < _LEVELS.get(level, 9):
                raise Refused(
                    422, "The permissions requested are not granted to this installation."
                )
        return Grant(
            "installation",
            f"installation:{installation_id}",
            f"{self.app_slug}[bot]",
            owner=found.owner,
            repos=None if reach is None else frozenset(r.casefold() for r in reach),
            permissions=permissions,
            expires_at=now + TOKEN_LIFETIME,
            installation_id=installation_id,
        )

    def issue_token(self, grant: Grant) -> str:
        token = "ghs_" + secrets.token_urlsafe(27)
        self.minted[token] = grant
        return token


@dataclass
class RateBook:
    """Each credential's rate limit, reported on every answer as GitHub does."""

    used: dict[str, int] = field(default_factory=dict)
    resets: dict[str, datetime] = field(default_factory=dict)
    exhausted: bool = False  # a test made every credential run out
    slow_down: int | None = None  # the next call is refused with this Retry-After

    def spend(self, bucket: str, now: datetime) -> dict[str, str]:
        reset = self.resets.get(bucket)
        if reset is None or reset <= now:
            reset = self.resets[bucket] = now + timedelta(hours=1)
            self.used[bucket] = 0
        if not self.exhausted:
            self.used[bucket] += 1
        used = RATE_LIMIT if self.exhausted else self.used[bucket]
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - used)),
            "X-RateLimit-Reset": str(int(reset.timestamp())),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
        }
