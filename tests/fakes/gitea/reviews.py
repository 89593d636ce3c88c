"""The fake Gitea's review submitted by a client (``repoCreatePullReview``), answering as
Gitea's ``routers/api/v1/repo/pull_review.go`` does: the pull request's own author may
not approve it ("approve your own pull is not allowed") nor ask changes of it ("reject
your own pull is not allowed"), both 422; a comment or changes asked for needs a body
("review event COMMENT requires a body"), 422 too; an event Gitea does not name leaves
the review pending. Inline comments are not implemented (a violation when sent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from tests.fakes.gitea import entities as js
from tests.fakes.gitea.ops import Call, Reply

_SUBMITTED: Final = frozenset({"APPROVED", "REQUEST_CHANGES", "COMMENT"})
_OWN: Final = {
    "APPROVED": "approve your own pull is not allowed",
    "REQUEST_CHANGES": "reject your own pull is not allowed",
}


def repo_create_pull_review(call: Call) -> Reply:
    call.unsupported("comments")
    repo, world = call.the_repo(), call.world
    issue = repo.issues.get(call.number())
    if issue is None or issue.pull is None:
        raise call.missing()
    body = call.body if isinstance(call.body, dict) else {}
    event = str(body.get("event") or "")
    text = str(body.get("body") or "")
    if event in _OWN and issue.author.lower() == call.doer.lower():
        raise call.refuse(422, _OWN[event])
    if event in ("COMMENT", "REQUEST_CHANGES") and not text.strip():
        raise call.refuse(422, f"review event {event} requires a body")
    made = world.new_review(issue, call.doer, event if event in _SUBMITTED else "PENDING", text)
    if body.get("commit_id"):
        made.commit_id = str(body["commit_id"])
    return Reply(200, js.review(world, repo, issue, made, call.site))


OPERATIONS: Final[Mapping[str, Callable[[Call], Reply]]] = {
    "repoCreatePullReview": repo_create_pull_review,
}
