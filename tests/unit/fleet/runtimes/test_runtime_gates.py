"""Tests for fleet.runtimes.gates: what pi and opencode are told of an agent's permissions,
and the policy the gate (fleet/gates/ask.mjs, run by the real node) applies to a call."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from fleet.errors import LaunchFailed
from fleet.model import AgentSpec, McpGrant, PermissionMode
from fleet.names import AgentName
from fleet.runtimes import RuntimeContext
from fleet.runtimes.gates import ASK_CLIENT, gate_env, opencode_permission, pi_args

NAME = AgentName("coder-1")
URL = "http://127.0.0.1:41234/heartbeat/coder-1"
TOKEN = "hb-token-AbCdEfGhIjKlMnOpQrStUv"


def spec(mode: PermissionMode = PermissionMode.EDITS, **more: Any) -> AgentSpec:
    return AgentSpec(name=NAME, runtime="pi", permissions=mode, **more)


def ctx(tmp_path: Path, url: str | None = URL) -> RuntimeContext:
    return RuntimeContext(
        home=tmp_path / "home",
        workdir=tmp_path / "work",
        environ={},
        heartbeat_url=url,
        heartbeat_token=TOKEN if url else None,
    )


def test_the_gate_is_told_the_policy_and_the_door(tmp_path: Path) -> None:
    """The mode, the rules and the workdir as JSON; the heartbeat URL and token as given."""
    env = gate_env(spec(allow=("Bash(git *)",), deny=("Bash(rm *)",)), ctx(tmp_path))
    assert json.loads(env["FLEETWARDEN_PERMISSIONS"]) == {
        "mode": "edits",
        "allow": ["Bash(git *)"],
        "deny": ["Bash(rm *)"],
        "workdir": str(tmp_path / "work"),
    }
    assert (env["FLEETWARDEN_HEARTBEAT_URL"], env["FLEETWARDEN_HEARTBEAT_TOKEN"]) == (URL, TOKEN)


def test_a_door_that_is_not_loopback_is_refused(tmp_path: Path) -> None:
    """A heartbeat URL off loopback never reaches the gate: the launch fails saying why."""
    with pytest.raises(LaunchFailed, match=r"127\.0\.0\.1"):
        gate_env(spec(), ctx(tmp_path, url="http://10.0.0.1:80/heartbeat/coder-1"))


def test_pi_loads_only_the_gate_and_read_only_gets_the_read_tools() -> None:
    """pi: no extension discovery, ours by path; read-only: --tools with the read tools."""
    assert pi_args(spec())[:2] == ("--no-extensions", "--extension")
    assert pi_args(spec(PermissionMode.READ_ONLY))[-2:] == ("--tools", "read,grep,find,ls")


def test_opencode_permission_maps_the_mode_and_rules() -> None:
    """read-only denies edits, commands and fetches natively; rules become patterns after
    ``*`` (opencode's last match wins); a bare tool rule sets the whole tool."""
    read_only = opencode_permission(
        spec(PermissionMode.READ_ONLY, allow=("Bash(git status)",), deny=("WebFetch",))
    )
    assert read_only["bash"] == {"*": "deny", "git status": "allow"}
    assert (read_only["edit"], read_only["webfetch"]) == ("deny", "deny")
    full = opencode_permission(spec(PermissionMode.FULL, deny=("Bash(rm *)", "Write(secrets/*)")))
    assert full["bash"] == {"*": "allow", "rm *": "deny"}
    assert full["edit"] == {"*": "allow", "secrets/*": "deny"}
    assert full["external_directory"] == "allow"


NODE = shutil.which("node")


def decide(policy: dict[str, Any], tool: str, file_or_command: str) -> dict[str, Any]:
    """The gate's verdict on one call, computed by ask.mjs under the real node."""
    assert NODE is not None
    script = f"""
import {{ decide, fileSubject, settings }} from {json.dumps(ASK_CLIENT.as_uri())};
const config = settings();
const [tool, arg] = JSON.parse(process.argv[1]);
const edit = ["edit", "write"].includes(tool);
const plain = {{ subject: arg, inside: false }};
const {{ subject, inside }} = edit ? fileSubject(arg, config.workdir) : plain;
console.log(JSON.stringify({{ subject, ...decide(config, tool, subject, inside) }}));
"""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FLEETWARDEN_PERMISSIONS": json.dumps(policy),
    }
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script, json.dumps([tool, file_or_command])],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_the_gate_policy_under_node(tmp_path: Path) -> None:
    """edits: a write inside the workdir passes, one through a symlink out of it is asked;
    deny beats allow; a shell line an allow rule seems to cover goes to Fleetwarden (the
    door settles every part); read tools always pass; read-only denies a command with a
    reason."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "out").symlink_to(tmp_path)
    edits = {
        "mode": "edits",
        "allow": ["Bash(git *)"],
        "deny": ["Bash(git push*)"],
        "workdir": str(work),
    }
    assert decide(edits, "write", "src/a.py") == {"subject": "src/a.py", "verdict": "allow"}
    assert decide(edits, "write", "out/x.py")["verdict"] == "ask"
    assert decide(edits, "bash", "git status")["verdict"] == "ask"
    assert decide(edits, "bash", "git push origin")["verdict"] == "deny"
    assert decide(edits, "bash", "git status; git push origin")["verdict"] == "deny"
    assert decide({**edits, "mode": "full"}, "bash", "ls && sudo git push x")["verdict"] == "deny"
    assert decide(edits, "bash", "make")["verdict"] == "ask"
    assert decide(edits, "read", "/etc/passwd")["verdict"] == "allow"
    ask = {**edits, "mode": "ask"}
    assert decide(ask, "write", "src/a.py")["verdict"] == "ask"
    read_only = decide({**edits, "mode": "read-only"}, "bash", "make")
    assert read_only["verdict"] == "deny" and "read-only" in read_only["reason"]


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_a_patch_inside_the_workdir_passes_under_edits(tmp_path: Path) -> None:
    """opencode's apply_patch: every file it names inside the workdir passes under
    ``edits``; one file outside makes it an ask (refused here: this gate has no door)."""
    assert NODE is not None
    script = f"""
