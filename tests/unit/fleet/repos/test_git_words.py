"""Git's refusals of an upstream, said in Fleetwarden's words (fleet.repos.upstream.git_words): each
case is git's own stderr, captured from real runs of git 2.39 against ``git http-backend``
behind a token check, a local path, a closed port, an unknown host, a self-signed TLS
server and OpenSSH — and the answer names the repository, its url, the variable its
credential is read from (never a value) and the fix, never git's tail or its hints."""

from __future__ import annotations

import re

from bot.text.agent_text import quotes_escaped
from fleet.repos.schema import RepoEntry
from fleet.repos.upstream.git_words import (
    BRANCHES_SHOWN,
    QUOTED,
    Kind,
    branch_not_ours,
    gist,
    kind_of,
    local_path_problem,
    no_branch,
    sentences,
    upstream_refused,
)
from fleet.repos.upstream.named import Credential, Upstream, credential_of

URL = "http://127.0.0.1:43539/app.git"
# A wrong token, no token, or a token sent for another url: git 2.39 says the same.
NO_USERNAME = (
    "error: unable to read askpass response from '/bin/false'\n"
    "fatal: could not read Username for 'http://127.0.0.1:43539': terminal prompts disabled\n"
)
NOT_FOUND = "fatal: repository 'http://127.0.0.1:43539/nope.git/' not found\n"
LOCAL_MISSING = (
    "fatal: '/tmp/gw/nothere.git' does not appear to be a git repository\n"
    "fatal: Could not read from remote repository.\n\n"
    "Please make sure you have the correct access rights\nand the repository exists.\n"
)
FETCH_FIRST = (
    "To http://127.0.0.1:43539/app.git\n"
    " ! [rejected]        d126f5229198f368ac788f617ab22964cdd68e4e -> fw/coder/1 (fetch first)\n"
    "error: failed to push some refs to 'http://127.0.0.1:43539/app.git'\n"
    "hint: Updates were rejected because the remote contains work that you do\n"
    "hint: not have locally. This is usually caused by another repository pushing\n"
    "hint: to the same ref. You may want to first integrate the remote changes\n"
    "hint: (e.g., 'git pull ...') before pushing again.\n"
    "hint: See the 'Note about fast-forwards' in 'git push --help' for details.\n"
)
NON_FAST_FORWARD = (
    "To http://127.0.0.1:41621/app.git\n"
    " ! [rejected]        3c494421624cf328c6ddee4f5df1d5f15c8eb16b -> main (non-fast-forward)\n"
    "error: failed to push some refs to 'http://127.0.0.1:41621/app.git'\n"
    "hint: Updates were rejected because a pushed branch tip is behind its remote\n"
    "hint: counterpart. Check out this branch and integrate the remote changes\n"
    "hint: (e.g. 'git pull ...') before pushing again.\n"
    "hint: See the 'Note about fast-forwards' in 'git push --help' for details.\n"
)
HOOK_DECLINED = (
    "remote: protected branch        \n"
    "To http://127.0.0.1:41621/app.git\n"
    " ! [remote rejected] 5f59368f95126aca82a81e15e7b064bf98b7c2e8 -> other "
    "(pre-receive hook declined)\n"
    "error: failed to push some refs to 'http://127.0.0.1:41621/app.git'\n"
)
REFUSED_PORT = (
    "fatal: unable to access 'http://127.0.0.1:43539/app.git/': Failed to connect to "
    "127.0.0.1 port 43539 after 0 ms: Couldn't connect to server\n"
)
NO_HOST = (
    "fatal: unable to access 'https://nonexistent.invalid/app.git/': Could not resolve host: "
    "nonexistent.invalid\n"
)
SELF_SIGNED = (
    "fatal: unable to access 'https://127.0.0.1:43327/app.git/': server certificate "
    "verification failed. CAfile: none CRLfile: none\n"
)
FORBIDDEN = (
    "fatal: unable to access 'http://127.0.0.1:35697/app.git/': The requested URL returned "
    "error: 403\n"
)
SERVER_ERROR = (
    "fatal: unable to access 'http://127.0.0.1:35697/app.git/': The requested URL returned "
    "error: 500\n"
)
SSH_PUBLICKEY = (
    "fwgw@127.0.0.2: Permission denied (publickey).\n"
    "fatal: Could not read from remote repository.\n\n"
    "Please make sure you have the correct access rights\nand the repository exists.\n"
)
SSH_HOST_KEY = (
    "No ED25519 host key is known for [127.0.0.2]:36083 and you have requested strict "
    "checking.\nHost key verification failed.\n"
    "fatal: Could not read from remote repository.\n\n"
    "Please make sure you have the correct access rights\nand the repository exists.\n"
)
SSH_REFUSED = (
    "ssh: connect to host 127.0.0.1 port 1: Connection refused\n"
    "fatal: Could not read from remote repository.\n\n"
    "Please make sure you have the correct access rights\nand the repository exists.\n"
)


