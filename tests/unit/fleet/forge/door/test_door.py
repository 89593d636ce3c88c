"""Tests for fleet.forge.door.door: the forge door's token check, scope rules, audit lines,
plain renderings and error answers, served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fleet.forge.door.door import (
    MAX_ANSWER,
    MAX_BODY,
    TOKEN_HEADER,
    cap_answer,
    one_line,
    render_comments,
    render_issue,
    render_pull,
)
from fleet.forge.door.door_calls import BadCall, Comment, Read, parse_call
from fleet.forge.model import ForgeApiError, ForgeComment, ForgeFile
from tests.unit.fleet.forge.door.door_rig import (
    AGENT,
    API_URL,
    OTHER,
    REPO,
    SCOPE,
    WHEN,
    Audit,
    DoorRig,
    issue,
    pull,
    serve_door,
)

DEADLINE = 10.0


@pytest.fixture
async def door_rig(tmp_path: Path) -> AsyncIterator[DoorRig]:
    async with serve_door(tmp_path, body_seconds=0.3) as served:
        yield served


async def call(
    rig: DoorRig, body: Any, *, agent: str = AGENT, token: str | None = None
) -> tuple[int, Any]:
    """Post ``body`` (JSON, or bytes as they are) as ``agent``; the status and JSON answer."""
    headers = {TOKEN_HEADER: rig.tokens[AGENT] if token is None else token}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(rig.url(agent), data=data, headers=headers) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text else None


def audited(rig: DoorRig) -> list[tuple[str, bool, str]]:
    return [(a.op, a.allowed, a.detail) for a in rig.actions.audits]


async def test_a_wrong_token_is_403_with_no_detail_and_nothing_done(door_rig: DoorRig) -> None:
    """A wrong token, another agent's token or an unknown agent: 403 with no body."""
    comment = {"op": "comment", "number": None, "body": "hi"}
    for agent, token in [
        (AGENT, "not-the-token"),
        (AGENT, door_rig.tokens[OTHER]),
        ("nobody", door_rig.tokens[AGENT]),
        ("Bad Name", door_rig.tokens[AGENT]),
    ]:
        assert await call(door_rig, comment, agent=agent, token=token) == (403, None)
    assert door_rig.actions.calls == [] and door_rig.actions.audits == []


async def test_a_comment_outside_the_scope_is_refused_and_audited(door_rig: DoorRig) -> None:
    """A comment on an issue that is not the run's: 403 with the refusal line, audited."""
    status, answer = await call(door_rig, {"op": "comment", "number": 3, "body": "I fixed it"})
    assert (status, answer) == (403, {"error": "refused: comment on #3, not assigned"})
    assert door_rig.actions.audits == [
        Audit(SCOPE, AGENT, "comment", False, "refused: comment on #3, not assigned")
    ]
    assert door_rig.actions.writes() == []


async def test_a_comment_goes_on_its_issue_or_its_pull(door_rig: DoorRig) -> None:
    """No number: the run's issue; its pull request's number is in scope once open."""
    status, answer = await call(door_rig, {"op": "comment", "number": None, "body": "on it"})
    assert status == 200 and answer["ok"] is True
    assert answer["text"].endswith("/issues/7#issuecomment-1")
    door_rig.scopes[AGENT] = replace(SCOPE, pull=18)
    status, _ = await call(door_rig, {"op": "comment", "number": 18, "body": "pushed"})
    assert status == 200
    assert door_rig.actions.writes() == [
        ("comment", SCOPE, 7, "on it"),
        ("comment", replace(SCOPE, pull=18), 18, "pushed", "pull"),
    ]
    assert audited(door_rig) == [
        ("comment", True, "commented on #7"),
        ("comment", True, "commented on #18"),
    ]


