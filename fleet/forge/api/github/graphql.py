"""GitHub's GraphQL API as Fleetwarden speaks it: the two mutations that lift a pull
request's draft flag and set it again (GitHub's REST API can neither), where it is sent
for a given REST API root (:func:`graphql_root`), and its answer read.

GraphQL answers a refusal with HTTP 200 and an ``errors`` list: :func:`ready_of` turns
that into a :class:`~fleet.forge.model.ForgeApiError` whose status is HTTP's twin of the
error's ``type`` (``NOT_FOUND``: 404, ``FORBIDDEN``: 403, ``UNPROCESSABLE``: 422; 200 for
any other), and GitHub's rate limit into a
:class:`~fleet.forge.api.rest.ForgeRateLimited`. The forge's words are cut to one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from fleet.forge.api.rest import Answer, ForgeRateLimited, one_line, retry_at
from fleet.forge.model import ForgeApiError

READY_FOR_REVIEW: Final = (
    "mutation MarkReady($id: ID!) {"
    " markPullRequestReadyForReview(input: {pullRequestId: $id})"
    " { pullRequest { id isDraft } } }"
)
"""The mutation that lifts a pull request's draft flag; ``$id`` is its ``node_id``."""
TO_DRAFT: Final = (
    "mutation ToDraft($id: ID!) {"
    " convertPullRequestToDraft(input: {pullRequestId: $id})"
    " { pullRequest { id isDraft } } }"
)
"""The mutation that makes a pull request a draft again (one a forge will not merge)."""
_ENTERPRISE_REST: Final = "/api/v3"
_STATUS_OF_TYPE: Final[Mapping[str, int]] = {
    "NOT_FOUND": 404,
    "FORBIDDEN": 403,
    "UNPROCESSABLE": 422,
}
_RATE_LIMITED: Final = frozenset({"RATE_LIMITED", "RATE_LIMIT"})


def graphql_root(api_url: str) -> str:
    """The root ``/graphql`` is under for the REST API at ``api_url``: the same root on
    github.com (``https://api.github.com/graphql``), ``/api`` for a GitHub Enterprise
    Server's ``/api/v3`` (``https://HOST/api/graphql``) — as octokit's and githubkit's
    GraphQL clients derive it."""
    base = api_url.rstrip("/")
    if base.endswith(_ENTERPRISE_REST):
        return base.removesuffix("/v3")
    return base


def ready_of(
    answer: Answer, what: str, now: datetime, field: str = "markPullRequestReadyForReview"
) -> bool:
    """Whether the answer to :data:`READY_FOR_REVIEW` (or to :data:`TO_DRAFT`, its
    ``field``) says the pull request is a draft no more; its ``errors`` (or an answer of
    another shape) as :class:`~fleet.forge.model.ForgeApiError`."""
    data = answer.data
    if not isinstance(data, dict):
        raise ForgeApiError(f"GitHub answered {what} with no JSON object", answer.status)
    errors = data.get("errors")
    if errors:
        raise _refusal(errors, what, answer, now)
    try:
        pull = data["data"][field]["pullRequest"]
        draft = pull["isDraft"]
    except (KeyError, TypeError):
        raise ForgeApiError(
            f"GitHub answered {what} without the pull request's 'isDraft'", answer.status
        ) from None
    if not isinstance(draft, bool):
        raise ForgeApiError(f"GitHub answered {what} without a usable 'isDraft'", answer.status)
    return not draft


def _refusal(errors: Any, what: str, answer: Answer, now: datetime) -> ForgeApiError:
    items = errors if isinstance(errors, list) else [errors]
    messages: list[str] = []
    kinds: list[str] = []
    for item in items[:3]:
        if isinstance(item, dict):
            message, kind = item.get("message"), item.get("type")
            if isinstance(message, str):
                messages.append(message)
            if isinstance(kind, str):
                kinds.append(kind)
    kind = kinds[0] if kinds else "an error"
    said = one_line("; ".join(messages))
    message = f"GitHub refused {what}: {kind}" + (f": {said}" if said else "")
    if kind in _RATE_LIMITED:
        when = retry_at(429, answer.headers, now) or now + timedelta(minutes=1)
        wait = max(0, round((when - now).total_seconds()))
        return ForgeRateLimited(
            f"{message} (rate limited: retry after {when:%H:%M:%S} UTC, in {wait} s)",
            answer.status,
            when,
        )
    return ForgeApiError(message, _STATUS_OF_TYPE.get(kind, answer.status))
