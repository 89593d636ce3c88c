"""Webhook deliveries made, signed and posted as GitHub and Gitea make them, for the tests.

GitHub: the body is the payload as compact JSON, signed with HMAC-SHA256 of the secret
(``X-Hub-Signature-256: sha256=<hex>``, and the older SHA-1 ``X-Hub-Signature``), with
``X-GitHub-Event``, a GUID in ``X-GitHub-Delivery``, the hook's ids and a
``GitHub-Hookshot/…`` user agent. Its payloads start from GitHub's own examples
(``@octokit/webhooks-examples``, :data:`tests.forge_data.WEBHOOK_EXAMPLES`), moved to the
repository, number, people, labels and times a test names, their full shape kept.

Gitea: the body is the payload indented by two spaces (Go's ``json.MarshalIndent``),
signed the same way in ``X-Gitea-Signature: <hex>``; ``X-Gitea-Event`` names the event
and ``X-Gitea-Event-Type`` the precise type, and the same values go out as ``X-Gogs-*``
and GitHub-style headers too (go-gitea/gitea ``services/webhook/deliver.go``). Forgejo
adds ``X-Forgejo-*``. Its payloads are built to Gitea's structs in
:mod:`tests.fakes.gitea.payloads`.

Every builder returns ``(event, payload)``, to pass on: ``github_delivery(*github_issue(
"labeled", …), secret=S)``, ``gitea_delivery(*gitea_payloads.issue_event(…), secret=S)``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from typing import Any

import aiohttp

from fleet.ledger.records.forge import Slug
from tests.forge_data import WEBHOOK_EXAMPLES

Payload = dict[str, Any]
Event = tuple[str, Payload]

# X-Gitea-Event for an X-Gitea-Event-Type (modules/webhook/type.go, HookEventType.Event).
GITEA_EVENTS = {
    "issue_assign": "issues",
    "issue_label": "issues",
    "issue_milestone": "issues",
    "pull_request_assign": "pull_request",
    "pull_request_label": "pull_request",
    "pull_request_milestone": "pull_request",
    "pull_request_sync": "pull_request",
    "pull_request_review_request": "pull_request",
    "pull_request_comment": "issue_comment",
    "pull_request_review_approved": "pull_request_approved",
    "pull_request_review_rejected": "pull_request_rejected",
    "pull_request_review_comment": "pull_request_comment",
}


def sign_github(secret: bytes, body: bytes) -> str:
    """``X-Hub-Signature-256`` of ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def sign_gitea(secret: bytes, body: bytes) -> str:
    """``X-Gitea-Signature`` of ``body``: the bare hex HMAC-SHA256."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def github_delivery(
    event: str, payload: Mapping[str, Any], *, secret: bytes, delivery: str | None = None
) -> tuple[dict[str, str], bytes]:
    """The headers and body GitHub posts for ``event``."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/2b1d7d3",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-ID": "79929171",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
    if secret:
        headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()
        headers["X-Hub-Signature-256"] = sign_github(secret, body)
    return headers, body


def gitea_delivery(
    event_type: str,
    payload: Mapping[str, Any],
    *,
    secret: bytes,
    delivery: str | None = None,
    forgejo: bool = False,
) -> tuple[dict[str, str], bytes]:
    """The headers and body Gitea (``forgejo``: Forgejo) posts for ``event_type``."""
    body = json.dumps(payload, indent=2, ensure_ascii=False).encode()
    uid = delivery or str(uuid.uuid4())
    event = GITEA_EVENTS.get(event_type, event_type)
    signature = sign_gitea(secret, body) if secret else ""
    sha1 = hmac.new(secret, body, hashlib.sha1).hexdigest() if secret else ""
    headers = {"Content-Type": "application/json", "User-Agent": "Go-http-client/1.1"}
    prefixes = ("Gitea", "Gogs", "Forgejo") if forgejo else ("Gitea", "Gogs")
    for prefix in prefixes:
        headers[f"X-{prefix}-Delivery"] = uid
        headers[f"X-{prefix}-Event"] = event
        headers[f"X-{prefix}-Event-Type"] = event_type
        headers[f"X-{prefix}-Signature"] = signature
    headers["X-Hub-Signature"] = "sha1=" + sha1
    headers["X-Hub-Signature-256"] = "sha256=" + signature
    headers["X-GitHub-Delivery"] = uid
    headers["X-GitHub-Event"] = event
    headers["X-GitHub-Event-Type"] = event_type
    return headers, body