def token_upstream(url: str = URL) -> Upstream:
    entry = RepoEntry(url=url, token_env="APP_TOKEN")
    return Upstream("app", url, credential_of("app", entry))


def test_a_refused_token_names_its_variable_and_the_fix() -> None:
    """git's "could not read Username … terminal prompts disabled" becomes: the upstream
    refused the credential, the variable it is read from, put a good token there."""
    said = upstream_refused(NO_USERNAME, token_upstream(), doing="fetch")
    assert said.kind is Kind.CREDENTIAL
    assert said.loc == ("repos", "app", "token_env")
    assert "the upstream of app (http://127.0.0.1:43539/app.git) refused" in said.text
    assert "APP_TOKEN (repos.app.token_env)" in said.text
    assert "restart Fleetwarden" in said.text
    assert "terminal prompts" not in said.text and "askpass" not in said.text


def test_a_forges_token_is_named_where_the_repository_borrows_it() -> None:
    """A repository fetching with its forge's token: the forge's variable and key."""
    credential = Credential(
        "token",
        "the token in FLEETWARDEN_GITHUB_TOKEN (forges.gh.token_env, which repository app "
        "fetches and pushes with)",
        ("forges", "gh", "token_env"),
        "FLEETWARDEN_GITHUB_TOKEN",
    )
    said = upstream_refused(NO_USERNAME, Upstream("app", URL, credential), doing="push")
    assert said.loc == ("forges", "gh", "token_env")
    assert "forges.gh.token_env" in said.text
    assert "in FLEETWARDEN_GITHUB_TOKEN, then restart" in said.text


def test_an_https_upstream_without_a_credential_says_to_give_one() -> None:
    """No token_env at all: the fix is to name a variable in token_env."""
    url = "https://git.example.com/acme/app.git"
    where = Upstream("app", url, credential_of("app", RepoEntry(url=url)))
    said = upstream_refused(NO_USERNAME, where, doing="read")
    assert "gives it none" in said.text and "set repos.app.token_env" in said.text


def test_a_repository_that_is_not_there_is_named_with_its_url() -> None:
    """A 404: which url, that nothing is there (or the token cannot see it), fix the url."""
    url = "http://127.0.0.1:43539/nope.git"
    said = upstream_refused(NOT_FOUND, token_upstream(url), doing="read")
    assert said.kind is Kind.NOT_FOUND and said.loc == ("repos", "app", "url")
    assert f"there is no repository at {url} (repos.app.url)" in said.text
    assert "APP_TOKEN" in said.text and "check the url" in said.text


def test_a_local_path_that_does_not_exist_is_said_so_not_the_tail_of_gits_sentence() -> None:
    """git ends "…and the repository exists."; Fleetwarden says the path does not exist,
    or is no repository, and what to set."""
    path = "/tmp/gw/nothere.git"
    where = Upstream("app", path, credential_of("app", RepoEntry(url=path)))
    said = upstream_refused(LOCAL_MISSING, where, doing="fetch", path_exists=False)
    assert said.kind is Kind.NOT_FOUND
    assert f"the url of repository app, {path}, does not exist on this machine" in said.text
    assert "repository exists" not in said.text
    there = upstream_refused(LOCAL_MISSING, where, doing="fetch", path_exists=True)
    assert f"the url of repository app, {path}, is not a git repository" in there.text
    assert local_path_problem("app", path, exists=False, is_repository=False) == said.text
    assert local_path_problem("app", path, exists=True, is_repository=True) is None
    assert local_path_problem("app", URL, exists=False, is_repository=False) is None


def test_a_branch_the_upstream_has_with_other_commits_is_never_overwritten() -> None:
    """A push of a line's branch refused as "fetch first": the upstream's branch is not
    ours, nothing was pushed, and how to go on — not git's hint about fast-forwards."""
    said = upstream_refused(
        FETCH_FIRST, token_upstream(), doing="push", ref="refs/heads/fw/coder/1", agent="coder"
    )
    assert said.kind is Kind.NON_FAST_FORWARD
    assert "already has a branch fw/coder/1" in said.text
    assert "not Fleetwarden's to overwrite" in said.text
    assert "`spawn coder --fresh`" in said.text and "`push coder`" in said.text
    assert "Note about fast-forwards" not in said.text


