"""Tests for fleet.connections.loopback: per-agent secrets that outlive a restart, the
loopback socket, and the constant-time token check the heartbeat server and the metering
proxy share."""

from __future__ import annotations

import errno
import json
import logging
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.connections import loopback
from fleet.connections.loopback import HOST, AgentSecrets, listen, token_matches
from fleet.errors import FleetError, InvalidAgentName
from fleet.names import AgentName

SECRET = "tok-DO-NOT-LOG-1234567890abcdef"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "metering.json"


def saved(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


# --- token_matches -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "given", "result"),
    [
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("abc", "ab", False),
        ("abc", "abcd", False),
        ("abc", "", False),
        ("abc", None, False),
        (None, "abc", False),
        (None, None, False),
        (None, "", False),
        ("abc", "ábc", False),
        ("abc", "\udcff", False),  # a lone surrogate from a badly decoded header
    ],
)
def test_token_matches(expected: str | None, given: str | None, result: bool) -> None:
    """Only an exact match of a token that exists passes; nothing given never does."""
    assert token_matches(expected, given) is result


# --- AgentSecrets ------------------------------------------------------------------------------


def test_issue_saves_the_token_before_giving_it_out(path: Path) -> None:
    """A new token is written to the file (created with its directory) before issue()
    returns it; the file is the owner's only."""
    secrets = AgentSecrets(path, "metering")
    token = secrets.issue("coder-1")
    assert len(token) == 32  # 24 random bytes, URL-safe base64
    assert token.replace("-", "").replace("_", "").isalnum()
    assert saved(path) == {"version": 1, "port": None, "tokens": {"coder-1": token}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["metering.json"]  # no temp file left


def test_issue_returns_the_same_token_until_revoked(path: Path) -> None:
    """issue() is idempotent per agent; each agent has its own token."""
    secrets = AgentSecrets(path, "metering")
    first = secrets.issue("coder-1")
    assert secrets.issue("coder-1") == first
    other = secrets.issue("coder-2")
    assert other != first
    assert secrets.get(AgentName("coder-1")) == first
    assert secrets.get(AgentName("nobody")) is None
    tokens = saved(path)["tokens"]  # type: ignore[index]
    assert tokens == {"coder-1": first, "coder-2": other}


def test_tokens_and_port_survive_a_reload(path: Path) -> None:
    """A new instance on the same file knows the port and every token."""
    secrets = AgentSecrets(path, "metering")
    token = secrets.issue("coder-1")
    secrets.save_port(41234)
    again = AgentSecrets(path, "metering")
    assert again.get(AgentName("coder-1")) is None  # nothing before load()
    assert again.load() == 41234
    assert again.get(AgentName("coder-1")) == token
    assert again.matches("coder-1", token) == "coder-1"
    assert again.issue("coder-1") == token
    assert saved(path) == {"version": 1, "port": 41234, "tokens": {"coder-1": token}}


def test_save_port_keeps_the_tokens(path: Path) -> None:
    """Saving the port rewrites the file with the tokens it already had."""
    secrets = AgentSecrets(path, "heartbeat")
    token = secrets.issue("a")
    secrets.save_port(5000)
    secrets.save_port(5001)
    assert saved(path) == {"version": 1, "port": 5001, "tokens": {"a": token}}


def test_revoke_forgets_the_token_on_disk_too(path: Path) -> None:
    """revoke() says whether there was a token, removes it from the file, and a token
    issued afterwards is a new one."""
    secrets = AgentSecrets(path, "metering")
    old = secrets.issue("coder-1")
    keep = secrets.issue("coder-2")
    assert secrets.revoke("coder-1") is True
    assert secrets.revoke("coder-1") is False
    assert secrets.revoke("never-issued") is False
    assert secrets.matches("coder-1", old) is None
    assert saved(path)["tokens"] == {"coder-2": keep}  # type: ignore[index]
    reloaded = AgentSecrets(path, "metering")
    reloaded.load()
    assert reloaded.get(AgentName("coder-1")) is None
    assert reloaded.issue("coder-1") != old


def test_keep_only_revokes_every_other_token_here_and_adopted(path: Path) -> None:
    """keep_only() forgets the tokens (and adopted digests) of every agent it is not given,
    on disk too, and tells the ledger each is gone; those it keeps still match."""
    secrets = AgentSecrets(path, "heartbeat")
    going, over = secrets.issue("going"), secrets.issue("over")
    secrets.adopt({"elsewhere": loopback.token_digest("far-token")})
    secrets.changes()  # what was published before
    assert secrets.keep_only(["going"]) == [AgentName("elsewhere"), AgentName("over")]
    assert secrets.matches("going", going) == "going"
    assert secrets.matches("over", over) is None
    assert secrets.matches("elsewhere", "far-token") is None
    assert saved(path)["tokens"] == {"going": going}  # type: ignore[index]
    assert sorted(secrets.changes()) == [("elsewhere", None), ("over", None)]
    assert secrets.keep_only(["going"]) == []  # nothing left to revoke: the file untouched


def test_a_revoked_token_is_retired_never_matched_and_kept_across_a_reload(path: Path) -> None:
    """A revoked token matches no more, but is kept (the last four per agent) under
    ``retired``: still given to the redactor and known as revoked, after a reload too."""
    secrets = AgentSecrets(path, "heartbeat")
    old = secrets.issue("coder-1")
    secrets.revoke("coder-1")
    new = secrets.issue("coder-1")
    assert saved(path) == {
        "version": 1,
        "port": None,
        "tokens": {"coder-1": new},
        "retired": {"coder-1": [old]},
    }
    again = AgentSecrets(path, "heartbeat")
    again.load()
    assert again.matches("coder-1", old) is None and again.matches("coder-1", new) == "coder-1"
    assert again.revoked(AgentName("coder-1"), old) is True
    assert again.revoked(AgentName("coder-1"), new) is False
    assert sorted(again.values()) == sorted([old, new])
    for _ in range(4):
        again.revoke("coder-1")
        again.issue("coder-1")
    assert again.revoked(AgentName("coder-1"), old) is False  # past the last four
    assert len(saved(path)["retired"]["coder-1"]) == 4  # type: ignore[index]


def test_the_starts_keep_only_forgets_the_retired_tokens_of_agents_gone(path: Path) -> None:
    """keep_only(known=...) drops the retired tokens of agents no longer known (removed,
    forgotten), from the file and the redactor's list; a known agent keeps its own."""
    secrets = AgentSecrets(path, "heartbeat")
    gone, kept = secrets.issue("gone-1"), secrets.issue("kept-1")
    secrets.revoke("gone-1")
    secrets.revoke("kept-1")
    live = secrets.issue("going-1")
    assert secrets.keep_only(["going-1"], known=["kept-1", "going-1"]) == []
    assert saved(path)["retired"] == {"kept-1": [kept]}  # type: ignore[index]
    assert sorted(secrets.values()) == sorted([kept, live])
    assert secrets.revoked(AgentName("gone-1"), gone) is False
    secrets.keep_only(["going-1"], known=["going-1"])
    assert "retired" not in saved(path)  # type: ignore[operator]


def test_defer_drops_the_tokens_the_ledger_holds_newer_ones_of(path: Path) -> None:
    """defer() forgets a token whose agent the ledger holds another digest of (a newer run
    another orchestrator started), on disk too, and keeps those it agrees with or lacks."""
    secrets = AgentSecrets(path, "heartbeat")
    same, older, alone = secrets.issue("same"), secrets.issue("older"), secrets.issue("alone")
    ledger = {
        "same": loopback.token_digest(same),
        "older": loopback.token_digest("a newer run's token"),
    }
    assert secrets.defer(ledger) == [AgentName("older")]
    assert saved(path)["tokens"] == {"alone": alone, "same": same}  # type: ignore[index]
    assert secrets.matches("older", older) is None
    secrets.adopt(ledger)
    assert secrets.matches("older", "a newer run's token") == "older"
    assert secrets.defer(ledger) == []


def test_issue_refuses_an_invalid_agent_name_and_saves_nothing(path: Path) -> None:
    """Names that could not be agents get no token and no file."""
    secrets = AgentSecrets(path, "metering")
    with pytest.raises(InvalidAgentName):
        secrets.issue("../etc")
    with pytest.raises(InvalidAgentName):
        secrets.revoke("Coder")
    assert not path.exists()


def test_matches_names_the_agent_only_for_its_own_token(path: Path) -> None:
    """The right token for the right name is that agent; anything else is None."""
    secrets = AgentSecrets(path, "metering")
    one, two = secrets.issue("coder-1"), secrets.issue("coder-2")
    assert secrets.matches("coder-1", one) == AgentName("coder-1")
    assert secrets.matches("coder-1", two) is None
    assert secrets.matches("coder-3", one) is None
    assert secrets.matches("coder-1", None) is None
    assert secrets.matches("../coder-1", one) is None
    assert secrets.matches("", one) is None


def test_a_failed_save_gives_out_no_token(tmp_path: Path) -> None:
    """If the file cannot be written, issue() raises FleetError and keeps no token an
    agent would be refused with after a restart."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    secrets = AgentSecrets(blocker / "metering.json", "metering")
    with pytest.raises(FleetError, match=r"^cannot save the metering tokens to .*metering\.json"):
        secrets.issue("coder-1")
    assert secrets.get(AgentName("coder-1")) is None


def test_a_missing_file_is_a_fresh_start_without_warning(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No file: no port, no tokens, nothing logged."""
    secrets = AgentSecrets(path, "metering")
    assert secrets.load() is None
    assert secrets.get(AgentName("coder-1")) is None
    assert caplog.records == []


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.WARNING, logger="fleet.connections.loopback"):
        yield caplog


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (f'{{"version": 1, "tokens": {{"coder-1": "{SECRET}"', "ignoring the unreadable"),
        (f"not json at all {SECRET}", "ignoring the unreadable"),
        (f'["{SECRET}"]', "ignoring the malformed"),
        (f'"{SECRET}"', "ignoring the malformed"),
    ],
    ids=["truncated", "garbage", "list", "string"],
)
def test_a_broken_file_is_ignored_with_a_warning_that_shows_no_token(
    path: Path, warnings: pytest.LogCaptureFixture, content: str, message: str
) -> None:
    """An unparseable file starts afresh, and the warning names the server and the file
    but never what is in it."""
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")
    secrets = AgentSecrets(path, "metering")
    assert secrets.load() is None
    assert secrets.get(AgentName("coder-1")) is None
    [record] = warnings.records
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert text.startswith(f"{message} metering state {path}")
    assert SECRET not in text
    assert SECRET not in warnings.text


