"""What the config says of MCP servers and of the agents' grants to them: the `mcp:`
section (fleet.mcp.config.schema: HTTP or stdio, one of them; no credential written in the file),
an agent's or `defaults`' `mcp:` (either form) reaching its AgentSpec as McpGrants, and
the checks across entries (bot.config.mcp.checks, bot.config.checks.doors): a server no
section defines, a tool off the allow-list, a credential's variable an agent would hold,
a runtime that cannot reach MCP servers — each at its line with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.app.assembly import fleet_settings, mcp_rules, redactor
from bot.cli.command import main
from bot.config import Config, ConfigError, ConfigProblem, Offered, parse_config
from bot.config.mcp.checks import summary_lines
from bot.config.schema import ConfigFile
from fleet.destinations import is_loopback
from fleet.mcp.model import HttpServer, McpGrant, McpServer, StdioServer
from fleet.names import AgentName
from fleet.schema import SchemaContext

FILE = "fleetwarden.yaml"
URL = "https://x.example.com/mcp"
TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
SERVERS = """\
mcp:
  tracker:
    url: https://mcp.tracker.example.com/mcp
    headers_env: {Authorization: TRACKER_AUTH}
    headers: {X-Team: web}
    tools: [search_issues, get_issue, create_issue]
    price_per_call: 0.002
  everything:
    command: npx
    args: [-y, "@modelcontextprotocol/server-everything"]
    env: {LOG_LEVEL: warn}
    env_env: {API_TOKEN: EVERYTHING_TOKEN}
    timeout: 30