async def test_a_comment_on_the_pull_request_is_named_so_where_numbers_repeat(
    door_rig: DoorRig,
) -> None:
    """On GitLab issue 7 and merge request 7 are two things: ``pull`` names the run's merge
    request, a bare 7 its issue; ``pull`` with no pull request open is refused."""
    status, answer = await call(door_rig, {"op": "comment", "pull": True, "body": "early"})
    assert (status, answer) == (
        403,
        {"error": "refused: no pull request yet: `fw-forge pr` opens it"},
    )
    door_rig.scopes[AGENT] = replace(SCOPE, pull=7)
    assert (await call(door_rig, {"op": "comment", "pull": True, "body": "on the MR"}))[0] == 200
    assert (await call(door_rig, {"op": "comment", "number": 7, "body": "on the issue"}))[0] == 200
    status, answer = await call(door_rig, {"op": "comment", "pull": True, "number": 8, "body": "x"})
    assert (status, answer) == (403, {"error": "refused: comment on pull request 8, not yours"})
    status, _ = await call(door_rig, {"op": "comment", "pull": "yes", "body": "x"})
    assert status == 400
    assert door_rig.actions.writes() == [
        ("comment", replace(SCOPE, pull=7), 7, "on the MR", "pull"),
        ("comment", replace(SCOPE, pull=7), 7, "on the issue"),
    ]
    assert [line for line in audited(door_rig) if line[1]] == [
        ("comment", True, "commented on PR #7"),
        ("comment", True, "commented on #7"),
    ]


async def test_reads_reach_any_number_and_any_file_in_the_repository(door_rig: DoorRig) -> None:
    """Reads of issues, pulls and comments of other numbers, and files, are allowed,
    rendered plainly and audited with what was read."""
    door_rig.reads.files[("src/a.py", None)] = ForgeFile("src/a.py", "print('a')\n", "abc123")
    door_rig.reads.files[("README.md", "v1.2")] = ForgeFile("README.md", "old", "def456")
    door_rig.reads.comment_lists[42] = [
        ForgeComment(1, "bob", "first", WHEN, "https://forge.example/c/1"),
        ForgeComment(2, "carol", "second\r\nline", WHEN, "https://forge.example/c/2"),
    ]
    answers = [
        await call(door_rig, {"op": "read", "what": "issue", "number": 3}),
        await call(door_rig, {"op": "read", "what": "pull", "number": 18}),
        await call(door_rig, {"op": "read", "what": "comments", "number": 42}),
        await call(door_rig, {"op": "read", "what": "file", "path": "src/a.py"}),
        await call(door_rig, {"op": "read", "what": "file", "path": "README.md", "ref": "v1.2"}),
    ]
    assert [status for status, _ in answers] == [200] * 5
    texts = [answer["text"] for _, answer in answers]
    assert texts[0] == (
        "#3 Issue 3\nopen, labels: bug, fleetwarden, by @alice\n\nThe body of issue 3."
    )
    assert texts[1].startswith("#18 Pull 18\nopen, by @fleetwarden-bot\nhead fw/issue-7")
    assert "into base main, merged: no\n\nThe description of pull 18." in texts[1]
    assert texts[2] == (
        "@bob at 2026-11-20 09:30 UTC:\nfirst\n\n@carol at 2026-11-20 09:30 UTC:\nsecond\nline"
    )
    assert texts[3] == "src/a.py@the default branch\nprint('a')\n"
    assert texts[4] == "README.md@v1.2\nold"
    assert door_rig.reads.calls == [
        ("issue", REPO, 3),
        ("pull", REPO, 18),
        ("comments", REPO, 42),
        ("file", REPO, "src/a.py", None),
        ("file", REPO, "README.md", "v1.2"),
    ]
    assert audited(door_rig) == [
        ("read", True, "read issue #3"),
        ("read", True, "read PR #18 description"),
        ("read", True, "read issue #42 comments"),
        ("read", True, "read file src/a.py"),
        ("read", True, "read file README.md@v1.2"),
    ]
    assert {("api", "hub")} == set(door_rig.actions.calls)


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "/etc/passwd", "src/../../secret", "src/./a.py", "a//b", "..\\x", "a\nb"],
)
async def test_a_path_out_of_the_repository_is_refused(door_rig: DoorRig, path: str) -> None:
    """Absolute paths, ``..``, ``.``, empty parts, backslashes and control characters: 400,
    audited as refused, and the forge is never asked."""
    status, answer = await call(door_rig, {"op": "read", "what": "file", "path": path})
    assert status == 400 and "relative" in answer["error"]
    assert door_rig.reads.calls == []
    [entry] = door_rig.actions.audits
    assert (entry.op, entry.allowed) == ("read", False) and "\n" not in entry.detail


