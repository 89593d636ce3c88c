"""The forges' secrets, for the redactor: each forge's token, App key, webhook secret and
signing secret, read from the environment its entry names them in."""

from __future__ import annotations

from collections.abc import Mapping

from fleet.forge.schema import ForgeEntry
from fleet.redaction.known import Secret


class ForgeSecrets:
    """The secrets of ``forges`` in ``environ``, read once (the environment does not
    change); the Apps' installation tokens are the repositories' (their environ), not
    these."""

    def __init__(self, forges: Mapping[str, ForgeEntry], environ: Mapping[str, str]) -> None:
        self._secrets = tuple(_read(forges, environ))

    def known_secrets(self) -> list[Secret]:
        return list(self._secrets)


def _read(forges: Mapping[str, ForgeEntry], environ: Mapping[str, str]) -> list[Secret]:
    """The forges' tokens, keys, webhook secrets and signing tokens."""
    found: list[Secret] = []
    for name, entry in forges.items():
        variables = [entry.token_env, entry.webhook_secret_env, entry.signing_secret_env]
        if entry.app is not None:
            variables.append(entry.app.private_key_env)
        for variable in variables:
            value = environ.get(variable) if variable else None
            if value:
                found.append(Secret(value, f"secret of forge {name}"))
    return found