"""


def parse(text: str, **kwargs: Any) -> Config:
    kwargs.setdefault("base_dir", Path("/srv/fw"))
    return parse_config(text, FILE, **kwargs)


def problems_of(text: str, **kwargs: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse(text, **kwargs)
    return list(caught.value.problems)


def only_problem(text: str, **kwargs: Any) -> ConfigProblem:
    [problem] = problems_of(text, **kwargs)
    return problem


def test_a_full_example_becomes_the_servers_and_grants_and_round_trips(tmp_path: Path) -> None:
    """Both kinds of server, a grant in each form, `defaults.mcp` and `mcp: []`: the
    runtime servers and each spec's grants are as written, and the validated file dumped
    and read again is the same file."""
    skill = tmp_path / "skills" / "release-notes"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: release-notes\ndescription: Writes release notes from merged PRs.\n---\n"
    )
    text = SERVERS + (
        "defaults:\n  mcp: [tracker]\n  skills: [skills/release-notes]\n"
        "agents:\n"
        "  - name: coder\n"
        "    mcp:\n"
        "      tracker: {tools: [search_issues, get_issue]}\n"
        "      everything: {}\n"
        "  - name: helper\n"
        "  - name: loner\n"
        "    mcp: []\n"
        "    skills: []\n"
    )
    config = parse(text, base_dir=tmp_path)
    assert config.mcp == {
        "tracker": McpServer(
            "tracker",
            HttpServer(
                "https://mcp.tracker.example.com/mcp",
                {"Authorization": "TRACKER_AUTH"},
                {"X-Team": "web"},
            ),
            frozenset({"search_issues", "get_issue", "create_issue"}),
            0.002,
            60.0,
        ),
        "everything": McpServer(
            "everything",
            StdioServer(
                "npx",
                ("-y", "@modelcontextprotocol/server-everything"),
                {"LOG_LEVEL": "warn"},
                {"API_TOKEN": "EVERYTHING_TOKEN"},
            ),
            None,
            None,
            30.0,
        ),
    }
    coder, helper, loner = (agent.to_spec(config.defaults) for agent in config.agents)
    assert coder.mcp == (
        McpGrant("tracker", frozenset({"search_issues", "get_issue"})),
        McpGrant("everything"),
    )
    assert coder.skills == helper.skills == (skill,)
    assert helper.mcp == (McpGrant("tracker"),)
    assert (loner.mcp, loner.skills) == ((), ())
    assert coder.mcp[0].allows(config.mcp["tracker"], "get_issue")
    assert not coder.mcp[0].allows(config.mcp["tracker"], "create_issue")
    assert helper.mcp[0].allows(config.mcp["tracker"], "create_issue")
    assert not helper.mcp[0].allows(config.mcp["tracker"], "delete_everything")
    dumped = config.document.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    context = SchemaContext(base_dir=tmp_path)
    assert ConfigFile.model_validate(dumped, context=context) == config.document


def test_the_credentials_variables_are_redacted_and_said_in_check_config() -> None:
    """Every variable a server's credential comes from is among the secret names the log
    redactor hides, and the redactor hides their values; `check-config` names the
    variables, never a value."""
    config = parse(SERVERS + "agents:\n  - name: coder\n    mcp: [tracker]\n")
    assert {"TRACKER_AUTH", "EVERYTHING_TOKEN"} <= config.secret_env_names()
    held = {"TRACKER_AUTH": "Bearer zq9Xw2plainish", "EVERYTHING_TOKEN": "hunter2-but-longer"}
    assert redactor(config, held).redact("sent Bearer zq9Xw2plainish, hunter2-but-longer") == (
        "sent [redacted: TRACKER_AUTH], [redacted: EVERYTHING_TOKEN]"
    )
    assert summary_lines(config.document) == [
        "tracker: HTTP https://mcp.tracker.example.com/mcp; credential from $TRACKER_AUTH; "
        "tools: search_issues, get_issue, create_issue; $0.002 a call; agents: coder",
        "everything: stdio npx; credential from $EVERYTHING_TOKEN; every tool; agents: none",
    ]


def test_a_credentials_variable_in_an_agents_secret_env_or_env_is_refused() -> None:
    """As a forge's token: an agent listing a server's header variable in secret_env, or
    setting its stdio credential's variable in env, is refused on that line, naming the
    server and the MCP door."""
    servers = SERVERS.replace("EVERYTHING_TOKEN", "EVERYTHING_AUTH")
    problems = problems_of(
        servers + "agents:\n  - name: coder\n    secret_env: [NPM_TOKEN, TRACKER_AUTH]\n"
        "    env: {EVERYTHING_AUTH: x}\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (16, "agents[0].secret_env[1]"),
        (17, "agents[0].env.EVERYTHING_AUTH"),
    ]
    held, shadowed = (p.message for p in problems)
    assert "agent 'coder' would get TRACKER_AUTH, which holds MCP server tracker's " in held
    assert "(mcp.tracker.headers_env.Authorization)" in held and "MCP door" in held
    assert "MCP server everything's API_TOKEN (mcp.everything.env_env.API_TOKEN)" in shadowed


def test_a_server_no_section_defines_is_refused_with_the_likeliest_name() -> None:
    """A typo in an agent's block list is refused on the item's own line with the server
    meant; in `defaults` too; with no `mcp:` section at all, the fix is to add one."""
    problems = problems_of(
        SERVERS + "defaults:\n  mcp: [trackr]\n"
        "agents:\n  - name: coder\n    mcp:\n      - tracker\n      - everythin\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (15, "defaults.mcp[0]"),
        (20, "agents[0].mcp[1]"),
    ]
    assert "MCP server 'trackr' is not defined — did you mean 'tracker'?" in problems[0].message
    assert "did you mean 'everything'?" in problems[1].message
    lone = only_problem("agents:\n  - name: coder\n    mcp: {docs: {}}\n")
    assert (lone.line, lone.key_path) == (3, "agents[0].mcp.docs")
    assert "the config has no `mcp:` section; add the server there" in lone.message


def test_a_grants_tool_off_the_servers_allow_list_is_refused() -> None:
    """A grant narrowing to a tool its server does not allow: refused on the tool's line,
    naming the allow-list; a grant on a server without one may name any tool."""
    problem = only_problem(
        SERVERS + "agents:\n  - name: coder\n    mcp:\n      tracker: {tools: [get_isue]}\n"
        "      everything: {tools: [echo]}\n"
    )
    assert (problem.line, problem.key_path) == (17, "agents[0].mcp.tracker.tools[0]")
    assert "tool 'get_isue' is not on MCP server tracker's allow-list — did you mean " in (
        problem.message
    )
    assert "add it there, or remove it here" in problem.message


@pytest.mark.parametrize(
    ("agent", "key_path", "said"),
    [
        ("    runtime: pi\n    mcp: [tracker]\n", "agents[0].mcp", "agent 'coder' runs pi"),
        ("    runtime: pi\n", "agents[0]", "set `mcp: []` on it"),
        (
            "    runtime: claude\n    mcp: [tracker]\n    fallback: {runtime: pi}\n",
            "agents[0].fallback.runtime",
            "coder's fallback runs pi",
        ),
    ],
)
def test_an_agent_of_runtime_pi_is_refused_mcp_servers(
    agent: str, key_path: str, said: str
) -> None:
    """pi has no MCP and no adapter is pinned: granted servers (its own or the defaults'),
    or a fallback to pi, are refused naming the runtimes that can reach them."""
    text = SERVERS + "defaults:\n  mcp: [everything]\nagents:\n  - name: coder\n" + agent
    problem = only_problem(text, offered=Offered(("stub", "pi", "claude")))
    assert problem.key_path == key_path
    assert said in problem.message and "claude, codex, opencode or command" in problem.message
    assert "no MCP extension of it is pinned" in problem.message


def test_pi_by_default_with_default_grants_is_said_once_at_defaults() -> None:
    """`defaults.runtime: pi` with `defaults.mcp`: one problem, at `defaults.mcp`; an agent
    of pi opting out with `mcp: []` passes."""
    text = SERVERS + (
        "defaults:\n  runtime: pi\n  mcp: [tracker]\n"
        "agents:\n  - name: coder\n  - name: quiet\n    mcp: []\n"
    )
    problem = only_problem(text, offered=Offered(("stub", "pi")))
    assert (problem.line, problem.key_path) == (16, "defaults.mcp")
    assert "defaults.runtime is pi" in problem.message


@pytest.mark.parametrize(
    ("entry", "key_path", "said"),
    [
        ("{}", "mcp.x", "give url (a server reached over HTTP) or command"),
        ("{url: 'https://a.example/mcp', command: srv}", "mcp.x", "one of them"),
        ("{command: srv, headers_env: {A: B_VAR}}", "mcp.x.headers_env", "headers_env is for a"),
        ("{url: 'https://a.example/mcp', env: {A: b}}", "mcp.x.env", "env is for a server"),
        ("{url: 'ftp://a.example/mcp'}", "mcp.x.url", "streamable HTTP endpoint"),
        ("{url: 'https://u:p@a.example/mcp'}", "mcp.x.url", "url takes no credential"),
        ("{url: 'https://a.example/mcp?api_key=zz'}", "mcp.x.url", "looks like it holds"),
        ("{url: 'http://a.example/mcp', headers_env: {Authorization: V}}", "mcp.x", "https://"),
        ("{url: 'https://a.example/mcp', tools: []}", "mcp.x.tools", "lets no tool through"),
        ("{url: 'https://a.example/mcp', tools: [a, a]}", "mcp.x.tools", "a listed twice"),
        ("{url: 'https://a.example/mcp', tools: ['a b']}", "mcp.x.tools[0]", "invalid tool"),
        ("{url: 'https://a.example/mcp', timeout: 0}", "mcp.x.timeout", "greater than 0"),
        ("{url: 'https://a.example/mcp', price_per_call: -1}", "mcp.x.price_per_call", "0 or"),
        ("{command: srv, env_env: {TOKEN: ghp_pasted}}", "mcp.x.env_env.TOKEN", "the NAME of"),
        ("{command: srv, env: {MODE: a}, env_env: {MODE: V}}", "mcp.x.env.MODE", "variable MODE"),
        (
            "{url: 'https://a.example/mcp', headers: {x-team: a}, headers_env: {X-Team: V}}",
            "mcp.x.headers.x-team",
            "header x-team is given plain and from a variable",
        ),
        (
            "{url: 'https://a.example/mcp', headers: {Mcp-Session-Id: a}}",
            "mcp.x.headers.Mcp-Session-Id",
            "set by the MCP door",
        ),
    ],
)
def test_a_wrong_server_entry_is_refused_on_its_line(entry: str, key_path: str, said: str) -> None:
    """Each mistake in one server's entry: refused at its key, saying the fix."""
    problem = only_problem(f"mcp:\n  x: {entry}\n")
    assert (problem.line, problem.key_path) == (2, key_path)
    assert said in problem.message


@pytest.mark.parametrize(
    "entry",
    [
        "{url: 'https://a.example/mcp', headers: {Authorization: 'Bearer sk-abcdef0123456789'}}",
        "{url: 'https://a.example/mcp', headers: {X-Api-Key: 'abcdef0123456789'}}",
        f"{{url: 'https://a.example/mcp', headers: {{X-Whatever: '{TOKEN}'}}}}",
        "{command: srv, env: {GITHUB_TOKEN: abcdef0123456789}}",
        f"{{command: srv, env: {{HARMLESS: '{TOKEN}'}}}}",
        f"{{command: srv, args: [--repo, acme, '{TOKEN}']}}",
        "{command: srv, args: ['--token=abcdef0123456789']}",
        "{command: srv, args: [--api-key, abcdef0123456789]}",
    ],
)
def test_a_credential_written_in_the_file_is_refused_and_never_shown(entry: str) -> None:
    """A header, a plain variable or an argument that looks like a credential (by its name
    or its shape): refused pointing at headers_env or env_env, the value never echoed."""
    problem = only_problem(f"mcp:\n  x: {entry}\n")
    assert "headers_env" in problem.message or "env_env" in problem.message
    for secret in ("abcdef0123456789", TOKEN, "sk-abcdef"):
        assert secret not in str(problem)


def test_plain_headers_args_and_a_loopback_http_server_pass(tmp_path: Path) -> None:
    """What is no credential passes: a team header, a stdio server's options (naming where
    a secret is, too), an http:// server on loopback sending a header credential."""
    program = tmp_path / "bin" / "fs-server"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    config = parse(
        "mcp:\n"
        "  local:\n"
        "    url: http://127.0.0.1:8931/mcp\n"
        "    headers_env: {Authorization: LOCAL_AUTH}\n"
        "    headers: {X-Team: web, Accept-Language: en}\n"
        "  fs:\n"
        "    command: ./bin/fs-server\n"
        "    args: [--root, /srv/docs, --read-only, --port=0, --key-file, /etc/k.pem,"
        " --token-env, DOCS_TOKEN, --password-stdin]\n",
        base_dir=tmp_path,
    )
    assert isinstance(config.mcp["local"].transport, HttpServer)
    assert config.mcp["fs"].transport == StdioServer(
        str(program),
        (
            *("--root", "/srv/docs", "--read-only", "--port=0", "--key-file", "/etc/k.pem"),
            *("--token-env", "DOCS_TOKEN", "--password-stdin"),
        ),
    )
    assert config.mcp["local"].credential_envs == {"LOCAL_AUTH"}


@pytest.mark.parametrize(
    ("name", "said"),
    [("git_hub", "no '_'"), ("GitHub", "a lowercase letter"), ("x" * 33, "up to 31")],
)
def test_a_server_name_is_a_short_lowercase_word(name: str, said: str) -> None:
    """A name that could not be a URL segment and the middle of `mcp__NAME__TOOL`: refused
    on its line, with the pattern."""
    problem = only_problem(f"mcp:\n  {name}: {{command: srv}}\n")
    assert problem.line == 2
    assert "invalid MCP server name" in problem.message and said in problem.message


def test_a_grant_listed_twice_or_not_a_name_is_refused() -> None:
    """The list form takes names once each; a mapping inside it is pointed at the mapping
    form."""
    twice = only_problem(SERVERS + "agents:\n  - name: c\n    mcp: [tracker, tracker]\n")
    assert (twice.key_path, twice.line) == ("agents[0].mcp[1]", 16)
    assert "'tracker' is listed twice" in twice.message
    mixed = only_problem(SERVERS + "agents:\n  - name: c\n    mcp: [{tracker: {tools: [a]}}]\n")
    assert "write the mapping form" in mixed.message


def test_a_missing_credential_is_named_at_start_never_shown() -> None:
    """With the environment checked, each unset or empty credential variable is a problem
    on its line; a set one passes."""
    text = SERVERS + "agents: []\n"
    with pytest.raises(ConfigError) as caught:
        parse(text, environ={"TRACKER_AUTH": "Bearer real", "EVERYTHING_TOKEN": " "})
    [problem] = caught.value.problems
    assert (problem.line, problem.key_path) == (12, "mcp.everything.env_env.API_TOKEN")
    assert "environment variable EVERYTHING_TOKEN is empty" in problem.message
    assert "for MCP server everything" in problem.message
    parse(text, environ={"TRACKER_AUTH": "Bearer real", "EVERYTHING_TOKEN": "t"})


def test_a_server_the_schema_refused_is_not_said_again_where_agents_name_it() -> None:
    """One server's entry wrong: its own problem only, not also "not defined" where an
    agent names it; the other server's grants are still checked."""
    problems = problems_of(
        "mcp:\n  tracker: {url: 'ftp://x'}\n  docs: {command: d, tools: [a]}\n"
        "agents:\n  - name: a\n    mcp: [tracker, docs]\n"
        "  - name: b\n    mcp: {docs: {tools: [b]}}\n"
    )
    assert [p.key_path for p in problems] == ["mcp.tracker.url", "agents[1].mcp.docs.tools[0]"]


def test_an_ad_hoc_agent_takes_the_defaults_grants() -> None:
    """An agent no roster names (a `spawn` of a new name) is granted `defaults.mcp`, as a
    roster agent that sets none is."""
    config = parse(SERVERS + "defaults:\n  mcp: {tracker: {tools: [get_issue]}}\n")
    spec = mcp_rules(config).ad_hoc(fleet_settings(config).ad_hoc(AgentName("scratch")))
    assert spec.mcp == (McpGrant("tracker", frozenset({"get_issue"})),)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (
            "s: {url: 'https://x.example.com/mcp', headers: {X-Api-Key: abc}}",
            "header X-Api-Key looks like it carries a credential, and secrets never go in the "
            "config file: set a variable in Fleetwarden's environment to the header's whole "
            "value and name it in headers_env: {X-Api-Key: VARIABLE} (the value is not shown)",
        ),
        (
            "s: {command: srv, env: {GITHUB_TOKEN: abc}}",
            "GITHUB_TOKEN looks like a secret, and secrets never go in the config file: set a "
            "variable in Fleetwarden's environment and name it in env_env: "
            "{GITHUB_TOKEN: VARIABLE} (the value is not shown)",
        ),
        (
            "s: {command: srv, args: ['--token=abc123xyz']}",
            "args[0] looks like a credential, and secrets never go in the config file: give "
            "it to the server in a variable (env_env: {NAME: VARIABLE}); the value is not shown",
        ),
    ],
)
def test_a_credentials_fix_shows_single_braces(entry: str, said: str) -> None:
    """The fix a refused credential's message shows is the YAML to write, braces single."""
    assert only_problem(f"mcp:\n  {entry}\n").message == said


