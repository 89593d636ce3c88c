"""Tests for GitLab's webhook deliveries (fleet.forge.events.delivery, standard_webhooks,
gitlab_events): the secret token and the Standard Webhooks signature checked as GitLab
sends them, the delivery named by its Idempotency-Key, and its issue, note and merge
request events read by iid, what the forge runs do not act on read as OTHER."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fleet.forge.events.changes import confirmed
from fleet.forge.events.delivery import BadDelivery, DeliveryHeaders, HookKeys, verify
from fleet.forge.events.standard_webhooks import sign, signing_key
from fleet.forge.events.webhooks import from_http
from fleet.forge.model import EventKind, ForgeEvent, IssueChange
from fleet.forge.schema import ForgeEntry
from fleet.ledger.records.forge import Slug
from tests.fakes.gitlab.hooks import (
    GITLAB_HOOK_TOKEN,
    GITLAB_SIGNING_TOKEN,
    gitlab_delivery,
    gitlab_issue,
    gitlab_note,
)

REPO = Slug("acme", "app")
BOT = "fleetwarden-bot"
LABEL = "fleetwarden:coder"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
_GITLAB: dict[str, Any] = {"kind": "gitlab", "token_env": "GITLAB_TOKEN", "login": BOT}
_GITLAB["agent"] = "coder"
TOKEN_ONLY = ForgeEntry(**_GITLAB, webhook_secret_env="GL_HOOK")
SIGNED_ONLY = ForgeEntry(**_GITLAB, signing_secret_env="GL_SIGNING")
BOTH = ForgeEntry(**_GITLAB, webhook_secret_env="GL_HOOK", signing_secret_env="GL_SIGNING")
TOKEN = GITLAB_HOOK_TOKEN.encode()
SIGNING = GITLAB_SIGNING_TOKEN.encode()
KEY = base64.b64encode(signing_key(GITLAB_SIGNING_TOKEN) or b"").decode()
SECRETS = (GITLAB_HOOK_TOKEN, GITLAB_SIGNING_TOKEN, KEY)


def _keys(entry: ForgeEntry) -> HookKeys:
    return HookKeys.of(entry, TOKEN, SIGNING)


def _labelled() -> tuple[str, dict[str, Any]]:
    return gitlab_issue(
        "update",
        repo=REPO,
        number=3,
        sender="wendy",
        labels=["bug", LABEL],
        previous_labels=["bug"],
        at=NOW,
    )


def _delivery(**how: Any) -> tuple[dict[str, str], bytes]:
    how.setdefault("at", NOW)
    return gitlab_delivery(*_labelled(), **how)


def _refused(
    entry: ForgeEntry, headers: dict[str, str], body: bytes, now: datetime = NOW
) -> tuple[int, str]:
    with pytest.raises(BadDelivery) as refused:
        verify("gitlab", _keys(entry), headers, body, now)
    said = str(refused.value) + refused.value.why
    assert not any(secret in said for secret in SECRETS)
    return refused.value.status, refused.value.why


def _read(event: tuple[str, dict[str, Any]], entry: ForgeEntry = TOKEN_ONLY) -> ForgeEvent:
    headers, body = gitlab_delivery(*event, token=GITLAB_HOOK_TOKEN)
    said = DeliveryHeaders.read("gitlab", headers)
    return from_http("gl", entry, _keys(entry), said, body, NOW)


# -- the secret token ----------------------------------------------------------------------


def test_the_right_token_is_taken_a_wrong_or_missing_one_refused() -> None:
    """X-Gitlab-Token equal to the hook's secret token: taken; another, or none: 401,
    saying which, never the token."""
    verify("gitlab", _keys(TOKEN_ONLY), *_delivery(token=GITLAB_HOOK_TOKEN))
    assert _refused(TOKEN_ONLY, *_delivery(token="hook-token-guess")) == (
        401,
        "the token does not match",
    )
    assert _refused(TOKEN_ONLY, *_delivery(token=GITLAB_HOOK_TOKEN + " ")) == (
        401,
        "the token does not match",
    )
    assert _refused(TOKEN_ONLY, *_delivery()) == (401, "no X-Gitlab-Token")


def test_a_token_forge_without_its_secret_set_refuses_everything() -> None:
    """Its variable unset (empty): every delivery is refused, the right token or not."""
    keys = HookKeys.of(TOKEN_ONLY, b"", SIGNING)
    with pytest.raises(BadDelivery) as refused:
        verify("gitlab", keys, *_delivery(token=""))
    assert refused.value.status == 401


# -- the Standard Webhooks signature -------------------------------------------------------


def test_the_signature_is_the_standard_webhooks_one() -> None:
    """The signature is the spec's: HMAC-SHA256 under the base64 key after whsec_, over
    ``id.timestamp.body``, in base64 — as the fake, written apart, computes it."""
    key = b"a key of thirty-two bytes, exact"
    token = "whsec_" + base64.b64encode(key).decode()
    assert signing_key(token) == key
    assert signing_key(token.removeprefix("whsec_")) == key
    assert signing_key("whsec_not base64!") is None
    expected = hmac.new(key, b"msg_1.1700000000.{}", hashlib.sha256).digest()
    assert sign(key, "msg_1", 1_700_000_000, b"{}") == base64.b64encode(expected).decode()


def test_a_signed_delivery_is_taken_when_its_signature_and_time_are_good() -> None:
    """Signed with the hook's signing token at a time within 5 minutes of now (either
    way): taken, with no token needed when only signing is configured."""
    for off in (0, -299, 299):
        at = NOW + timedelta(seconds=off)
        verify(
            "gitlab", _keys(SIGNED_ONLY), *_delivery(signing_key=GITLAB_SIGNING_TOKEN, at=at), NOW
        )


def test_a_wrongly_signed_or_unsigned_delivery_is_refused() -> None:
    """Another key, another body, a missing header: 401 saying which."""
    other = "whsec_" + base64.b64encode(b"another key altogether, 32 bytes").decode()
    assert _refused(SIGNED_ONLY, *_delivery(signing_key=other)) == (
        401,
        "the signature does not match",
    )
    headers, body = _delivery(signing_key=GITLAB_SIGNING_TOKEN)
    assert _refused(SIGNED_ONLY, headers, body.replace(b"wendy", b"wendx"))[1] == (
        "the signature does not match"
    )
    for dropped in ("webhook-signature", "webhook-id", "webhook-timestamp"):
        partial = {k: v for k, v in headers.items() if k != dropped}
        status, why = _refused(SIGNED_ONLY, partial, body)
        assert status == 401 and why.startswith("unsigned")
    unsigned = _delivery(token=GITLAB_HOOK_TOKEN)  # the token alone does not do
    assert _refused(SIGNED_ONLY, *unsigned)[1].startswith("unsigned")


@pytest.mark.parametrize("off", [-301, 301, -86400, 400])
def test_a_delivery_signed_too_long_ago_or_ahead_is_refused(off: int) -> None:
    """A good signature dated more than 5 minutes from now, before or after: 401 saying
    by how much."""
    headers, body = _delivery(signing_key=GITLAB_SIGNING_TOKEN, at=NOW + timedelta(seconds=off))
    assert _refused(SIGNED_ONLY, headers, body) == (
        401,
        f"the delivery's timestamp is {abs(off)} s off",
    )


def test_garbled_signatures_are_passed_over_and_any_good_one_counts() -> None:
    """Entries that are not base64, of another version, or empty are passed over; one good
    ``v1`` entry among several counts (a sender rotating its key signs twice)."""
    headers, body = _delivery(signing_key=GITLAB_SIGNING_TOKEN)
    good = headers["webhook-signature"]
    wrong = "v1," + base64.b64encode(b"x" * 32).decode()
    for given in (f"{wrong} {good}", f"v1a,abc {good}", f"v1,!!! {good} v2,zz", f"  {good}  "):
        verify("gitlab", _keys(SIGNED_ONLY), {**headers, "webhook-signature": given}, body, NOW)
    for garbled in (wrong, "v1,!!!", "v2," + good[3:], good[3:], "v1,", ",", "v1"):
        status, why = _refused(SIGNED_ONLY, {**headers, "webhook-signature": garbled}, body)
        assert (status, why) == (401, "the signature does not match")


def test_a_timestamp_that_is_no_number_is_refused_even_signed() -> None:
    """A timestamp that is not a number of seconds, signed as it is: 401."""
    headers, body = _delivery(signing_key=GITLAB_SIGNING_TOKEN)
    key = signing_key(GITLAB_SIGNING_TOKEN) or b""
    given = {**headers, "webhook-timestamp": "soon"}
    given["webhook-signature"] = "v1," + sign(key, headers["webhook-id"], "soon", body)
    assert _refused(SIGNED_ONLY, given, body) == (
        401,
        "the delivery's timestamp is not a number of seconds",
    )


def test_with_both_configured_both_are_needed() -> None:
    """A forge naming both the secret token and the signing token takes a delivery only
    with both right."""
    verify(
        "gitlab",
        _keys(BOTH),
        *_delivery(token=GITLAB_HOOK_TOKEN, signing_key=GITLAB_SIGNING_TOKEN),
        NOW,
    )
    assert _refused(BOTH, *_delivery(token=GITLAB_HOOK_TOKEN))[1].startswith("unsigned")
    assert _refused(BOTH, *_delivery(signing_key=GITLAB_SIGNING_TOKEN)) == (
        401,
        "no X-Gitlab-Token",
    )
    wrong = _delivery(token="hook-token-guess", signing_key=GITLAB_SIGNING_TOKEN)
    assert _refused(BOTH, *wrong) == (401, "the token does not match")


def test_a_signing_token_unset_or_malformed_refuses_everything() -> None:
    """The signing token's variable unset, or not a whsec_ key: 401 for every delivery,
    saying so without the value."""
    headers, body = _delivery(token=GITLAB_HOOK_TOKEN, signing_key=GITLAB_SIGNING_TOKEN)
    for signing, why in (
        (b"", "no signing token is set for this forge"),
        (b"whsec_***", "the signing token set for this forge is no whsec_ key"),
    ):
        with pytest.raises(BadDelivery) as refused:
            verify("gitlab", HookKeys.of(BOTH, TOKEN, signing), headers, body, NOW)
        assert (refused.value.status, refused.value.why) == (401, why)


# -- naming headers ------------------------------------------------------------------------


def test_the_delivery_is_named_by_its_idempotency_key_first() -> None:
    """Idempotency-Key (the same on a retry), else X-Gitlab-Webhook-UUID, else
    X-Gitlab-Event-UUID with the event's name (one request may fire hooks of two events
    under one Event-UUID); none of them: 400."""
    headers, body = _delivery(token=GITLAB_HOOK_TOKEN, delivery="f5e5f430-retry-key")
    assert DeliveryHeaders.read("gitlab", headers).delivery == "f5e5f430-retry-key"
    del headers["Idempotency-Key"]
    assert DeliveryHeaders.read("gitlab", headers).delivery == headers["X-Gitlab-Webhook-UUID"]
    del headers["X-Gitlab-Webhook-UUID"]
    event_uuid = headers["X-Gitlab-Event-UUID"]
    assert DeliveryHeaders.read("gitlab", headers).delivery == f"{event_uuid}:issue-hook"
    verify("gitlab", _keys(TOKEN_ONLY), headers, body)
    del headers["X-Gitlab-Event-UUID"]
    assert _refused(TOKEN_ONLY, headers, body) == (400, "no delivery header")


@pytest.mark.parametrize(
    "name",
    ["Issue Hook", "Merge Request Hook", "Confidential Note Hook", "Tag Push Hook", "System Hook"],
)
def test_gitlab_event_names_are_words_with_capitals_and_spaces(name: str) -> None:
    """GitLab's event names are taken as they are."""
    headers, body = gitlab_delivery(name, {"object_kind": "x"}, token=GITLAB_HOOK_TOKEN)
    verify("gitlab", _keys(TOKEN_ONLY), headers, body)