def test_a_base_that_moved_during_a_merge_says_merge_again() -> None:
    """A merge's push of the base refused as non-fast-forward: it moved, merge again."""
    said = upstream_refused(NON_FAST_FORWARD, token_upstream(), doing="push", ref="refs/heads/main")
    assert "main moved on the upstream of app" in said.text and "merge again" in said.text


def test_the_upstreams_own_rule_is_quoted() -> None:
    """A hook or a protection refusing: the upstream's own words, and where to change it."""
    said = upstream_refused(HOOK_DECLINED, token_upstream(), doing="push", ref="refs/heads/other")
    assert said.kind is Kind.REMOTE_REJECTED
    assert "refused the push to other" in said.text
    assert "(git says “pre-receive hook declined”; the upstream says “protected branch”)" in (
        said.text
    )


def test_a_push_to_a_checked_out_branch_says_the_fix_that_applies_there() -> None:
    """A non-bare upstream with the branch checked out (``init``'s repository before it took
    pushes, or one made by hand) is told how to let the push land, never to change a
    protection it does not have; one whose working tree has changes, to put them aside."""
    path = "/srv/demo/repo"
    where = Upstream("app", path, credential_of("app", RepoEntry(url=path)))
    checked_out = (
        "To /srv/demo/repo\n ! [remote rejected] main -> main (branch is currently checked out)\n"
        "error: failed to push some refs to '/srv/demo/repo'\n"
    )
    said = upstream_refused(checked_out, where, doing="push", ref="refs/heads/main")
    assert "git -C /srv/demo/repo config receive.denyCurrentBranch updateInstead" in said.text
    assert "protected branch" not in said.text and "pull request" not in said.text
    dirty = checked_out.replace(
        "branch is currently checked out", "Working directory has staged changes"
    )
    said = upstream_refused(dirty, where, doing="push", ref="refs/heads/main")
    assert "staged changes in its working tree" in said.text
    assert "git -C /srv/demo/repo status" in said.text


_LIVE_LINK = re.compile(r"(?<!\\)\]\(")


def test_the_upstreams_words_are_quoted_so_chat_escapes_them_whole() -> None:
    """A hostile upstream's ``remote:`` lines (a ping, a link, a code fence, curly quotes
    that would end the quote early) and its branch names reach chat only inside one quote,
    which chat's markdown escapes: nothing in them links, shouts or breaks out."""
    hostile = (
        "remote: @room see [the fix](https://evil.example/) ”) **now** ```\n"
        " ! [remote rejected] 5f59368f -> other (pre-receive hook declined)\n"
    )
    said = upstream_refused(hostile, token_upstream(), doing="push", ref="refs/heads/other")
    shown = quotes_escaped(said.text)
    # No link, bold or fence stays live (pings are the connectors' to refuse: no mentions).
    assert _LIVE_LINK.search(shown) is None and "\\[the fix\\]" in shown
    assert "**now**" not in shown and "```" not in shown
    assert shown.endswith("or land the change through a pull request")
    names = no_branch(token_upstream(), "trunk", ["[x](https://evil.example/)", "@room"],
                      key="default_branch")  # fmt: skip
    listed = quotes_escaped(names.text)
    assert _LIVE_LINK.search(listed) is None


def test_an_upstream_not_reached_says_why_and_what_to_check() -> None:
    """Nothing listening, or no such host: git's reason, the url, the key to check."""
    said = upstream_refused(REFUSED_PORT, token_upstream(), doing="fetch")
    assert said.kind is Kind.UNREACHABLE and said.loc == ("repos", "app", "url")
    assert "cannot reach the upstream of app at" in said.text
    assert "Failed to connect to 127.0.0.1 port 43539" in said.text
    named = upstream_refused(NO_HOST, token_upstream("https://nonexistent.invalid/app.git"),
                             doing="read")  # fmt: skip
    assert "Could not resolve host: nonexistent.invalid" in named.text
    ssh = upstream_refused(SSH_REFUSED, token_upstream(), doing="read")
    assert ssh.kind is Kind.UNREACHABLE and "port 1: Connection refused" in ssh.text