async def test_describe_needs_its_pull_request(door_rig: DoorRig) -> None:
    """Without a pull request describe is refused, pointing at ``fw-forge pr``; with one it
    is done and audited."""
    status, answer = await call(door_rig, {"op": "describe", "body": "What changed"})
    assert status == 403
    assert answer == {"error": "refused: no pull request yet: `fw-forge pr` opens it"}
    door_rig.scopes[AGENT] = replace(SCOPE, pull=18)
    status, answer = await call(door_rig, {"op": "describe", "body": "What changed"})
    assert status == 200 and answer["text"].endswith("/pull/18")
    assert door_rig.actions.writes() == [("describe", replace(SCOPE, pull=18), "What changed")]
    assert [a.detail for a in door_rig.actions.audits] == [
        "refused: no pull request yet: `fw-forge pr` opens it",
        "described PR #18",
    ]


async def test_pr_opens_one_only_when_none_is_open(door_rig: DoorRig) -> None:
    """``pr`` opens the run's pull request; once one is open it is refused, naming it."""
    status, answer = await call(
        door_rig, {"op": "pr", "title": "Fix it", "body": "B", "draft": True}
    )
    assert status == 200 and answer["text"].endswith("/pull/18")
    assert door_rig.actions.writes() == [("open_pull", SCOPE, "Fix it", "B", True)]
    door_rig.scopes[AGENT] = replace(SCOPE, pull=18)
    status, answer = await call(
        door_rig, {"op": "pr", "title": "Again", "body": "", "draft": False}
    )
    assert status == 403 and "#18 is already open" in answer["error"]
    assert len(door_rig.actions.writes()) == 1
    assert audited(door_rig)[0] == ("pr", True, "opened the draft pull request")
    assert audited(door_rig)[1][:2] == ("pr", False)


async def test_done_takes_ok_or_failed_and_a_short_summary(door_rig: DoorRig) -> None:
    """A status other than ok/failed, or a summary over 4000 characters: 400; ``done ok``
    reaches the run and is audited."""
    status, answer = await call(door_rig, {"op": "done", "status": "great", "summary": "x"})
    assert status == 400 and "ok" in answer["error"]
    status, _ = await call(door_rig, {"op": "done", "status": "ok", "summary": "x" * 4001})
    assert status == 400
    status, answer = await call(door_rig, {"op": "done", "status": "ok", "summary": "all green"})
    assert status == 200 and answer["text"].startswith("done ok")
    assert door_rig.actions.writes() == [("done", SCOPE, "ok", "all green")]
    assert audited(door_rig)[-1] == ("done", True, "done ok")
    assert [allowed for _, allowed, _ in audited(door_rig)] == [False, False, True]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"op": "delete"}', '"op"'),
        (b'{"op": "comment", "body": "x", "extra": 1}', "unknown fields"),
        (b'{"op": "comment", "number": true, "body": "x"}', '"number"'),
        (b'{"op": "comment", "number": 3, "body": "  "}', '"body"'),
        (b'{"op": "read", "what": "issue"}', '"number"'),
        (b'{"op": "read", "what": "issue", "number": 3, "path": "a"}', "number"),
        (b'{"op": "pr", "title": "two\\nlines"}', '"title"'),
        (b'{"op": "pr", "title": "t", "draft": "yes"}', '"draft"'),
    ],
)
async def test_a_body_that_is_not_a_call_is_400_saying_why(
    door_rig: DoorRig, body: bytes, why: str
) -> None:
    """Malformed calls are 400 with what is wrong, audited as refused."""
    status, answer = await call(door_rig, body)
    assert status == 400 and why in answer["error"]
    assert door_rig.actions.writes() == [] and door_rig.reads.calls == []
    assert [a.allowed for a in door_rig.actions.audits] == [False]


