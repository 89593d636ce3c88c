"""An agent's allow and deny rules as Codex's execpolicy rules, and where they are written."""

from __future__ import annotations

from pathlib import Path

from fleet.model import AgentSpec
from fleet.names import AgentName
from fleet.runtimes import RuntimeContext
from fleet.runtimes.codex import CodexRuntime
from fleet.runtimes.codex_rules import execpolicy


def test_shell_rules_of_plain_words_become_prefix_rules() -> None:
    """``Bash(git *)`` allows the ``git`` prefix; deny rules, exact or not, forbid theirs
    with the rule as the justification."""
    rules = execpolicy(("Bash(git *)", "Bash(npm run test *)"), ("Bash(rm -rf /)", "Bash(curl *)"))
    assert rules == (
        'prefix_rule(pattern=["rm", "-rf", "/"], decision="forbidden", '
        'justification="the agent\'s rule Bash(rm -rf /) denies it")\n'
        'prefix_rule(pattern=["curl"], decision="forbidden", '
        'justification="the agent\'s rule Bash(curl *) denies it")\n'
        'prefix_rule(pattern=["git"], decision="allow")\n'
        'prefix_rule(pattern=["npm", "run", "test"], decision="allow")\n'
    )


def test_rules_a_prefix_cannot_say_stay_fleetwardens() -> None:
    """An exact allow rule (a prefix would let more through), a ``*`` inside a word, quotes,
    edits and malformed rules are not written."""
    allow = ("Bash(npm test)", "Bash(git*)", 'Bash(echo "x" *)', "Edit", "Bash(", "Bash(*)")
    assert execpolicy(allow, ("Edit(src/*)", "Write")) is None


def test_the_rules_file_is_written_in_codex_home(tmp_path: Path) -> None:
    """The runtime writes the rules into ``$CODEX_HOME/rules`` only when there are some."""
    ctx = RuntimeContext(home=tmp_path, workdir=tmp_path, environ={})
    spec = AgentSpec(AgentName("cx"), runtime="codex", prompt="hi", deny=("Bash(curl *)",))
    files = CodexRuntime().plan(spec, ctx).files
    assert "curl" in files[tmp_path / ".codex" / "rules" / "fleetwarden.rules"]
    bare = CodexRuntime().plan(AgentSpec(AgentName("cx"), runtime="codex", prompt="hi"), ctx)
    assert list(bare.files) == [tmp_path / ".codex" / "config.toml"]
