"""What the programs Fleetwarden starts over and over import: each start pays for every
module it loads, so a program stays clear of the libraries it does not use.

The git door's pre-receive hook runs at every push an agent makes; the runtimes plan every
launch; the command line runs for every shell verb and check. Each is imported here in a
fresh interpreter, and what it loaded is read back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.unit.test_structure import ROOT


def loaded_by(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after ``statement``."""
    program = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


@pytest.mark.parametrize(
    ("statement", "heavy"),
    [
        (  # a push: git's hook reads the push and the line's policy, nothing of the app
            "import fleet.repos.hook.receive",
            {"aiohttp", "pydantic", "detect_secrets", "requests", "bot", "connectors"},
        ),
        (  # a launch's plan: the MCP door and its SDK load only where the door is served
            "import fleet.runtimes as r; r.default_registry()",
            {"mcp", "mcp_types", "bot", "connectors", "jinja2", "asyncssh"},
        ),
        (  # the command line, parsed: each command loads its own module when it runs
            "import bot.cli.command as c, bot.cli.parser as p; p.command_line('')",
            {"aiohttp", "pydantic", "yaml", "connectors", "fleet", "apscheduler"},
        ),
        (  # `fleetwarden init`'s options: a preset written, no config read, nothing run
            "import bot.cli.parser as p; p.command_line('init')",
            {"aiohttp", "apscheduler", "connectors", "nio", "discord"},
        ),
    ],
)
def test_a_program_started_often_loads_none_of_what_it_does_not_use(
    statement: str, heavy: set[str]
) -> None:
    assert loaded_by(statement) & heavy == set()