async def post(
    url: str, headers: Mapping[str, str], body: bytes, *, session: aiohttp.ClientSession
) -> tuple[int, str]:
    """POST a delivery as the forge does; the status and text answered."""
    async with session.post(url, data=body, headers=dict(headers)) as response:
        return response.status, await response.text()


def stamp(at: datetime | None) -> str:
    """A time as GitHub writes it: ``2019-05-15T15:20:18Z``."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- GitHub, from its examples ----------------------------------------------------------


@cache
def _index() -> dict[str, list[Payload]]:
    data = json.loads((WEBHOOK_EXAMPLES / "index.json").read_text(encoding="utf-8"))
    return {entry["name"]: entry["examples"] for entry in data}


def github_examples(event: str) -> list[Payload]:
    """GitHub's example payloads of ``event`` (copies)."""
    return copy.deepcopy(_index().get(event, []))


def github_example(event: str, action: str | None = None) -> Payload:
    """A copy of the first example of ``event`` (with ``action``)."""
    for example in _index()[event]:
        if action is None or example.get("action") == action:
            return copy.deepcopy(example)
    raise KeyError(f"no example of {event} {action}")


def _swap(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return node.replace(old, new)
    if isinstance(node, list):
        return [_swap(item, old, new) for item in node]
    if isinstance(node, dict):
        return {key: _swap(value, old, new) for key, value in node.items()}
    return node


def _user_id(login: str) -> int:
    return zlib.crc32(login.encode()) % 90_000_000 + 1_000_000


def github_user(login: str) -> Payload:
    """A GitHub user object like the examples', for ``login``."""
    template = github_example("issues", "opened")["sender"]
    user: Payload = _swap(template, template["login"], login)
    user["login"] = login
    user["id"] = _user_id(login)
    user["node_id"] = f"MDQ6VXNlcj{user['id']}"
    return user


def _retarget(payload: Payload, repo: Slug, number: int, old_number: int) -> Payload:
    old_full = payload["repository"]["full_name"]
    new_full = str(repo)
    for kind in ("issues", "pull", "pulls"):
        payload = _swap(payload, f"{old_full}/{kind}/{old_number}", f"{new_full}/{kind}/{number}")
    payload = _swap(payload, old_full, new_full)
    _fix_repos(payload, repo)
    return payload


def _fix_repos(node: Any, repo: Slug) -> None:
    """Set the name and owner of every repository object naming ``repo``."""
    if isinstance(node, list):
        for item in node:
            _fix_repos(item, repo)
    elif isinstance(node, dict):
        if node.get("full_name") == str(repo) and isinstance(node.get("owner"), dict):
            node["name"] = repo.name
            node["owner"] = github_user(repo.owner)
        for value in node.values():
            _fix_repos(value, repo)


def _label(template: Mapping[str, Any], name: str, repo: Slug) -> Payload:
    label = dict(template)
    label["name"] = name
    label["id"] = zlib.crc32(name.encode())
    label["url"] = f"https://api.github.com/repos/{repo}/labels/{name}"
    return label


def github_issue(
    action: str,
    *,
    repo: Slug,
    number: int,
    sender: str,
    author: str | None = None,
    title: str = "Spelling error in the README file",
    body: str = "It looks like you accidently spelled 'commit' with two 't's.",
    label: str | None = None,
    labels: Sequence[str] | None = None,
    assignee: str | None = None,
    assignees: Sequence[str] | None = None,
    at: datetime | None = None,
) -> Event:
    """An ``issues`` delivery of ``action`` (``labeled``: with ``label``, which the issue
    then carries; ``assigned``: to ``assignee``)."""
    payload = github_example("issues", action)
    payload = _retarget(payload, repo, number, payload["issue"]["number"])
    issue = payload["issue"]
    issue.update(number=number, title=title, body=body, user=github_user(author or sender))
    issue["updated_at"] = stamp(at)
    template = github_example("issues", "labeled")["label"]
    if label is not None:
        payload["label"] = _label(template, label, repo)
    if labels is None:
        labels = [label] if label is not None and action == "labeled" else []
    issue["labels"] = [_label(template, name, repo) for name in labels]
    if assignee is not None:
        payload["assignee"] = github_user(assignee)
    if assignees is None:
        assignees = [assignee] if assignee is not None and action == "assigned" else []
    issue["assignees"] = [github_user(login) for login in assignees]
    issue["assignee"] = issue["assignees"][0] if assignees else None
    payload["sender"] = github_user(sender)
    return "issues", payload


def github_comment(
    *,
    repo: Slug,
    number: int,
    sender: str,
    body: str,
    comment_id: int = 492700400,
    is_pull: bool = False,
    action: str = "created",
    at: datetime | None = None,
) -> Event:
    """An ``issue_comment`` delivery: ``sender`` commented ``body`` on issue (or pull
    request) ``number``."""
    payload = github_example("issue_comment", action)
    payload = _retarget(payload, repo, number, payload["issue"]["number"])
    payload["issue"]["number"] = number
    if is_pull:
        payload["issue"]["pull_request"] = {
            "url": f"https://api.github.com/repos/{repo}/pulls/{number}",
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "diff_url": f"https://github.com/{repo}/pull/{number}.diff",
            "patch_url": f"https://github.com/{repo}/pull/{number}.patch",
            "merged_at": None,
        }
    comment = payload["comment"]
    old_id = str(comment["id"])
    payload["comment"] = comment = _swap(comment, old_id, str(comment_id))
    comment.update(id=comment_id, body=body, user=github_user(sender))
    comment["created_at"] = comment["updated_at"] = stamp(at)
    payload["sender"] = github_user(sender)
    return "issue_comment", payload


def github_pull(
    action: str,
    *,
    repo: Slug,
    number: int,
    sender: str,
    head: str = "changes",
    merged: bool = False,
    at: datetime | None = None,
) -> Event:
    """A ``pull_request`` delivery (``closed`` with ``merged`` or not)."""
    payload = github_example("pull_request", action)
    payload = _retarget(payload, repo, number, payload["number"])
    payload["number"] = number
    pull = payload["pull_request"]
    pull["number"] = number
    pull["head"]["ref"] = head
    pull["head"]["label"] = f"{repo.owner}:{head}"
    pull["updated_at"] = stamp(at)
    if action == "closed":
        pull.update(state="closed", merged=merged, closed_at=stamp(at))
        pull["merged_at"] = stamp(at) if merged else None
    payload["sender"] = github_user(sender)
    return "pull_request", payload


def github_review(
    *,
    repo: Slug,
    number: int,
    sender: str,
    state: str = "changes_requested",
    body: str = "Please change this.",
    review_id: int = 237895671,
    head: str = "changes",
    action: str = "submitted",
    at: datetime | None = None,
) -> Event:
    """A ``pull_request_review`` delivery: ``sender`` reviewed pull request ``number``
    (``state`` as GitHub's webhooks write it: ``approved``, ``changes_requested``,
    ``commented``)."""
    payload = github_example("pull_request_review", action)
    payload = _retarget(payload, repo, number, payload["pull_request"]["number"])
    pull = payload["pull_request"]
    pull["number"] = number
    pull["head"]["ref"] = head
    review = payload["review"]
    payload["review"] = review = _swap(review, str(review["id"]), str(review_id))
    review.update(id=review_id, state=state, body=body, user=github_user(sender))
    review["submitted_at"] = stamp(at)
    payload["sender"] = github_user(sender)
    return "pull_request_review", payload