@pytest.mark.parametrize(
    "name", ["issue hook", "Issue  Hook", " Issue Hook", "Issue Hook\n", "", "Issue_Hook"]
)
def test_a_malformed_event_name_is_refused(name: str) -> None:
    """An event name that is not GitLab's shape: 400."""
    headers, body = _delivery(token=GITLAB_HOOK_TOKEN)
    assert _refused(TOKEN_ONLY, {**headers, "X-Gitlab-Event": name}, body) == (
        400,
        "no event header",
    )


# -- issue events --------------------------------------------------------------------------


def test_a_trigger_label_added_is_read_from_changes() -> None:
    """``changes.labels`` adding the trigger label: LABELED with it, on the issue's iid
    (never its global id), to be confirmed from GitLab's record; the actor is
    ``user.username``."""
    event = _read(_labelled())
    assert (event.kind, event.label, event.number, event.is_pull) == (
        EventKind.LABELED,
        LABEL,
        3,
        False,
    )
    assert (event.actor, event.repo, event.confirm, event.at) == ("wendy", REPO, True, NOW)
    assert event.name == "Issue Hook" and event.forge == "gl"


def test_a_trigger_label_kept_while_another_changes_is_no_label_event() -> None:
    """The trigger label in both previous and current, another label added: OTHER."""
    event = _read(
        gitlab_issue(
            "update",
            repo=REPO,
            number=3,
            sender="wendy",
            labels=[LABEL, "bug"],
            previous_labels=[LABEL],
        )
    )
    assert event.kind is EventKind.OTHER and not event.confirm