def test_a_grant_list_item_not_a_name_shows_the_mapping_form_with_single_braces() -> None:
    """`mcp: [{...}]` says the mapping form as it is written, braces single."""
    problem = only_problem(SERVERS + "agents:\n  - name: a\n    mcp: [[tracker]]\n")
    assert problem.message.endswith("mcp: {NAME: {tools: [TOOL, ...]}}"), problem.message


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        (
            f"s: {{url: {URL}, headers_env: {{'Authorization: Bearer {TOKEN}': X}}}}",
            "mcp.s.headers_env.<redacted>",
        ),
        (f"s: {{url: {URL}, headers: {{'{TOKEN}': x}}}}", "mcp.s.headers.<redacted>"),
        (f"s: {{command: srv, env: {{'GITHUB_TOKEN={TOKEN}': x}}}}", "mcp.s.env.<redacted>"),
        (f"s: {{command: srv, env_env: {{'{TOKEN}': X}}}}", "mcp.s.env_env.<redacted>"),
        (f"'{TOKEN}': {{url: 'https://x.example.com/mcp'}}", "mcp.<redacted>"),
        (f"s: {{command: '{TOKEN}'}}", "mcp.s.command"),
        (f"s: {{url: {URL}, timeout: '{TOKEN}'}}", "mcp.s.timeout"),
        (f"s: {{url: {URL}, tools: ['Bearer {TOKEN}']}}", "mcp.s.tools[0]"),
    ],
)  # fmt: skip
def test_a_secret_pasted_where_a_name_goes_is_refused_and_never_shown(
    entry: str, path: str
) -> None:
    """A credential pasted as a header's, variable's or server's name, a command, a number
    or a tool is refused, shown as <redacted> in the location and nowhere in the message
    (`roster reload` puts this text in chat)."""
    problem = only_problem(f"mcp:\n  {entry}\n")
    assert problem.key_path == path
    assert TOKEN[4:20] not in str(problem), str(problem)


