"""A ``kind: gitlab`` entry of ``forges:``: gitlab.com's API unless another is named, under
``/api/v4``; events by webhook only (its secret token, its signing token or both); and a
GitLab project's path, subgroups and all, read as one repository."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug

BASE: dict[str, Any] = {
    "kind": "gitlab",
    "token_env": "GITLAB_TOKEN",
    "webhook_secret_env": "GITLAB_HOOK_TOKEN",
    "login": "fleetwarden-bot",
}


def test_a_gitlab_is_gitlab_com_unless_named() -> None:
    assert ForgeEntry(**BASE).api_url == "https://gitlab.com/api/v4"
    own = ForgeEntry(**BASE, api_url="https://git.example.com/api/v4/")
    assert own.api_url == "https://git.example.com/api/v4"


def test_a_gitlab_api_is_under_api_v4() -> None:
    with pytest.raises(ValidationError, match=r"a GitLab's API is under /api/v4"):
        ForgeEntry(**BASE, api_url="https://git.example.com/api/v1")


def test_a_gitlab_takes_its_secret_token_its_signing_token_or_both() -> None:
    signed = {**BASE, "signing_secret_env": "GITLAB_SIGNING"}
    del signed["webhook_secret_env"]
    assert ForgeEntry(**signed).signing_secret_env == "GITLAB_SIGNING"
    assert ForgeEntry(**BASE, signing_secret_env="GITLAB_SIGNING").webhook_secret_env
    bare = {k: v for k, v in BASE.items() if k != "webhook_secret_env"}
    with pytest.raises(ValidationError, match=r"set webhook_secret_env .* or signing_secret_env"):
        ForgeEntry(**bare)


def test_a_gitlab_is_not_polled() -> None:
    with pytest.raises(ValidationError, match="drop poll_seconds"):
        ForgeEntry(**BASE, poll_seconds=60)


def test_a_signing_token_is_a_gitlab_hooks_only() -> None:
    github = {**BASE, "kind": "github", "signing_secret_env": "SIGNING"}
    with pytest.raises(ValidationError, match="signing_secret_env is a GitLab hook's"):
        ForgeEntry(**github)


def test_a_project_in_a_subgroup_is_one_slug() -> None:
    slug = Slug.parse("acme/platform/app")
    assert (slug.owner, slug.name, str(slug)) == ("acme/platform", "app", "acme/platform/app")
    for bad in ("app", "/app", "acme/", "acme//app"):
        with pytest.raises(ValueError, match="is not owner/name"):
            Slug.parse(bad)