def test_a_certificate_not_trusted_forbidden_and_server_errors() -> None:
    """TLS, 403 on a push (read but not write), and a 5xx each get their own fix."""
    tls = upstream_refused(SELF_SIGNED, token_upstream(), doing="read")
    assert tls.kind is Kind.TLS and "does not trust" in tls.text
    pushed = upstream_refused(FORBIDDEN, token_upstream(), doing="push", ref="refs/heads/x")
    assert pushed.kind is Kind.FORBIDDEN and "read it but not push to it" in pushed.text
    read = upstream_refused(FORBIDDEN, token_upstream(), doing="read")
    assert "APP_TOKEN" in read.text and "refused Fleetwarden's credential" in read.text
    server = upstream_refused(SERVER_ERROR, token_upstream(), doing="fetch")
    assert server.kind is Kind.SERVER and "answered 500" in server.text


def test_ssh_refusals_name_the_key_and_the_host_key() -> None:
    """OpenSSH's publickey refusal names the configured key; an unknown host key says how
    to add it."""
    url = "ssh://fwgw@127.0.0.2:36083/srv/app.git"
    entry = RepoEntry(url=url, ssh_key="/etc/fleetwarden/deploy")
    where = Upstream("app", url, credential_of("app", entry))
    said = upstream_refused(SSH_PUBLICKEY, where, doing="read")
    assert said.kind is Kind.CREDENTIAL
    assert "the ssh key /etc/fleetwarden/deploy (repos.app.ssh_key)" in said.text
    host = upstream_refused(SSH_HOST_KEY, where, doing="read")
    assert host.kind is Kind.HOST_KEY and "ssh-keyscan 127.0.0.2" in host.text


def test_a_missing_branch_lists_a_bounded_number_of_those_there() -> None:
    """The branches the upstream has, at most BRANCHES_SHOWN and how many more."""
    have = [f"b{n:02}" for n in range(15)]
    said = no_branch(token_upstream(), "trunk", have, key="default_branch")
    assert "has no branch trunk: it has “b00, b01" in said.text
    assert f"b{BRANCHES_SHOWN - 1:02}" in said.text and f"b{BRANCHES_SHOWN:02}" not in said.text
    assert "and 5 more" in said.text and "set repos.app.default_branch" in said.text
    empty = no_branch(token_upstream(), "main", [], key="--base")
    assert "no branch at all yet" in empty.text and "(--base)" in empty.text


def test_a_branch_fleetwarden_did_not_push_is_not_taken_over() -> None:
    """The first push onto a branch the upstream already has: refused, with the way on."""
    text = branch_not_ours(token_upstream(), "fw/coder/1", "coder")
    assert "already has a branch fw/coder/1 that Fleetwarden did not push" in text
    assert "`spawn coder --fresh`" in text


def test_git_words_read_the_first_fatal_line_never_the_tail_or_hints() -> None:
    """An unknown refusal quotes git's own first error, without hints or boilerplate."""
    assert kind_of("fatal: something new went wrong\nhint: try this\n") is Kind.OTHER
    assert gist(LOCAL_MISSING) == "'/tmp/gw/nothere.git' does not appear to be a git repository"
    said = upstream_refused("fatal: something new\nhint: x\n", token_upstream(), doing="fetch")
    assert said.text.endswith("could not be fetched: git says “something new”")
    long = upstream_refused(f"fatal: {'x' * 500}\n", token_upstream(), doing="fetch").text
    quoted = long.partition("git says ")[2]
    assert quoted.startswith("“x") and "…" in quoted and len(quoted) == QUOTED + 2


def test_a_message_after_a_full_stop_begins_its_sentence() -> None:
    """``…start). the upstream of lib …`` becomes ``…start). The upstream of lib …``; a
    note that already reads right, or has no full stop, is left as it is, and so are the
    words after the first sentence (git's own)."""
    refused = upstream_refused(
        "fatal: unable to access 'http://127.0.0.1:9/lib.git/': Failed to connect to "
        "127.0.0.1 port 9 after 0 ms: Couldn't connect to server. then more\n",
        Upstream("lib", "http://127.0.0.1:9/lib.git", Credential("none", "", ("repos", "lib"))),
        doing="fetch",
    )
    note = f"lib's behind counts are as of its last fetch (by a spawn). {refused.text}"
    joined = sentences(note)
    assert joined.startswith("lib's behind counts are as of its last fetch (by a spawn). Cannot")
    assert (
        joined.removeprefix("lib's behind counts").lower()
        == note.removeprefix("lib's behind counts").lower()
    )
    assert ". then more" in joined
    assert sentences("app's counts stand. It said so") == "app's counts stand. It said so"
    assert sentences("no full stop here") == "no full stop here"