HEX = "a8f5f167f44f4964e6c998dee827110c"


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        (f"s: {{url: {URL}, headers: {{X-Forward: 'bearer {HEX}'}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{X-Up: 'Basic dXNlcjpwYXNzd29yZA=='}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{X-Up: 'Token {HEX}'}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{X-Up: '{TOKEN}'}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{X-Auth: abc}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{X-ApiKey: abc}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{X-Gitlab-Pat: abc}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{Private-Token: abc}}}}", "mcp.s.headers"),
        (f"s: {{url: {URL}, headers: {{X-Api-Version: abc}}}}", "mcp.s.headers"),
        ("s: {command: srv, args: [--auth, abc123]}", "mcp.s.args"),
        ("s: {command: srv, args: [--pat, abc123]}", "mcp.s.args"),
        ("s: {command: mysql-mcp, args: [-p, hunter2]}", "mcp.s.args"),
        ("s: {command: srv, args: ['--auth=abc123']}", "mcp.s.args"),
        ("s: {command: srv, env: {GITHUB_PAT: abc}}", "mcp.s.env"),
        ("s: {command: srv, env: {SENTRY_DSN: 'https://abc@o1.ingest.sentry.io/1'}}", "mcp.s.env"),
        (f"s: {{url: '{URL}?sig=abcdef0123'}}", "mcp.s.url"),
        (f"s: {{url: '{URL}?signature=abcdef0123'}}", "mcp.s.url"),
        (f"s: {{url: '{URL}?code=abcdef0123'}}", "mcp.s.url"),
        (f"s: {{url: '{URL}?key=abcdef0123'}}", "mcp.s.url"),
        (f"s: {{url: '{URL}/{TOKEN}'}}", "mcp.s.url"),
    ],
)  # fmt: skip
def test_a_credential_by_its_value_option_or_query_is_refused(entry: str, path: str) -> None:
    """A header whose value is a credential (`Bearer`/`Basic`/`Token`, a token's shape)
    whatever its name, a header named with auth/token/key/secret/pat/api words, a secret
    option's separate value (`--auth X`, `-p X`), a secret-named variable, a URL's
    signature or key query or token path segment: each refused, the value never shown."""
    problem = only_problem(f"mcp:\n  {entry}\n")
    assert problem.key_path.startswith(path)
    assert "abc123" not in str(problem) and HEX not in str(problem)


