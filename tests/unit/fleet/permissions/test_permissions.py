"""Tests for permission rules against shell command lines: an allow rule matches only when
every command of the line matches it, a deny rule refuses when any does, and what the parser
cannot settle never matches an allow rule."""

from __future__ import annotations

import pytest

from fleet.permissions.rules import first_match, first_refusal, parse_rule
from fleet.shell.commands import simple_commands
from fleet.shell.mentions import mentioned_commands

GIT = ("Bash(git *)",)

# Lines that must not pass ``Bash(git *)``, each with the spelling it tries.
SMUGGLED = [
    ("git --version; echo pwned > PWNED", "`;` and a redirection"),
    ("git status; echo pwned", "`;`"),
    ("git status && rm -rf x", "`&&`"),
    ("git status || rm -rf x", "`||`"),
    ("git log | sh", "`|`"),
    ("git log |& sh", "`|&`"),
    ("git status\nrm -rf x", "a newline"),
    ("git status & rm -rf x", "`&` in the background"),
    ("git status $(rm -rf x)", "`$(…)`"),
    ("git status `rm -rf x`", "backticks"),
    ('git status "$(rm -rf x)"', "`$(…)` in double quotes"),
    ("git diff <(rm -rf x)", "process substitution"),
    ("git log $HOME", "a parameter expansion"),
    ("git log ${HOME}", "a braced expansion"),
    ("git log $((1+2))", "arithmetic"),
    ("git log $'\\x41'", "an ANSI-C string"),
    ("git log ~", "a tilde"),
    ("git log {a,b}", "brace expansion"),
    ("git log > out.txt", "a redirection to a file"),
    ("git log >> out.txt", "an appending redirection"),
    ("git log < in.txt", "an input redirection"),
    ("git apply <<EOF\nx\nEOF", "a heredoc"),
    ("git apply <<< x", "a herestring"),
    ("FOO=1 git status", "an assignment prefix"),
    ("GIT_SSH_COMMAND='sh x' git fetch", "GIT_SSH_COMMAND"),
    ("FOO=1", "a bare assignment"),
    ("env A=1 git status", "env with an assignment"),
    ("env -i git status", "env with an option"),
    ("sh -c 'git status; rm -rf x'", "sh -c"),
    ("bash -c 'git status'", "bash -c"),
    ("xargs git status < list", "xargs"),
    ("sudo git status", "sudo"),
    ("timeout 5 git status", "timeout"),
    ("nohup git status", "nohup"),
    ("eval git status", "eval"),
    ("exec git status", "exec"),
    ("command git status", "command"),
    ("(git status)", "a subshell"),
    ("{ git status; }", "a group"),
    ("if true; then git status; fi", "if"),
    ("for x in a; do git status; done", "for"),
    ("f() { rm -rf x; }; git status", "a function"),
    ("! git status", "negation"),
    ("git st\\\natus; rm x", "a line continuation inside a word"),
    ("git status ;;", "a stray `;;`"),
    ("git status 'unterminated", "a parse error"),
    ("git status &&", "a missing command"),
    ("git status\x1b[2K", "a control character"),
]


@pytest.mark.parametrize(("line", "why"), SMUGGLED, ids=[why for _, why in SMUGGLED])
def test_an_allow_rule_matches_no_part_of_a_compound_or_unsettled_line(line: str, why: str) -> None:
    """``Bash(git *)`` does not allow a line whose every part is not a plain ``git``."""
    assert first_match(GIT, "Bash", line) is None, why


@pytest.mark.parametrize(
    "line",
    [
        "git status",
        "git  status",
        '"git" status',
        "git status && git diff",
        "git log | git stash list",
        "git log; git status\ngit diff &",
        "env git status",
        "git log 2>/dev/null",
        "git log 2>&1 >&2",
        "git \\\n  status",
        "git commit -m 'fix; rm -rf x'",
    ],
)
def test_an_allow_rule_matches_every_part_written_plainly(line: str) -> None:
    """Settled simple commands that are all ``git …`` pass, however spaced or quoted; a
    quoted ``;`` is a word, not a separator."""
    assert first_match(GIT, "bash", line) == "Bash(git *)"


