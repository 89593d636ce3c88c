"""The operations the fake GitLab server serves, one function each (by the description's
``operationId``), answering as GitLab's ``lib/api`` endpoints do: the same access checks
(Guest reads a private project's issues and comments on them, Reporter reads its merge
requests, Developer opens, edits, approves and merges them), the same statuses and
messages (``404 Project Not Found``, ``SHA does not match HEAD of source branch: …``).

Each takes a :class:`Call` (who asks, the parameters, the parsed body, the project the
path names, already found and visible to the caller) and returns a :class:`Reply`, or
raises :class:`Refused` for an error answer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from tests.fakes.gitlab import entities as js
from tests.fakes.gitlab.state import (
    DEVELOPER,
    DRAFT,
    GUEST,
    REPORTER,
    Issue,
    MergeRequest,
    Note,
    Project,
    Status,
    World,
)

DEFAULT_PAGE: Final = 20
MAX_PAGE: Final = 100


@dataclass
class Reply:
    status: int
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """An error answer: ``status`` with GitLab's ``{"message": …}``."""

    def __init__(self, status: int, said: Any) -> None:
        super().__init__(status)
        self.status = status
        self.data = {"message": said}


@dataclass
class Call:
    world: World
    site: str
    doer: str
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: Any
    project: Project | None
    path: str = ""
    scopes: tuple[str, ...] = ()

    def the_project(self) -> Project:
        if self.project is None:
            raise RuntimeError("this operation has no project")
        return self.project

    def level(self) -> int:
        return self.world.level(self.the_project(), self.doer)

    def needs(self, level: int, status: int = 403) -> None:
        if self.level() < level:
            raise Refused(status, "403 Forbidden" if status == 403 else "401 Unauthorized")

    def field(self, name: str) -> Any:
        return self.body.get(name) if isinstance(self.body, dict) else None