async def test_an_oversized_body_is_413_and_audited(door_rig: DoorRig) -> None:
    """Over 64 KiB, whether declared or streamed in chunks: 413, nothing done."""
    big = json.dumps({"op": "comment", "number": None, "body": "x" * MAX_BODY}).encode()
    assert (await call(door_rig, big))[0] == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096]

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            door_rig.url(), data=chunks(), headers={TOKEN_HEADER: door_rig.tokens[AGENT]}
        ) as resp,
    ):
        assert resp.status == 413
    assert door_rig.actions.writes() == []
    assert audited(door_rig) == [("?", False, "refused: a call over 64 KiB")] * 2


async def test_a_body_that_does_not_arrive_in_time_is_408(door_rig: DoorRig) -> None:
    """A body announced and never finished is answered 408 once the door's time is up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", door_rig.port)
    head = (
        f"POST /forge/{AGENT} HTTP/1.1\r\nHost: 127.0.0.1\r\n{TOKEN_HEADER}: "
        f'{door_rig.tokens[AGENT]}\r\nContent-Length: 100\r\n\r\n{{"op":'
    )
    writer.write(head.encode())
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), DEADLINE)
    writer.close()
    assert status_line.split()[1] == b"408"
    assert audited(door_rig) == [("?", False, "refused: the call came too slowly")]


async def test_a_forge_error_is_502_without_the_api_address(door_rig: DoorRig) -> None:
    """The forge's API failing: 502 saying its status, never its address, in the answer
    or the audit; a forge that did not answer at all is said so."""
    door_rig.reads.failure = ForgeApiError(f"GitHub refused GET {API_URL}/repos/acme/app: 404", 404)
    status, answer = await call(door_rig, {"op": "read", "what": "issue", "number": 3})
    assert (status, answer) == (502, {"error": "the forge answered 404: Not Found"})
    status, answer = await call(door_rig, {"op": "comment", "number": None, "body": "x"})
    assert (status, answer) == (502, {"error": "the forge answered 404: Not Found"})
    door_rig.reads.failure = ForgeApiError(f"cannot reach {API_URL}: timed out", 0)
    status, answer = await call(door_rig, {"op": "read", "what": "pull", "number": 3})
    assert (status, answer) == (502, {"error": "the forge did not answer"})
    assert all("forge-api" not in a.detail for a in door_rig.actions.audits)
    assert audited(door_rig)[0] == (
        "read",
        True,
        "read issue #3: the forge answered 404: Not Found",
    )


async def test_an_agent_with_no_forge_run_is_409(door_rig: DoorRig) -> None:
    """The right token but no forge run: 409 "no forge run", audited with no scope."""
    status, answer = await call(
        door_rig,
        {"op": "done", "status": "ok", "summary": ""},
        agent=OTHER,
        token=door_rig.tokens[OTHER],
    )
    assert (status, answer) == (409, {"error": "no forge run"})
    assert door_rig.actions.audits == [Audit(None, OTHER, "done", False, "refused: no forge run")]


async def test_the_run_refusing_an_allowed_call_is_409_with_its_words(door_rig: DoorRig) -> None:
    """A write the scope allows but the run refuses: 409 with the run's message."""
    door_rig.actions.refuse = "push your branch first: git push origin HEAD"
    status, answer = await call(door_rig, {"op": "pr", "title": "Fix", "body": "", "draft": False})
    assert (status, answer) == (409, {"error": "push your branch first: git push origin HEAD"})
    assert audited(door_rig) == [
        ("pr", False, "refused: push your branch first: git push origin HEAD")
    ]
    door_rig.actions.refuse = "refused: this forge run is over"
    status, answer = await call(door_rig, {"op": "done", "status": "ok", "summary": ""})
    assert (status, answer) == (409, {"error": "refused: this forge run is over"})
    assert audited(door_rig)[-1] == ("done", False, "refused: this forge run is over")