def test_a_learned_exact_rule_with_a_glob_matches_its_own_command_only() -> None:
    """``Bash(chmod 644 *.txt)`` passes ``chmod 644 a.txt``, not a line that hides more."""
    rule = ("Bash(chmod 644 *.txt)",)
    assert first_match(rule, "Bash", "chmod 644 a.txt") is not None
    assert first_match(rule, "Bash", "chmod 644 *.txt") is not None
    assert first_match(rule, "Bash", "chmod 644 a.txt; echo pwned > PWNED; ls b.txt") is None
    assert first_match(rule, "Bash", "chmod 644 a.txt && chmod 777 /etc/b.txt") is None


def test_quoting_cannot_join_or_split_words_to_fool_a_pattern() -> None:
    """Quotes change what the shell runs, so they count: ``'git status'`` is one word (a
    program of that name), and an exact rule does not match it."""
    assert first_match(("Bash(git status)",), "Bash", "'git status'") is None
    assert first_match(("Bash(git status)",), "Bash", "git 'status'") is not None
    assert first_match(("Bash(npm test)",), "Bash", "npm test; rm -rf x") is None


def test_a_wrapper_matches_only_a_rule_that_names_it() -> None:
    """``Bash(*)`` does not reach through ``sh -c``; a rule written for the wrapper does."""
    assert first_match(("Bash(*)",), "Bash", "sh -c 'rm -rf x'") is None
    assert first_match(("Bash(*)",), "Bash", "ls && make") is not None
    assert first_match(("Bash(timeout *)",), "Bash", "timeout 5 make") is not None
    assert first_match(("Bash",), "Bash", "anything $(at all)") == "Bash"


def test_the_exact_line_of_a_rule_without_a_star_matches() -> None:
    """A rule spelling out a whole compound line (an ``always`` on what was shown) matches
    that very line, and nothing longer."""
    rule = ("Bash(cd src && make)",)
    assert first_match(rule, "Bash", "cd src && make") is not None
    assert first_match(rule, "Bash", "cd src && make; rm -rf x") is None


@pytest.mark.parametrize(
    "line",
    [
        "ls; rm -rf x",
        "ls && sudo rm -rf /",
        "echo $(rm -rf x)",
        "echo `rm -rf x`",
        "FOO=1 rm -rf x",
        "env A=1 rm -rf x",
        "sh -c 'ls; rm -rf x'",
        'bash -lc "rm -rf x"',
        "find . | xargs rm -rf",
        "r\\m -rf x",
        "ls\nrm -rf x",
        "rm -rf x &",
        "(rm -rf x)",
        "ls 'unterminated; rm -rf x",
    ],
)
def test_a_deny_rule_refuses_when_any_part_matches(line: str) -> None:
    """``Bash(rm *)`` as a deny rule refuses a line with an ``rm`` anywhere it may run."""
    assert first_refusal(("Bash(rm *)",), "Bash", line) == "Bash(rm *)"
    assert first_refusal(("Bash(rm *)",), "Bash", "ls -la") is None


def test_other_tools_keep_their_glob() -> None:
    """Rules of file tools glob the whole subject, ``*`` crossing ``/``, as before."""
    assert first_match(("Write(src/**)",), "write", "src/a/b.py") is not None
    assert first_match(("Write(src/**)",), "write", "lib/a.py") is None
    assert first_refusal(("Edit(secrets/*)",), "Edit", "secrets/k") is not None
    assert parse_rule("Edit").matches("fileChange", "x; y")


def test_simple_commands_are_read_as_the_shell_reads_them() -> None:
    """Words come out unquoted and canonically spelled; ``env`` is looked through."""
    commands = simple_commands("env \"git\"  log -n 1 'a b' | grep x 2>/dev/null")
    assert commands is not None
    assert [c.argv for c in commands] == [("git", "log", "-n", "1", "a b"), ("grep", "x")]
    assert [c.canonical for c in commands] == ["git log -n 1 'a b'", "grep x"]
    assert simple_commands("git log $(x)") is None


def test_mentioned_commands_look_inside_wrappers_and_substitutions() -> None:
    """The lenient reading finds commands in ``$(…)``, after ``sudo`` and in ``sh -c``."""
    found = mentioned_commands("ls $(curl x) && sudo -u a rm y; sh -c 'wget z'")
    assert {"curl x", "rm y", "wget z"} <= set(found)