def test_a_trigger_label_removed_is_unlabeled_with_it() -> None:
    """``changes.labels`` dropping the trigger label: UNLABELED naming it."""
    event = _read(
        gitlab_issue(
            "update",
            repo=REPO,
            number=3,
            sender="wendy",
            labels=["bug"],
            previous_labels=["bug", LABEL],
        )
    )
    assert (event.kind, event.label, event.confirm) == (EventKind.UNLABELED, LABEL, True)


def test_the_bot_assigned_or_unassigned_is_read_from_changes() -> None:
    """``changes.assignees`` giving the bot: ASSIGNED to it; taking it: UNASSIGNED; giving
    someone else: OTHER."""
    given = gitlab_issue(
        "update", repo=REPO, number=3, sender="wendy", assignees=[BOT], previous_assignees=[]
    )
    taken = gitlab_issue(
        "update", repo=REPO, number=3, sender="wendy", assignees=["ann"], previous_assignees=[BOT]
    )
    other = gitlab_issue(
        "update",
        repo=REPO,
        number=3,
        sender="wendy",
        assignees=[BOT, "ann"],
        previous_assignees=[BOT],
    )
    assert (_read(given).kind, _read(given).assignee) == (EventKind.ASSIGNED, BOT)
    assert (_read(taken).kind, _read(taken).assignee) == (EventKind.UNASSIGNED, BOT)
    assert _read(other).kind is EventKind.OTHER
    assert _read(given).confirm and _read(taken).confirm