def _page(call: Call, items: Sequence[Any]) -> Reply:
    page = max(1, int(call.query.get("page") or 1))
    size = int(call.query.get("per_page") or DEFAULT_PAGE)
    size = DEFAULT_PAGE if size <= 0 else min(size, MAX_PAGE)
    total = len(items)
    pages = max(1, -(-total // size))
    headers = {
        "X-Total": str(total),
        "X-Total-Pages": str(pages),
        "X-Per-Page": str(size),
        "X-Page": str(page),
        "X-Next-Page": str(page + 1) if page < pages else "",
        "X-Prev-Page": str(page - 1) if page > 1 else "",
    }
    return Reply(200, list(items[(page - 1) * size : page * size]), headers)


def _users(call: Call) -> dict[str, Any]:
    return call.world.users


def _issue(call: Call, name: str = "issue_iid") -> Issue:
    call.needs(GUEST, 404)
    found = call.the_project().issues.get(int(call.params[name]))
    if found is None:
        raise Refused(404, "404 Issue Not Found")
    return found


def _mr(call: Call, name: str = "merge_request_iid") -> MergeRequest:
    if call.level() < REPORTER:
        raise Refused(404, "404 Merge Request Not Found")
    call.world.sync_heads(call.the_project())
    found = call.the_project().mrs.get(int(call.params[name]))
    if found is None:
        raise Refused(404, "404 Merge Request Not Found")
    return found


def _note_json(call: Call, made: Note) -> dict[str, Any]:
    return js.note(call.site, call.the_project(), made, call.world.users[made.author.lower()])


def _mr_json(call: Call, mr: MergeRequest) -> dict[str, Any]:
    return js.merge_request(call.site, call.the_project(), mr, call.world.users)


def _after(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- issues -----------------------------------------------------------------------------


def list_issues(call: Call) -> Reply:
    call.needs(GUEST, 404)
    state = call.query.get("state", "all")
    since = _after(call.query.get("updated_after"))
    found = [
        i for i in call.the_project().issues.values()
        if state in ("all", i.state) and (since is None or i.updated >= since)
    ]  # fmt: skip
    key = call.query.get("order_by", "created_at")
    found.sort(key=lambda i: (i.updated if key == "updated_at" else i.created, i.iid))
    if call.query.get("sort", "desc") == "desc":
        found.reverse()
    users = _users(call)
    return _page(call, [js.issue(call.site, call.the_project(), i, users) for i in found])


def get_issue(call: Call) -> Reply:
    return Reply(200, js.issue(call.site, call.the_project(), _issue(call), _users(call)))


def list_label_events(call: Call) -> Reply:
    events = _issue(call, "eventable_id").label_events
    return _page(call, [js.label_event(call.site, e, _users(call)) for e in events])


# -- notes ------------------------------------------------------------------------------


def _noteable(call: Call) -> Issue | MergeRequest:
    return _issue(call, "noteable_id") if "/issues/" in call.path else _mr(call, "noteable_id")


def list_notes(call: Call) -> Reply:
    notes = list(_noteable(call).notes)
    key = call.query.get("order_by", "created_at")
    notes.sort(key=lambda n: (n.updated if key == "updated_at" else n.created, n.id))
    if call.query.get("sort", "desc") == "desc":
        notes.reverse()
    if call.query.get("activity_filter") == "only_comments":
        notes = [n for n in notes if not n.system]
    return _page(call, [_note_json(call, n) for n in notes])


def post_note(call: Call) -> Reply:
    target = _noteable(call)
    body = call.field("body")
    if not isinstance(body, str) or not body.strip():
        raise Refused(400, '400 Bad request - Note {:note=>["can\'t be blank"]}')
    made = call.world.note(call.the_project(), target, call.doer, body)
    return Reply(201, _note_json(call, made))


def put_note(call: Call) -> Reply:
    target = _noteable(call)
    note_id = int(call.params["note_id"])
    found = next((n for n in target.notes if n.id == note_id), None)
    if found is None:
        raise Refused(404, "404 Note Not Found")
    if found.author.lower() != call.doer.lower() or found.system:
        raise Refused(403, "403 Forbidden")
    body = call.field("body")
    if isinstance(body, str):
        found.body = body
        found.updated = call.world.now()
    return Reply(200, _note_json(call, found))


# -- merge requests ---------------------------------------------------------------------


def list_mrs(call: Call) -> Reply:
    if call.level() < REPORTER:
        raise Refused(404, "404 Project Not Found")
    call.world.sync_heads(call.the_project())
    state = call.query.get("state", "all")
    found = [
        m for m in call.the_project().mrs.values()
        if state in ("all", m.state)
        and call.query.get("source_branch", m.source_branch) == m.source_branch
        and call.query.get("target_branch", m.target_branch) == m.target_branch
    ]  # fmt: skip
    found.sort(key=lambda m: m.iid, reverse=call.query.get("sort", "desc") == "desc")
    return _page(call, [_mr_json(call, m) for m in found])


def _reviewers(call: Call, ids: Any) -> list[str]:
    found = []
    for user_id in ids or []:
        user = call.world.user_by_id(user_id) if isinstance(user_id, int) else None
        if user is not None and user_id != 0:
            found.append(user.username)
    return found


def create_mr(call: Call) -> Reply:
    call.needs(DEVELOPER)
    project = call.the_project()
    source, target = call.field("source_branch"), call.field("target_branch")
    for branch in (source, target):
        if branch not in project.branches:
            raise Refused(422, [f"Branch {branch!r} does not exist"])
    if source == target:
        raise Refused(422, ["You can't use same project/branch for source and target"])
    for other in project.mrs.values():
        if other.state == "opened" and (other.source_branch, other.target_branch) == (
            source,
            target,
        ):
            said = f"Another open merge request already exists for this source branch: !{other.iid}"
            raise Refused(409, [said])
    now = call.world.now()
    mr = MergeRequest(
        call.world.next_id(), max(project.mrs, default=0) + 1, call.field("title"),
        call.field("description") or "", call.doer, source, target, project.branches[source],
        now, now, reviewers=_reviewers(call, call.field("reviewer_ids")),
    )  # fmt: skip
    project.mrs[mr.iid] = mr
    return Reply(201, _mr_json(call, mr))


def get_mr(call: Call) -> Reply:
    return Reply(200, _mr_json(call, _mr(call)))


def update_mr(call: Call) -> Reply:
    mr = _mr(call)
    if call.level() < DEVELOPER and mr.author.lower() != call.doer.lower():
        raise Refused(403, "403 Forbidden")
    if isinstance(call.field("title"), str):
        mr.title = call.field("title")
    if isinstance(call.field("description"), str):
        mr.description = call.field("description")
    if call.field("reviewer_ids") is not None:
        mr.reviewers = _reviewers(call, call.field("reviewer_ids"))
    event = call.field("state_event")
    if event == "close" and mr.state == "opened":
        mr.state, mr.closed_at = "closed", call.world.now()
    elif event == "reopen" and mr.state == "closed":
        mr.state, mr.closed_at = "opened", None
    mr.updated = call.world.now()
    return Reply(200, _mr_json(call, mr))


def merge_mr(call: Call) -> Reply:
    mr = _mr(call)
    if call.level() < DEVELOPER:
        raise Refused(401, "401 Unauthorized")
    if mr.state != "opened" or mr.draft:
        raise Refused(405, "405 Method Not Allowed")
    sha = call.field("sha")
    if sha is not None and sha != mr.sha:
        raise Refused(409, f"SHA does not match HEAD of source branch: {mr.sha}")
    now = call.world.now()
    mr.state, mr.merged_by, mr.merged_at, mr.updated = "merged", call.doer, now, now
    return Reply(200, _mr_json(call, mr))


def get_approvals(call: Call) -> Reply:
    mr = _mr(call)
    return Reply(200, js.approvals(call.site, mr, _users(call), call.doer))


def approve_mr(call: Call) -> Reply:
    # GitLab: ``unauthorized!`` unless the user may approve: an eligible member (Developer
    # and up), not its author (merge_requests_author_approval is off by default), and
    # not one who approved already.
    mr = _mr(call)
    sha = call.field("sha")
    if sha is not None and sha != mr.sha:
        raise Refused(409, "SHA does not match HEAD of source branch")
    mine = any(u.lower() == call.doer.lower() for u, _ in mr.approvals)
    if call.level() < DEVELOPER or mr.author.lower() == call.doer.lower() or mine:
        raise Refused(401, "401 Unauthorized")
    mr.approvals.append((call.doer, call.world.now()))
    call.world.note(call.the_project(), mr, call.doer, "approved this merge request", system=True)
    return Reply(201, js.approvals(call.site, mr, _users(call), call.doer))


# -- repository -------------------------------------------------------------------------


def get_file(call: Call) -> Reply:
    call.needs(REPORTER, 404)
    project = call.the_project()
    ref, path = call.query["ref"], call.params["file_path"]
    if ref == "HEAD":
        ref = project.default_branch
    if ref not in project.branches:
        raise Refused(404, "404 Commit Not Found")
    files = project.files.get(ref, {})
    if path not in files:
        raise Refused(404, "404 File Not Found")
    data = bytes(files[path])
    sha = project.branches[ref]
    return Reply(200, {
        "file_name": path.rpartition("/")[2],
        "file_path": path,
        "size": len(data),
        "encoding": "base64",
        "content": base64.b64encode(data).decode(),
        "content_sha256": hashlib.sha256(data).hexdigest(),
        "ref": call.query["ref"],
        "blob_id": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),
        "commit_id": sha,
        "last_commit_id": sha,
        "execute_filemode": False,
    })  # fmt: skip


def delete_branch(call: Call) -> Reply:
    call.needs(DEVELOPER)
    project, branch = call.the_project(), call.params["branch"]
    if branch not in project.branches:
        raise Refused(404, "404 Branch Not Found")
    if branch == project.default_branch:
        raise Refused(400, "400 Bad request - The default branch of a project cannot be deleted.")
    del project.branches[branch]
    if not project.linked:
        project.files.pop(branch, None)
    return Reply(204)


def post_status(call: Call) -> Reply:
    call.needs(DEVELOPER)
    project = call.the_project()
    name = call.field("name") or call.field("context") or "default"
    state, sha = call.field("state"), call.params["sha"]
    final = {"success", "failed", "canceled", "skipped"}
    found = next(
        (s for s in project.statuses if s.sha == sha and s.name == name and s.state not in final),
        None,
    )
    if found is None:
        found = Status(call.world.next_id(), sha, name, state, "", call.doer, call.world.now())
        project.statuses.append(found)
    found.state = state
    found.description = call.field("description") or ""
    user = call.world.users[call.doer.lower()]
    return Reply(200, js.status(call.site, found, user))


def get_project(call: Call) -> Reply:
    return Reply(200, js.project(call.site, call.the_project()))


# -- people -----------------------------------------------------------------------------


def _member(call: Call, level: int) -> Reply:
    user = call.world.user_by_id(int(call.params["user_id"]))
    if user is None or level <= 0:
        raise Refused(404, "404 Not found")
    return Reply(200, js.member(call.site, user, level))


def project_member(call: Call) -> Reply:
    user = call.world.user_by_id(int(call.params["user_id"]))
    level = call.world.level(call.the_project(), user.username) if user else 0
    return _member(call, level)


def group_member(call: Call) -> Reply:
    group = call.world.group(call.params["id"])
    if group is None or not call.world.can_see_group(group, call.doer):
        raise Refused(404, "404 Group Not Found")
    user = call.world.user_by_id(int(call.params["user_id"]))
    return _member(call, call.world.group_level(group, user.username) if user else 0)


def list_users(call: Call) -> Reply:
    wanted = call.query.get("username")
    found = [
        u for u in call.world.users.values()
        if wanted is None or u.username.lower() == wanted.lower()
    ]  # fmt: skip
    return _page(call, [js.user_basic(call.site, u) for u in found])


def current_user(call: Call) -> Reply:
    return Reply(200, js.user_public(call.site, call.world.users[call.doer.lower()]))


def token_self(call: Call) -> Reply:
    user = call.world.users[call.doer.lower()]
    return Reply(200, {
        "id": user.id * 1000 + 1,
        "name": "fleetwarden",
        "revoked": False,
        "created_at": js.when(user.created),
        "description": None,
        "scopes": list(call.scopes),
        "user_id": user.id,
        "last_used_at": None,
        "active": True,
        "expires_at": None,
        "last_used_ips": [],
    })  # fmt: skip


OPERATIONS: Final[Mapping[str, Callable[[Call], Reply]]] = {
    "fwListProjectIssues": list_issues,
    "fwGetProjectIssue": get_issue,
    "getApiV4ProjectsIdIssuesEventableIdResourceLabelEvents": list_label_events,
    "getApiV4ProjectsIdIssuesNoteableIdNotes": list_notes,
    "postApiV4ProjectsIdIssuesNoteableIdNotes": post_note,
    "putApiV4ProjectsIdIssuesNoteableIdNotesNoteId": put_note,
    "getApiV4ProjectsIdMergeRequestsNoteableIdNotes": list_notes,
    "postApiV4ProjectsIdMergeRequestsNoteableIdNotes": post_note,
    "putApiV4ProjectsIdMergeRequestsNoteableIdNotesNoteId": put_note,
    "getApiV4ProjectsIdMergeRequests": list_mrs,
    "postApiV4ProjectsIdMergeRequests": create_mr,
    "getApiV4ProjectsIdMergeRequestsMergeRequestIid": get_mr,
    "putApiV4ProjectsIdMergeRequestsMergeRequestIid": update_mr,
    "putApiV4ProjectsIdMergeRequestsMergeRequestIidMerge": merge_mr,
    "getApiV4ProjectsIdMergeRequestsMergeRequestIidApprovals": get_approvals,
    "postApiV4ProjectsIdMergeRequestsMergeRequestIidApprove": approve_mr,
    "getApiV4ProjectsIdRepositoryFilesFilePath": get_file,
    "deleteApiV4ProjectsIdRepositoryBranchesBranch": delete_branch,
    "postApiV4ProjectsIdStatusesSha": post_status,
    "getApiV4ProjectsId": get_project,
    "getApiV4ProjectsIdMembersAllUserId": project_member,
    "getApiV4GroupsIdMembersAllUserId": group_member,
    "getApiV4Users": list_users,
    "getApiV4User": current_user,
    "getApiV4PersonalAccessTokensSelf": token_self,
}
__all__ = ["DRAFT", "OPERATIONS", "Call", "Refused", "Reply"]