def test_ordinary_headers_options_and_variables_pass() -> None:
    """What is not a credential passes: a team header, a key file's path, a flag after
    `--auth`, API_URL and PRIVATE_REPO variables, a plain query."""
    config = parse(
        f"mcp:\n  s: {{url: '{URL}?team=web', headers: {{X-Team: web, X-Request-Source: fw}}}}\n"
        "  t:\n    command: srv\n"
        "    args: [--api-key-file, /etc/srv/key, --auth, --verbose, --token-env, SRV_TOKEN]\n"
        "    env: {API_URL: 'https://api.example.com', PRIVATE_REPO: 'true'}\n"
    )
    assert set(config.mcp) == {"s", "t"}


def test_each_problem_of_an_entry_is_said_at_its_own_line_all_at_once() -> None:
    """Secrets in a block mapping and list: every one said at its own line and key, in one
    pass, not the first at the section's line; so are the keys of the other transport and
    a header given twice, once the values pass."""
    problems = problems_of(
        "mcp:\n"
        "  s:\n"
        "    command: srv\n"
        "    env:\n"
        "      LOG: warn\n"
        "      GITHUB_TOKEN: zz\n"
        "      DB_PASSWORD: yy\n"
        "    args:\n"
        "      - a\n"
        "      - --password\n"
        "      - hunter2\n"
        "  h:\n"
        "    url: https://x.example.com/mcp\n"
        "    headers:\n"
        "      X-A: b\n"
        "      X-Api-Key: zz\n"
        "      X-B: c\n"
        "      X-Auth: zz\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (6, "mcp.s.env.GITHUB_TOKEN"),
        (7, "mcp.s.env.DB_PASSWORD"),
        (11, "mcp.s.args[2]"),
        (16, "mcp.h.headers.X-Api-Key"),
        (18, "mcp.h.headers.X-Auth"),
    ]
    problems = problems_of(
        "mcp:\n"
        "  h:\n"
        "    url: https://x.example.com/mcp\n"
        "    headers:\n"
        "      X-A: b\n"
        "      x-team: c\n"
        "    headers_env:\n"
        "      X-Team: V\n"
        "    env: {A: b}\n"
        "    cwd: /tmp\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (6, "mcp.h.headers.x-team"),
        (9, "mcp.h.env"),
        (10, "mcp.h.cwd"),
    ]