async def test_a_read_answer_is_capped_at_256_kib(door_rig: DoorRig) -> None:
    """A file bigger than the answer's cap is cut, saying so."""
    door_rig.reads.files[("big.txt", None)] = ForgeFile("big.txt", "é" * MAX_ANSWER, "abc")
    status, answer = await call(door_rig, {"op": "read", "what": "file", "path": "big.txt"})
    assert status == 200
    assert len(answer["text"].encode()) <= MAX_ANSWER
    assert answer["text"].endswith("(cut here: the answer is over 256 KiB)")


def test_hostile_text_is_one_short_line_in_the_audit() -> None:
    """Newlines and control characters become spaces; the line stops at 200 characters."""
    assert one_line("refused:\nfake line\x1b[31m red") == "refused: fake line [31m red"
    long = one_line("read file " + "a/" * 199 + "b")
    assert len(long) == 200 and long.endswith("…")


def test_renderings_drop_control_characters_and_apply_clean() -> None:
    """Titles, bodies and comments pass through ``clean``; terminal escapes are dropped."""

    def clean(text: str) -> str:
        return text.replace("<!-- hidden -->", "")

    text = render_issue(
        issue(5, title="Bad\x1b[2J title", body="seen<!-- hidden -->", assignees=("bob",)),
        clean,
    )
    assert text == (
        "#5 Bad[2J title\nopen, labels: bug, fleetwarden, by @alice, assigned to @bob\n\nseen"
    )
    merged = render_pull(pull(9, state="closed", merged=True, draft=True))
    assert merged.splitlines()[1:3] == [
        "closed, draft, by @fleetwarden-bot",
        "head fw/issue-7 (0123456789ab) into base main, merged: yes",
    ]
    naive = datetime(2026, 1, 2, 3, 4)
    assert render_comments(4, []) == "no comments on #4"
    assert render_comments(4, [ForgeComment(1, "x", "b", naive, "u")]).startswith(
        "@x at 2026-01-02 03:04 UTC:"
    )
    assert cap_answer("short") == "short"
    assert WHEN.tzinfo is UTC


def test_parse_call_reads_the_calls_it_knows() -> None:
    """A comment with no number is the run's issue; a read of a file has its path."""
    assert parse_call(b'{"op":"comment","number":null,"body":"hi"}') == Comment(None, "hi")
    assert parse_call(b'{"op":"read","what":"file","path":"a/b.py"}') == Read("file", path="a/b.py")
    with pytest.raises(BadCall) as raised:
        parse_call(b'{"op":"read","what":"file","path":"a","ref":"-x"}')
    assert raised.value.op == "read"


async def test_a_door_served_before_forge_work_is_up_has_no_forge_run(tmp_path: Path) -> None:
    """The heartbeat endpoint listens before forge work exists: a call then is "no forge
    run" (a wrong token still 403), and once bound the same call is carried out."""
    async with serve_door(tmp_path, bound=False) as door_rig:
        read = {"op": "read", "what": "issue", "number": 3}
        assert await call(door_rig, read) == (409, {"error": "no forge run"})
        assert (await call(door_rig, read, token="not-the-token"))[0] == 403
        assert door_rig.actions.audits == []
        door_rig.bind()
        status, _ = await call(door_rig, read)
        assert status == 200