def test_words_after_a_redirection_are_arguments() -> None:
    """The parser hangs every word after a redirection on it (``a 2>/dev/null x y`` is one
    redirection with three targets); the shell passes ``x y`` to ``a``. The strict reading
    leaves such a line unsettled, the lenient one reads the words back in place."""
    line = "npm test 2>/dev/null --script-shell=./payload.sh"
    assert simple_commands(line) is None
    assert first_match(("Bash(npm test)",), "Bash", line) is None
    assert first_match(("Bash(git status)",), "Bash", "git status >/dev/null -c x") is None
    assert simple_commands("git log 2>&1 x") is None
    for line in ("rm 2>/dev/null -rf /home/op", "rm >&2 -rf /home/op", "a | rm 2>&1 -rf /x"):
        assert first_refusal(("Bash(rm -rf *)",), "Bash", line) == "Bash(rm -rf *)", line
    assert "rm -rf x y" in mentioned_commands("rm -rf 2>/dev/null x y")
    assert "rm $(true) -rf x" in mentioned_commands("rm $(true) 2>/dev/null -rf x")
    assert "rm -rf x" in mentioned_commands("rm <<E -rf x\nE")


@pytest.mark.parametrize(
    "word", ["{--pre=sh,{x}}", "{{a},b}", "{a{,}", "x{}{a,b}", "{a..c}", "{a.'.'c}", "{,}"]
)
def test_a_word_with_any_brace_expansion_is_unsettled(word: str) -> None:
    """An unquoted ``{`` followed anywhere by an unquoted ``,`` or a ``..`` may expand
    (``{--pre=sh,{x}}`` becomes ``--pre=sh {x}``), nested or not."""
    assert simple_commands(f"rg -F {word} x") is None


def test_a_literal_brace_word_is_settled() -> None:
    """Braces the shell leaves alone stay one word."""
    commands = simple_commands("find . -name x -exec {} '{a,b}' \\{a,b} {a}")
    assert commands is not None
    assert commands[0].argv[-4:] == ("{}", "{a,b}", "{a,b}", "{a}")


@pytest.mark.parametrize(
    "line",
    [
        "\\ git status",
        "\\\tgit status",
        "git status; \\ git diff",
        "git status \\ >/dev/null",
        "git status > \\ /dev/null",
        "git status 2>\\ /dev/null",
        "git status >&\\ 1",
    ],
)
def test_an_escaped_blank_the_parser_skips_is_unsettled(line: str) -> None:
    """The parser skips a ``\\ `` outside a word as a blank; the shell reads a word made of
    it (a program named `` git``, a file named `` /dev/null``)."""
    assert simple_commands(line) is None
    assert first_match(GIT, "Bash", line) is None


@pytest.mark.parametrize(
    "line", ["git log >&0x1", "git log >&2#x", "git log 2>&1x", "git log <&0x0"]
)
def test_a_duplicated_descriptor_is_digits_only(line: str) -> None:
    """``>&0x1`` is lexed as a number but the shell writes a file named ``0x1``."""
    assert simple_commands(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "coproc rm -rf x",
        "coproc N { rm -rf x; }",
        "coproc { rm -rf x; }",
        "coproc N (rm -rf x)",
        "unshare -r rm -rf x",
        "nsenter -t 1 rm -rf x",
        "setpriv --reuid=1 rm -rf x",
        "systemd-run --user rm -rf x",
        "firejail rm -rf x",
        "bwrap --bind / / rm -rf x",
        "fakeroot rm -rf x",
        "valgrind rm -rf x",
        "ssh host rm -rf x",
    ],
)
def test_coproc_and_launchers_are_wrappers(line: str) -> None:
    """``coproc`` and commands that launch their arguments hide a command: not allowed by
    ``Bash(*)``, and refused by a deny rule on the command they run."""
    assert first_match(("Bash(*)",), "Bash", line) is None
    assert first_refusal(("Bash(rm -rf *)",), "Bash", line) == "Bash(rm -rf *)"


@pytest.mark.parametrize("line", ["coproc git status", "coproc N { git status; }", "} ; git x"])
def test_a_reserved_word_for_a_command_name_is_unsettled(line: str) -> None:
    """A reserved word where a command name goes is shell syntax, not a program."""
    assert simple_commands(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "find . -exec rm -rf x \\;",
        "find . -name '*.o' -execdir rm -rf {} +",
        "find . -ok rm -rf x \\;",
        "fd -x rm -rf tmp",
    ],
)
def test_a_deny_rule_sees_the_command_find_or_fd_would_run(line: str) -> None:
    """`find -exec rm -rf …` is refused by a deny rule on `rm -rf *`."""
    assert first_refusal(["Bash(rm -rf *)"], "Bash", line) == "Bash(rm -rf *)"