HELD = """\
mcp:
  s:
    url: https://mcp.example.com/mcp
    headers_env: {Authorization: S_AUTH}
  open: {url: 'https://open.example.com/mcp'}
"""


def test_an_unsandboxed_agent_is_refused_a_server_with_a_held_credential() -> None:
    """`sandbox: none` (an agent's, or the defaults' with their grants) and a grant to a
    server whose credential Fleetwarden holds: refused at its line, saying /proc and the
    fix; a server without a credential may be granted."""
    problems = problems_of(
        HELD
        + "defaults:\n  sandbox: none\n  mcp: [s]\n"
        + "agents:\n  - name: a\n    sandbox: none\n    mcp: [s, open]\n"
        + "  - name: b\n    sandbox: none\n    mcp: [open]\n"
        + "  - name: c\n    sandbox: bwrap\n    mcp: [s]\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (7, "defaults.sandbox"),
        (11, "agents[0].sandbox"),
    ]
    assert problems[1].message == (
        "agent 'a' runs with sandbox: none and is granted MCP server s, whose credential "
        "Fleetwarden holds: an unsandboxed agent shares Fleetwarden's user and can read its "
        "environment (the credential with it) through /proc. Give it sandbox: bwrap, or take "
        "the server out of its mcp"
    )


def test_check_config_warns_of_an_agent_that_can_reach_its_server_directly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent granted an HTTP server whose host is in its egress_allow, or with egress:
    open: `check-config` warns it could reach the server around its door."""
    monkeypatch.setenv("S_AUTH", "Bearer x")
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        + HELD
        + "agents:\n  - name: a\n    runtime: stub\n    egress_allow: [mcp.example.com]\n"
        + "    mcp: [s]\n"
        + "  - name: b\n    runtime: stub\n    egress: open\n    mcp: [open]\n"
        + "  - name: c\n    runtime: stub\n    mcp: [s]\n"
    )
    with pytest.raises(SystemExit) as exited:
        main(["check-config", "--config", str(config)])
    assert exited.value.code == 0
    warned = [
        line for line in capsys.readouterr().out.splitlines() if "around its MCP door" in line
    ]
    assert warned == [
        "warning: agent 'a' has mcp.example.com in its egress_allow, so it can reach MCP "
        "server s directly, around its MCP door (without the credential, but unaudited and "
        "unapproved): take mcp.example.com out of it",
        "warning: agent 'b' has egress: open, so it can reach MCP server open directly, "
        "around its MCP door (without the credential, but unaudited and unapproved): give "
        "it egress: locked",
    ]


FORMS = (
    "a list of server names (mcp: [github, docs]), or a mapping narrowing a server's tools "
    "(mcp: {github: {tools: [search_issues]}, docs: {}})"
)


def test_an_empty_mcp_is_refused_rather_than_read_as_the_defaults() -> None:
    """`mcp:` written empty on an agent (or in `defaults`) is refused showing both forms
    and `mcp: []`; it never silently takes the defaults' servers."""
    defaults, agent = problems_of(SERVERS + "defaults:\n  mcp:\nagents:\n  - name: a\n    mcp:\n")
    assert (agent.key_path, defaults.key_path) == ("agents[0].mcp", "defaults.mcp")
    assert agent.message == (
        "mcp is empty, which is not read as any servers: write mcp: [] for none (on an agent, "
        f"leave the key out to take defaults.mcp), or give {FORMS}"
    )