def test_an_issue_opened_is_read_with_what_it_was_opened_with() -> None:
    """GitLab sends one delivery for an issue opened: OPENED with its description, or
    LABELED with the trigger label it carries, or ASSIGNED to the bot."""
    plain = _read(
        gitlab_issue("open", repo=REPO, number=4, sender="wendy", body="@fleetwarden-bot fix")
    )
    assert (plain.kind, plain.body, plain.confirm) == (
        EventKind.OPENED,
        "@fleetwarden-bot fix",
        False,
    )
    labelled = _read(gitlab_issue("open", repo=REPO, number=4, sender="wendy", labels=[LABEL]))
    assert (labelled.kind, labelled.label, labelled.confirm) == (EventKind.LABELED, LABEL, True)
    assigned = _read(gitlab_issue("open", repo=REPO, number=4, sender="wendy", assignees=[BOT]))
    assert (assigned.kind, assigned.assignee) == (EventKind.ASSIGNED, BOT)


def test_an_issue_closed_or_reopened() -> None:
    """``close``: CLOSED; ``reopen``: OTHER (no run starts again by it)."""
    assert (
        _read(gitlab_issue("close", repo=REPO, number=3, sender="wendy")).kind is EventKind.CLOSED
    )
    assert (
        _read(gitlab_issue("reopen", repo=REPO, number=3, sender="wendy")).kind is EventKind.OTHER
    )


