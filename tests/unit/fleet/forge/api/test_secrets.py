"""The forges' secrets the redactor is given: each forge's token, webhook secret, signing
secret and App key, as the environment holds them, labelled with their forge; a variable
the environment does not hold gives none."""

from __future__ import annotations

from fleet.forge.api.secrets import ForgeSecrets
from fleet.forge.schema import ForgeEntry
from fleet.redaction.known import Secret


def test_each_forge_secret_in_the_environment_is_known() -> None:
    """The token and webhook secret set are known by their forge; an unset one is not."""
    forges = {
        "lab": ForgeEntry(
            kind="gitlab",
            token_env="LAB_TOKEN",
            webhook_secret_env="LAB_HOOK",
            login="fleetwarden-bot",
        )
    }
    secrets = ForgeSecrets(forges, {"LAB_TOKEN": "glpat-1234", "OTHER": "x"})
    assert secrets.known_secrets() == [Secret("glpat-1234", "secret of forge lab")]
    assert ForgeSecrets({}, {"LAB_TOKEN": "glpat-1234"}).known_secrets() == []
