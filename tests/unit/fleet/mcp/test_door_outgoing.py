"""What the door relays to an agent has every secret Fleetwarden holds taken out
(fleet.mcp.door.wire.outgoing): the server's own credentials and the app's redactor's known values,
the JSON kept whole and nothing else of it changed."""

from __future__ import annotations

import json

from fleet.mcp.door.wire.outgoing import Outgoing
from fleet.mcp.upstream.credentials import Scrub
from fleet.redaction.known import EnvSecrets, Secret
from fleet.redaction.redactor import Redactor

OWN = "server-own-credential-4Kd8"
# Made up, in an Anthropic key's shape, joined so no line holds a key-shaped literal.
PROVIDER = "-".join(("sk", "ant", "api03", "held-by-the-app-Zq81"))
TOKEN = "agent-token-of-another-7Hn2Lq"


def _outgoing() -> Outgoing:
    app = Redactor(
        [EnvSecrets(["ANTHROPIC_API_KEY", "PEER"], {"ANTHROPIC_API_KEY": PROVIDER, "PEER": TOKEN})]
    )
    return Outgoing(Scrub([Secret(OWN, "MCP credential OWN")]), app.held)


def test_every_held_value_is_taken_out_and_the_json_stays_whole() -> None:
    """The server's own credential, a provider key and another agent's token in a result
    are each replaced by their label; the message is still the same JSON otherwise."""
    text = f"own {OWN}, key {PROVIDER}, peer {TOKEN}"
    result = {"content": [{"type": "text", "text": text}], "_meta": {"note": PROVIDER}}
    raw = json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()
    out = _outgoing().json(raw)
    assert out is not None
    relayed = json.loads(out)
    shown = relayed["result"]["content"][0]["text"]
    assert shown == (
        "own [redacted: MCP credential OWN], key [redacted: ANTHROPIC_API_KEY], "
        "peer [redacted: PEER]"
    )
    assert relayed["result"]["_meta"] == {"note": "[redacted: ANTHROPIC_API_KEY]"}


def test_a_message_without_a_secret_is_relayed_byte_for_byte() -> None:
    """Nothing held in it: the very bytes the server sent, credential-shaped text and
    invisible characters included (only known values are taken out of what is relayed)."""
    text = "ghp_" + "a" * 36 + " \u200b AKIAABCDEFGHIJKLMNOP"
    raw = json.dumps({"jsonrpc": "2.0", "id": 1, "result": {"text": text}}).encode()
    assert _outgoing().json(raw) is raw


def test_a_value_across_the_jsons_structure_leaves_nothing_relayed() -> None:
    """A held value standing across a key and its string (the label would break the JSON)
    is not relayed at all, rather than in part."""
    raw = ('{"jsonrpc":"2.0","id":1,"result":{"' + PROVIDER[:12] + '":"' + "x" + '"}}').encode()
    spanning = Outgoing(Scrub([Secret(PROVIDER[:12] + '":"x', "odd")]))
    assert spanning.json(raw) is None