def test_a_project_in_a_subgroup_is_its_full_path() -> None:
    """``project.path_with_namespace`` ``acme/platform/app``: owner ``acme/platform``."""
    event = _read(gitlab_issue("close", repo=Slug("acme/platform", "app"), number=3, sender="w"))
    assert event.repo == Slug("acme/platform", "app")


def test_a_confidential_issue_is_not_acted_on() -> None:
    """A Confidential Issue Hook (labelled for the agent even): OTHER — what Fleetwarden
    posts in answer would be seen by more people than the issue is."""
    name = _labelled()[0]
    confidential = gitlab_issue(
        "update", repo=REPO, number=3, sender="wendy", labels=[LABEL], previous_labels=[],
        confidential=True,
    )  # fmt: skip
    assert name == "Issue Hook" and confidential[0] == "Confidential Issue Hook"
    assert _read(confidential).kind is EventKind.OTHER


def _renamed(event: tuple[str, dict[str, Any]], name: str) -> tuple[str, dict[str, Any]]:
    """``event`` under another ``X-Gitlab-Event`` name, its signed payload untouched."""
    return name, event[1]


def test_a_confidential_issue_renamed_issue_hook_is_still_not_acted_on() -> None:
    """The payload's ``object_attributes.confidential: true`` holds a labelled issue back
    though its unsigned header says ``Issue Hook``; an issue made confidential still stops."""
    hidden = gitlab_issue(
        "update", repo=REPO, number=3, sender="wendy", labels=[LABEL], previous_labels=[],
        confidential=True,
    )  # fmt: skip
    assert _read(_renamed(hidden, "Issue Hook")).kind is EventKind.OTHER
    closed = gitlab_issue("close", repo=REPO, number=3, sender="wendy", confidential=True)
    assert _read(_renamed(closed, "Issue Hook")).kind is EventKind.CLOSED


def test_a_public_issue_named_confidential_is_read_by_its_payload() -> None:
    """A ``Confidential Issue Hook`` header over a payload saying ``confidential: false`` is
    read as the public issue it is: its trigger label starts the run."""
    event = _read(_renamed(_labelled(), "Confidential Issue Hook"))
    assert (event.kind, event.label) == (EventKind.LABELED, LABEL)


def test_an_issue_whose_payload_says_nothing_of_confidentiality_is_held_back() -> None:
    """No ``object_attributes.confidential`` (or not a boolean): taken as confidential."""
    name, payload = _labelled()
    for value in (None, "false", 0):
        attributes = dict(payload["object_attributes"])
        if value is None:
            del attributes["confidential"]
        else:
            attributes["confidential"] = value
        assert _read((name, {**payload, "object_attributes": attributes})).kind is EventKind.OTHER


def test_a_note_on_a_confidential_issue_is_judged_by_its_payload() -> None:
    """A note on a confidential issue renamed ``Note Hook`` carries nothing; a public note
    under a ``Confidential Note Hook`` header is the comment it is."""
    hidden = gitlab_note(repo=REPO, number=3, sender="wendy", body="go", issue_confidential=True)
    assert hidden[0] == "Confidential Note Hook"
    said = _read(_renamed(hidden, "Note Hook"))
    assert (said.kind, said.body) == (EventKind.OTHER, "")
    public = gitlab_note(repo=REPO, number=3, sender="wendy", body="go")
    said = _read(_renamed(public, "Confidential Note Hook"))
    assert (said.kind, said.body) == (EventKind.COMMENT, "go")


def test_a_label_event_is_confirmed_from_gitlab_s_record() -> None:
    """The label event, confirmed against the issue's changes: the sender's labelling
    confirms it; a change by someone else does not."""
    event = _read(_labelled())
    mine = [IssueChange("labeled", LABEL, "wendy", NOW)]
    theirs = [IssueChange("labeled", LABEL, "mallory", NOW)]
    found = confirmed(event, mine, TOKEN_ONLY, not_before=NOW - timedelta(hours=1))
    assert found is not None and (found.kind, found.label, found.confirm) == (
        EventKind.LABELED,
        LABEL,
        False,
    )
    assert confirmed(event, theirs, TOKEN_ONLY, not_before=NOW - timedelta(hours=1)) is None
