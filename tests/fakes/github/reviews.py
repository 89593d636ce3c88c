"""The fake GitHub's reviews as a client submits them, and its two GraphQL mutations: a
draft pull request marked ready for review, and one made a draft again.

A review is refused as GitHub refuses it: an approval or changes asked for by the pull
request's own author is 422 ``Unprocessable Entity`` with GitHub's words
(``Review Can not approve your own pull request``), a comment or changes asked for with
no body 422 as well. The GraphQL endpoint (``POST /graphql``) takes the credentials the
REST calls take, and exactly one document: ``markPullRequestReadyForReview`` (or
``convertPullRequestToDraft``) with the pull request's node id in a variable, asking for
some of the pull request's ``id``, ``isDraft``, ``number``, ``url`` and ``title``.
Anything else is refused with GraphQL's ``errors`` (and noted as a violation: the fake
serves nothing else); a wrong or unknown node id is GraphQL's ``NOT_FOUND`` error, with
HTTP 200, as GitHub answers it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from tests.fakes.github import shapes
from tests.fakes.github.auth import Credentials, Grant, Refused
from tests.fakes.github.records import Issue, Repo, Review, ReviewState
from tests.fakes.github.routes import Ctx, Out
from tests.fakes.github.state import GitHubState

_STATES: Final[dict[str, ReviewState]] = {
    "APPROVE": "APPROVED",
    "REQUEST_CHANGES": "CHANGES_REQUESTED",
    "COMMENT": "COMMENTED",
}
_OWN: Final = {
    "APPROVE": "Review Can not approve your own pull request",
    "REQUEST_CHANGES": "Review Can not request changes on your own pull request",
}
GRAPHQL_DOCS: Final = "https://docs.github.com/graphql"
_GONE: Final = "NOT_FOUND"
_MUTATIONS: Final = frozenset({"markPullRequestReadyForReview", "convertPullRequestToDraft"})
_FIELDS: Final = frozenset({"id", "isDraft", "number", "url", "title"})
_TOKEN: Final = re.compile(
    r'\s+|,|#[^\n]*|(\.\.\.|[!$():=@\[\]{}|])|([_A-Za-z][_0-9A-Za-z]*)|("[^"]*")'
)


def post_review(ctx: Ctx) -> Out:
    """``POST /repos/{owner}/{repo}/pulls/{pull_number}/reviews`` with an event: the
    review submitted on the head commit (without one GitHub keeps it pending, which the
    fake does too)."""
    repo, item = ctx.the_repo, ctx.pull()
    assert item.pull is not None
    body = ctx.body if isinstance(ctx.body, dict) else {}
    event = body.get("event")
    text = str(body.get("body") or "")
    if event in _OWN and item.author.casefold() == ctx.grant.login.casefold():
        raise Refused(422, "Unprocessable Entity", errors=[_OWN[str(event)]])
    if event in ("COMMENT", "REQUEST_CHANGES") and not text.strip():
        # GitHub's description: a body is required with these events (its words here are
        # the fake's own).
        raise Refused(422, "Unprocessable Entity", errors=[f"Body is required for {event}"])
    state: ReviewState = _STATES.get(str(event), "PENDING")
    when = None if state == "PENDING" else ctx.now
    commit = str(body.get("commit_id") or item.pull.head_sha)
    made = Review(ctx.state.next_id(), ctx.grant.login, state, text, commit, when)
    item.pull.reviews.append(made)
    ctx.state.accounts.get(ctx.grant.login)
    ctx.state.touch(item)
    return Out(200, shapes.review(repo, item.number, made, ctx.state.accounts, ctx.api))


@dataclass(frozen=True)
class Mutation:
    """A mutation the fake takes: its node id variable and the fields asked for; ``field``
    which of the two (:data:`_MUTATIONS`)."""

    variable: str
    fields: tuple[str, ...]
    field: str = "markPullRequestReadyForReview"


class NotServed(ValueError):
    """A GraphQL document the fake does not serve; the message is GraphQL's."""


def _tokens(query: str) -> list[str]:
    found: list[str] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise NotServed(f'Parse error on "{query[position]}" at offset {position}')
        if match.group(1) or match.group(2) or match.group(3):
            found.append(match.group(0))
        position = match.end()
    return found


def parse_mutation(query: str) -> Mutation:
    """The ready-for-review mutation ``query`` holds, or :class:`NotServed`."""
    tokens = _tokens(query)
    at = 0

    def take(*wanted: str) -> str:
        nonlocal at
        if at >= len(tokens):
            raise NotServed("Parse error on end of document")
        token = tokens[at]
        if wanted and token not in wanted:
            raise NotServed(f'Parse error on "{token}"')
        at += 1
        return token

    def name() -> str:
        token = take()
        if not re.fullmatch(r"[_A-Za-z][_0-9A-Za-z]*", token):
            raise NotServed(f'Parse error on "{token}"')
        return token

    if take() != "mutation":
        raise NotServed("the fake GitHub serves only markPullRequestReadyForReview")
    if tokens[at : at + 1] != ["("]:
        name()
    take("(")
    take("$")
    variable = name()
    take(":")
    take("ID")
    take("!")
    take(")")
    take("{")
    field = name()
    if field not in _MUTATIONS:
        raise NotServed(f"Field '{field}' doesn't exist on type 'Mutation'")
    for token in ("(", "input", ":", "{", "pullRequestId", ":", "$"):
        take(token)
    if name() != variable:
        raise NotServed("the pull request's id must be the operation's variable")
    for token in ("}", ")", "{", "pullRequest", "{"):
        take(token)
    fields: list[str] = []
    while tokens[at : at + 1] != ["}"]:
        asked = name()
        if asked not in _FIELDS:
            raise NotServed(f"Field '{asked}' doesn't exist on type 'PullRequest'")
        fields.append(asked)
    for token in ("}", "}", "}"):
        take(token)
    if at != len(tokens) or not fields:
        raise NotServed("the fake GitHub serves only markPullRequestReadyForReview")
    return Mutation(variable, tuple(fields), field)


