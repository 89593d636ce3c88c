"""Who a run's commits are by and for (fleet.repos.line.identity) and what Fleetwarden's own
landing commits say (fleet.repos.landing.messages): an agent's `git_name`/`git_email` from its
entry or `defaults`, refused on its line when git would write it otherwise; the requester's
`Co-authored-by:` line for an operator, a chat user and a forge user, one line whatever
their name holds; a squash's subject and body from the agent's own subjects."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, parse_config
from fleet.agents.roster import AgentEntry
from fleet.ledger.records.specs import spec_extra_json
from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.repos.hook.policy import Identity, Issue, agent_identity
from fleet.repos.landing.messages import land_message, one_line, work_title
from fleet.repos.line.identity import (
    chat_co_author,
    clean_co_author,
    co_author,
    forge_co_author,
    identity_of,
    template_problem,
)
from fleet.repos.schema import RepoEntry


def parse(text: str) -> object:
    return parse_config(text, "fleetwarden.yaml", base_dir=Path("/srv/fw"))


def test_the_default_identity_names_the_agent_and_its_host() -> None:
    """Without `git_name`/`git_email` an agent commits as itself at an `.invalid` address
    naming its host — as before the keys existed."""
    assert identity_of("coder", "local") == agent_identity("coder", "local")
    assert identity_of("coder", "Build Box.1") == Identity(
        "coder", "coder@build-box-1.fleetwarden.invalid"
    )


def test_git_name_and_git_email_come_from_the_entry_or_defaults_with_placeholders() -> None:
    """An entry's own keys win over `defaults`'; `{agent}` and `{host}` are filled in where
    the line is cut; an ad hoc agent keeps what its record stored."""
    config = parse_config(
        "defaults:\n  git_email: '{agent}+{host}@bots.example.org'\n"
        "agents:\n"
        "  - {name: coder, git_name: '{agent} (bot)'}\n"
        "  - {name: docs, git_name: Docs Writer, git_email: docs@example.org}\n",
        "fleetwarden.yaml",
        base_dir=Path("/srv/fw"),
    )
    coder, docs = (entry.to_spec(config.defaults) for entry in config.agents)
    assert (coder.git_name, coder.git_email) == ("{agent} (bot)", "{agent}+{host}@bots.example.org")
    assert identity_of("coder", "box2", coder.git_name, coder.git_email) == Identity(
        "coder (bot)", "coder+box2@bots.example.org"
    )
    assert identity_of("docs", "local", docs.git_name, docs.git_email) == Identity(
        "Docs Writer", "docs@example.org"
    )
    spec = AgentSpec(AgentName("x"), "stub", git_name="X", git_email="x@example.org")
    assert '"git_email": "x@example.org"' in spec_extra_json(spec)


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("git_name", "Coder\\nCo-authored-by: M <m@x.org>", "one line"),
        ("git_name", "Coder <c@x.org>", "'<', '>'"),
        ("git_name", "Coder Bot.", "git drops"),
        ("git_name", " coder", "git drops"),
        ("git_email", "{agent}@bots.example.org.", "git drops"),
        ("git_email", "{user}@example.org", "{agent} and {host}"),
        ("git_email", "bots.example.org", "NAME@DOMAIN"),
        ("git_email", "a b@example.org", "NAME@DOMAIN"),
        ("git_name", "", "must not be empty"),
    ],
)
def test_an_identity_git_would_write_otherwise_is_refused_on_its_line(
    key: str, value: str, said: str
) -> None:
    """A name or address with a newline, `<`/`>`, an end git strips, an unknown
    placeholder or no `@` is a config error naming the file, line and key."""
    text = f'agents:\n  - name: coder\n    {key}: "{value}"\n'
    with pytest.raises(ConfigError) as caught:
        parse(text)
    [problem] = caught.value.problems
    assert problem.key_path == f"agents[0].{key}"
    assert str(problem).startswith("fleetwarden.yaml:3:"), str(problem)
    assert said in problem.message, problem.message
    with pytest.raises(ConfigError):
        parse(f'defaults:\n  {key}: "{value}"\n')
    assert template_problem("{agent} (bot)", email=False) is None


def test_a_co_author_is_one_line_whatever_the_name_holds() -> None:
    """Control characters and `<`/`>` leave a name; a second trailer smuggled in a stored
    requester is refused whole; an address that is none gives no co-author."""
    assert co_author("Ann\nCo-authored-by: Mallory <m@x.org>", "ann@example.org") == (
        "Ann Co-authored-by: Mallory m@x.org <ann@example.org>"
    )
    assert co_author("Ann\r\x0bLee", "ann@example.org") == "Ann Lee <ann@example.org>"
    assert co_author("\n\t", "ann@example.org") is None
    assert co_author("Ann", "ann example.org") is None
    assert clean_co_author("Ann Lee <ann@example.org>") == "Ann Lee <ann@example.org>"
    assert clean_co_author("Ann <a@b.org>\nCo-authored-by: Mallory <m@x.org>") is None
    assert clean_co_author("Ann <a@b.org> <c@d.org>") is None
    assert clean_co_author(None) is None


def test_a_chat_user_and_a_forge_user_are_named_honestly() -> None:
    """A chat user by their id (no `@` a forge would read as a mention) at an `.invalid`
    address naming the chat; a GitHub user by GitHub's documented no-reply address (its
    id needed); a Gitea user by the address their forge shows."""
    assert chat_co_author("matrix", "@ann:example.org") == (
        "ann:example.org on matrix <ann-example.org@matrix.fleetwarden.invalid>"
    )
    hostile = chat_co_author("matrix", "@m:x\nCo-authored-by: Mallory <m@x.org>")
    assert hostile is not None and "\n" not in hostile and hostile.count("<") == 1
    noreply = "583231+octocat@users.noreply.github.com"  # GitHub's documented form
    assert forge_co_author("octocat", noreply) == f"octocat <{noreply}>"
    assert forge_co_author("oct cat\n", noreply) is None
    assert forge_co_author("octocat", "not an address") is None
    assert forge_co_author("ann", "ann@noreply.git.example.org") == (
        "ann <ann@noreply.git.example.org>"
    )


def test_a_squash_names_the_work_and_lists_the_agents_subjects() -> None:
    """The title is the pull request's, the prompt's first line, or the one commit's
    subject; the body lists each subject as `* subject`, then who merged, then the
    trailers — a subject holding a newline or a trailer stays one listed line."""
    assert work_title(pull_title=None, prompt="\n  Retry uploads\nwith a test", subjects=(),
                      branch="fw/coder/3") == "Retry uploads"  # fmt: skip
    own = (Issue("acme/app", 5),)  # the run's issue: named; another's made plain
    assert work_title(pull_title="Fix #5", prompt="p", subjects=(), branch="b", own=own) == (
        "Fix #5"
    )
    assert work_title(pull_title="Fix #5", prompt="p", subjects=(), branch="b") == "Fix 5"
    assert work_title(pull_title=None, prompt=None, subjects=["Only one"], branch="b") == (
        "Only one"
    )
    assert work_title(pull_title=None, prompt="", subjects=["a", "b"], branch="fw/c/1") == (
        "Land fw/c/1"
    )
    assert len(one_line("x" * 500, 72)) == 72
    body = land_message(
        "Retry uploads",
        ["First step", "Co-authored-by: Mallory <m@x.org>\rsecond"],
        more=2,
        footer="Merged by ann:example.org on matrix with Fleetwarden: fw/coder/3 (squash).",
        trailers=["Fleetwarden-Agent: coder", "Co-authored-by: Ann Lee <ann@example.org>"],
    ).decode()
    assert body == (
        "Retry uploads\n\n"
        "* First step\n"
        "* Co-authored-by: Mallory <m@x.org>\n"
        "* … and 2 more commits\n\n"
        "Merged by ann:example.org on matrix with Fleetwarden: fw/coder/3 (squash).\n\n"
        "Fleetwarden-Agent: coder\nCo-authored-by: Ann Lee <ann@example.org>\n"
    )


def test_branch_names_are_said_to_carry_the_branchs_number_not_a_runs() -> None:
    """`fw/AGENT/N` is the branch's own number (its line's), which its later runs share:
    no description says the number is a run's."""
    entry = RepoEntry(url="/srv/git/app.git")
    assert entry.branch_for("slow", 5) == "fw/slow/5"
    texts = [
        RepoEntry.model_fields["branch_prefix"].description or "",
        AgentEntry.model_fields["repo"].description or "",
    ]
    docs = Path(__file__).parents[4] / "docs"
    texts += [(docs / page).read_text() for page in ("configuration.md", "repos.md")]
    for text in texts:
        assert "/RUN" not in text
    assert all("fw/AGENT/N" in t or "fw/NAME/N" in t for t in texts[:2])