@pytest.mark.parametrize(
    ("grants", "path", "said"),
    [
        ("3", "agents[0].mcp", f"mcp takes {FORMS}"),
        ("{tracker: all}", "agents[0].mcp.tracker", f"to narrow its tools; mcp takes {FORMS}"),
        ("{tracker: [get_issue]}", "agents[0].mcp.tracker", "a server's grant is a mapping: {}"),
    ],
)
def test_a_wrong_mcp_shows_the_list_and_the_mapping_forms(
    grants: str, path: str, said: str
) -> None:
    """`mcp: 3`, `{s: all}`, `{s: [tool]}`: the message shows both forms as written."""
    problem = only_problem(SERVERS + f"agents:\n  - name: a\n    mcp: {grants}\n")
    assert problem.key_path == path
    assert said in problem.message


def test_a_credential_in_a_variable_every_agent_is_given_is_refused() -> None:
    """A server's credential read from PATH, HOME or TMPDIR (which every agent is given
    anyway) is refused at its line."""
    problems = problems_of(
        "mcp:\n"
        "  s:\n"
        "    url: https://x.example.com/mcp\n"
        "    headers_env: {Authorization: TMPDIR}\n"
        "  t:\n"
        "    command: srv\n"
        "    env_env: {API_TOKEN: HOME}\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (4, "mcp.s.headers_env.Authorization"),
        (7, "mcp.t.env_env.API_TOKEN"),
    ]
    assert problems[0].message.startswith("TMPDIR is a variable every agent is given (")
    assert "put the credential in a variable of its own" in problems[1].message