def _error(
    message: str, kind: str | None = None, field: str = "markPullRequestReadyForReview"
) -> dict[str, Any]:
    found: dict[str, Any] = {"message": message, "locations": [{"line": 1, "column": 1}]}
    if kind is not None:
        found["type"] = kind
        found["path"] = [field]
    return found


def _find(state: GitHubState, node: str) -> tuple[Repo, Issue] | None:
    for repo in state.repos.values():
        for item in repo.issues.values():
            if item.pull is not None and shapes.node_id("PullRequest", item.pull.id) == node:
                return repo, item
    return None


def _said(message: str) -> dict[str, Any]:
    """GitHub's answer to a GraphQL call refused before it is read (401, 400)."""
    return {"message": message, "documentation_url": GRAPHQL_DOCS}


def graphql(
    state: GitHubState,
    credentials: Credentials,
    request: tuple[str | None, bytes, datetime],
    note: Callable[[str], None],
) -> tuple[int, dict[str, Any], str]:
    """The answer to ``POST /graphql`` (``request``: its ``Authorization`` header, its
    body and when): status, JSON and the credential's kind."""
    header, raw, now = request
    if not header:
        return 401, _said("This endpoint requires you to be authenticated."), "none"
    try:
        grant = credentials.authenticate(header, now)
    except Refused as refused:
        return refused.status, _said(refused.message), "none"
    if grant.kind == "app":
        return 401, _said("Bad credentials"), "app"
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return 400, _said("Problems parsing JSON"), grant.kind
    query = payload.get("query") if isinstance(payload, dict) else None
    variables = payload.get("variables") if isinstance(payload, dict) else None
    if not isinstance(query, str):
        said = "A query attribute must be specified and must be a string."
        return 200, {"errors": [_error(said)]}, grant.kind
    try:
        mutation = parse_mutation(query)
    except NotServed as refused:
        note(f"POST /graphql: not served by the fake: {refused}")
        return 200, {"errors": [_error(str(refused))]}, grant.kind
    node = variables.get(mutation.variable) if isinstance(variables, dict) else None
    if not isinstance(node, str):
        said = f"Variable ${mutation.variable} of type ID! was provided invalid value"
        return 200, {"errors": [_error(said)]}, grant.kind
    return 200, _mark_ready(state, grant, node, mutation, now), grant.kind


def _mark_ready(
    state: GitHubState, grant: Grant, node: str, mutation: Mutation, now: datetime
) -> dict[str, Any]:
    found = _find(state, node)
    if found is None or not grant.reaches(found[0].owner, found[0].name):
        said = f"Could not resolve to a node with the global id of '{node}'"
        return {"data": {mutation.field: None}, "errors": [_error(said, _GONE, mutation.field)]}
    repo, item = found
    if not grant.may("pull_requests", "write"):
        refused = _error(grant.refusal, "FORBIDDEN", mutation.field)
        return {"data": {mutation.field: None}, "errors": [refused]}
    assert item.pull is not None
    item.pull.draft = mutation.field == "convertPullRequestToDraft"
    item.updated_at = now
    values = {
        "id": node,
        "isDraft": item.pull.draft,
        "number": item.number,
        "url": f"{shapes.WEB}/{repo.slug}/pull/{item.number}",
        "title": item.title,
    }
    pull = {name: values[name] for name in mutation.fields}
    return {"data": {mutation.field: {"pullRequest": pull}}}


def merge_pull(ctx: Ctx) -> Out:
    """``PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge``: a person's merge on the
    forge, refused as GitHub refuses it — a draft (405, ``Pull Request is still a draft``),
    one not open (405), a ``sha`` that is not its head (409) — else merged (and closed) by
    the caller at its head."""
    item = ctx.pull()
    assert item.pull is not None
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if item.pull.draft:
        raise Refused(405, "Pull Request is still a draft")
    if item.state != "open" or item.pull.merged_at is not None:
        raise Refused(405, "Pull Request is not mergeable")
    sha = body.get("sha")
    if isinstance(sha, str) and sha != item.pull.head_sha:
        raise Refused(409, "Head branch was modified. Review and try the merge again.")
    item.pull.merged_at, item.pull.merged_by = ctx.now, ctx.grant.login
    item.pull.merge_commit_sha = item.pull.head_sha
    item.state, item.closed_at = "closed", ctx.now
    ctx.state.touch(item)
    merged = {
        "sha": item.pull.head_sha,
        "merged": True,
        "message": "Pull Request successfully merged",
    }
    return Out(200, merged)