import {{ gate, settings }} from {json.dumps(ASK_CLIENT.as_uri())};
const patch = (file) => ({{
  patchText: `*** Begin Patch\\n*** Update File: ${{file}}\\n@@\\n-a\\n+b\\n*** End Patch`,
}});
const config = settings();
const call = (id, file) => gate(config, {{ id, tool: "apply_patch", input: patch(file) }});
console.log(JSON.stringify([await call("p1", "a.py"), await call("p2", "/etc/x")]));
"""
    policy = {"mode": "edits", "allow": [], "deny": [], "workdir": str(tmp_path)}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FLEETWARDEN_PERMISSIONS": json.dumps(policy),
    }
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    inside, outside = json.loads(done.stdout)
    assert inside is None and "no way to ask" in outside


def test_the_gate_is_told_the_agents_mcp_servers(tmp_path: Path) -> None:
    """The servers the agent is granted are in the policy, once each, for their tools to
    pass the gate (the MCP door asks); none granted, no key."""
    granted = spec(mcp=(McpGrant("tracker"), McpGrant("docs"), McpGrant("tracker")))
    policy = json.loads(gate_env(granted, ctx(tmp_path))["FLEETWARDEN_PERMISSIONS"])
    assert policy["mcp"] == ["docs", "tracker"]
    assert "mcp" not in json.loads(gate_env(spec(), ctx(tmp_path))["FLEETWARDEN_PERMISSIONS"])


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_a_granted_mcp_servers_tool_passes_the_gate(tmp_path: Path) -> None:
    """opencode's ``srv_echo`` passes in every mode when ``srv`` is granted (the MCP door
    asks); a server whose name only starts alike, or none granted, is asked as before."""
    base = {"mode": "ask", "allow": [], "deny": [], "workdir": str(tmp_path), "mcp": ["srv"]}
    for mode in ("ask", "edits", "read-only"):
        assert decide({**base, "mode": mode}, "srv_echo", "{}")["verdict"] == "allow"
    assert decide(base, "srv2_echo", "{}")["verdict"] == "ask"
    assert decide(base, "srvecho", "{}")["verdict"] == "ask"
    assert decide({**base, "mcp": ["BAD_"]}, "BAD__echo", "{}")["verdict"] == "ask"
    assert decide({**base, "mcp": []}, "srv_echo", "{}")["verdict"] == "ask"


@pytest.mark.skipif(NODE is None, reason="needs node")
def test_a_server_named_like_a_built_in_tools_head_never_lets_that_tool_through(
    tmp_path: Path,
) -> None:
    """A granted server ``apply`` does not make opencode's own ``apply_patch`` its tool:
    the edit outside the workdir is asked as without the grant; ``list`` does not pass
    opencode's MCP resource tools, nor ``plan`` its ``plan_exit``; ``apply_x`` still passes."""
    base = {"mode": "ask", "allow": [], "deny": [], "workdir": str(tmp_path)}
    granted = {**base, "mcp": ["apply", "list", "plan", "read"]}
    patch = "*** Begin Patch\n*** Add File: /etc/x\n+x\n*** End Patch"
    assert (
        decide(granted, "apply_patch", patch)["verdict"]
        == decide(base, "apply_patch", patch)["verdict"]
    )
    assert decide(granted, "apply_patch", patch)["verdict"] == "ask"
    for tool in ("list_mcp_resources", "read_mcp_resource", "plan_exit"):
        assert decide({**granted, "mode": "read-only"}, tool, "{}") == decide(
            {**base, "mode": "read-only"}, tool, "{}"
        ), tool
    assert decide({**granted, "mode": "read-only"}, "plan_exit", "{}")["verdict"] == "deny"
    assert decide(granted, "apply_x", "{}")["verdict"] == "allow"
    assert decide(granted, "apply_", "{}")["verdict"] == "ask"