def test_a_header_spelled_twice_or_a_line_break_in_a_header_or_url_is_refused() -> None:
    """Two spellings of one header (in headers_env, in headers, or across them), and a CR
    or LF in a header's value or in the url: each refused, the value never echoed."""
    problems = problems_of(
        "mcp:\n"
        "  s:\n"
        "    url: https://x.example.com/mcp\n"
        "    headers_env: {Authorization: A, authorization: B}\n"
        "  t:\n"
        "    url: https://x.example.com/mcp\n"
        "    headers: {X-Team: a, x-team: b}\n"
        "  u:\n"
        "    url: https://x.example.com/mcp\n"
        '    headers: {X-A: "a\\r\\nX-Evil: 1"}\n'
        "  v:\n"
        '    url: "https://x.example.com/mcp\\nEvil: 1"\n'
    )
    assert [(p.line, p.key_path) for p in problems] == [
        (4, "mcp.s.headers_env.authorization"),
        (7, "mcp.t.headers.x-team"),
        (10, "mcp.u.headers.X-A"),
        (12, "mcp.v.url"),
    ]
    spelled, _, split, url = (p.message for p in problems)
    assert spelled == (
        "header authorization is Authorization again (HTTP header names are the same in any "
        "case): keep one"
    )
    assert "line break or another control character" in split and "X-Evil" not in split
    assert "control character" in url and "Evil" not in url


def test_a_stdio_program_not_there_is_refused_and_one_off_path_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command by path that does not exist, or is not executable, is refused at its line;
    a bare name not on Fleetwarden's PATH is a check-config warning."""
    (tmp_path / "plain").write_text("")
    problems = problems_of(
        f"mcp:\n  a: {{command: {tmp_path / 'nope'}}}\n  b: {{command: {tmp_path / 'plain'}}}\n"
    )
    assert [(p.line, p.key_path) for p in problems] == [(2, "mcp.a.command"), (3, "mcp.b.command")]
    assert problems[0].message == (
        f"MCP server a's command '{tmp_path / 'nope'}' does not exist: give the path of the "
        "server's program, or a name on Fleetwarden's PATH (such as npx)"
    )
    assert "cannot be run (not executable)" in problems[1].message
    config = tmp_path / "fleetwarden.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nmcp:\n  c: {{command: no-such-mcp-server-here}}\n"
    )
    with pytest.raises(SystemExit):
        main(["check-config", "--config", str(config)])
    assert (
        "warning: MCP server c's command 'no-such-mcp-server-here' is not on Fleetwarden's "
        "PATH: install it, or give the program's full path"
    ) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("host", "plain_credential_ok", "dashboard_local"),
    [
        ("127.0.0.1", True, True),
        ("[::1]", True, True),
        ("LOCALHOST", True, True),
        ("fleetwarden-x.localhost", False, True),
        ("localhost.example.com", False, False),
        ("10.0.0.1", False, False),
    ],
)
def test_one_loopback_rule_serves_the_mcp_url_and_the_dashboard(
    host: str, plain_credential_ok: bool, dashboard_local: bool
) -> None:
    """fleet.destinations.is_loopback: an http:// MCP server may take a held credential
    only on a loopback address or `localhost` (a name under it is not trusted to resolve
    there); the dashboard counts names under `localhost` as local too."""
    assert is_loopback(host) is dashboard_local
    assert is_loopback(host, under_localhost=False) is plain_credential_ok
    text = f"mcp:\n  s: {{url: 'http://{host}:8931/mcp', headers_env: {{Authorization: A}}}}\n"
    if plain_credential_ok:
        assert "s" in parse(text).mcp
    else:
        assert "unencrypted" in only_problem(text).message