def test_a_file_that_is_not_utf8_is_ignored(path: Path, warnings: pytest.LogCaptureFixture) -> None:
    """Bytes that are not text are unreadable, named by the error's type only."""
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"tokens": {"coder-1": "\xff' + SECRET.encode() + b'"}}')
    assert AgentSecrets(path, "heartbeat").load() is None
    [record] = warnings.records
    assert "(UnicodeDecodeError)" in record.getMessage()
    assert SECRET not in warnings.text


def test_an_unreadable_file_is_ignored_without_quoting_the_error(
    path: Path, warnings: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError is reported by its type: its text might quote the file."""
    path.parent.mkdir(parents=True)
    path.write_text("{}", encoding="utf-8")

    def refuse(self: Path, encoding: str | None = None) -> str:
        raise PermissionError(13, f"Permission denied near {SECRET}", str(self))

    # Permissions cannot be relied on: tests may run as root, which reads anything.
    monkeypatch.setattr(Path, "read_text", refuse)
    assert AgentSecrets(path, "metering").load() is None
    [record] = warnings.records
    assert "(PermissionError)" in record.getMessage()
    assert "agents still running from before will be refused" in record.getMessage()
    assert SECRET not in warnings.text


def test_a_directory_in_place_of_the_file_is_ignored(
    path: Path, warnings: pytest.LogCaptureFixture
) -> None:
    """A directory where the file should be is unreadable, not a crash."""
    path.mkdir(parents=True)
    assert AgentSecrets(path, "metering").load() is None
    assert "(IsADirectoryError)" in warnings.records[0].getMessage()


def test_bad_entries_are_dropped_and_good_ones_kept(path: Path) -> None:
    """Entries with invalid names or non-string/empty tokens are left out; a port out of
    range or of the wrong type is no port."""
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "port": 70000,
                "tokens": {
                    "coder-1": "good",
                    "Coder-2": "bad-name",
                    "coder-3": 123,
                    "coder-4": "",
                    "coder-5": None,
                },
            }
        ),
        encoding="utf-8",
    )
    secrets = AgentSecrets(path, "metering")
    assert secrets.load() is None
    assert secrets.get(AgentName("coder-1")) == "good"
    for name in ("Coder-2", "coder-3", "coder-4", "coder-5"):
        assert secrets.get(AgentName(name)) is None


@pytest.mark.parametrize(
    ("port", "loaded"),
    [
        (41234, 41234),
        (1, 1),
        (65535, 65535),
        (0, None),
        (65536, None),
        (-1, None),
        ("41234", None),
        (True, None),
        (41234.0, None),
        (None, None),
    ],
)
def test_only_a_valid_port_is_loaded(path: Path, port: object, loaded: int | None) -> None:
    """The saved port is used only if it is an integer from 1 to 65535."""
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 1, "port": port, "tokens": {}}), encoding="utf-8")
    assert AgentSecrets(path, "metering").load() == loaded


def test_tokens_that_are_not_a_mapping_keep_the_port(path: Path) -> None:
    """A file whose tokens are malformed still gives back its port."""
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "port": 4000, "tokens": ["x"]}', encoding="utf-8")
    secrets = AgentSecrets(path, "metering")
    assert secrets.load() == 4000
    assert secrets.get(AgentName("x")) is None


def test_saving_replaces_a_broken_file(path: Path, warnings: pytest.LogCaptureFixture) -> None:
    """After a broken file was ignored, the next save writes a whole new one, mode 0600."""
    path.parent.mkdir(parents=True)
    path.write_text("{garbage", encoding="utf-8")
    path.chmod(0o644)
    secrets = AgentSecrets(path, "metering")
    secrets.load()
    token = secrets.issue("coder-1")
    assert saved(path) == {"version": 1, "port": None, "tokens": {"coder-1": token}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- listen ------------------------------------------------------------------------------------


def test_listen_without_a_preference_binds_a_free_loopback_port() -> None:
    """Port 0: any free port on 127.0.0.1, and nothing refused."""
    sock, refused = listen(0, "metering")
    with sock:
        host, port = sock.getsockname()
        assert (host, refused) == (HOST, None)
        assert port > 0
        assert sock.get_inheritable() is False  # agents never hold the port


def test_listen_gets_the_preferred_port_when_free() -> None:
    """The port used last time is taken again when nothing holds it."""
    first, _ = listen(0, "metering")
    port = first.getsockname()[1]
    first.close()
    sock, refused = listen(port, "metering")
    with sock:
        assert (sock.getsockname(), refused) == ((HOST, port), None)


def test_listen_falls_back_to_a_free_port_and_says_why() -> None:
    """When another socket listens on the preferred port, another one is bound and the
    OSError that refused the preferred one is returned."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        taken = holder.getsockname()[1]
        sock, refused = listen(taken, "metering")
        with sock:
            assert sock.getsockname()[0] == HOST
            assert sock.getsockname()[1] not in (0, taken)
            assert isinstance(refused, OSError)
            assert refused.errno == errno.EADDRINUSE


def test_listen_that_cannot_bind_at_all_is_a_fleet_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No port at all is a FleetError naming the server, not a bare OSError."""

    def refuse(port: int) -> socket.socket:
        raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")

    monkeypatch.setattr(loopback, "_bind", refuse)
    with pytest.raises(FleetError, match=r"^heartbeat: cannot listen on 127\.0\.0\.1: "):
        listen(4000, "heartbeat")


def test_the_agents_side_sends_its_secret_in_the_header_the_doors_read() -> None:
    """The door client runs alone in a sandbox and keeps its own copy of the header's name:
    the same words the doors read."""
    from fleet.connections import door_client
    from fleet.connections.token import TOKEN_HEADER

    assert door_client.TOKEN_HEADER == TOKEN_HEADER
