"""What `fleetwarden matrix setup` and the Conduit files say about encryption matches what
the code does: the control room is end-to-end encrypted and the homeserver is pinned."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from connectors.matrix.cli import setup

ROOT = Path(__file__).resolve().parents[4]


def test_setup_help_and_report_say_the_room_is_encrypted() -> None:
    """The help and the report call the room end-to-end encrypted, never unencrypted."""
    parser = argparse.ArgumentParser()
    setup.configure_parser(parser)
    assert "end-to-end encrypted control room" in (parser.description or "")
    assert "unencrypted" not in parser.format_help()
    assert "end-to-end encrypted" in setup._SAID["created"]


def test_the_conduit_files_keep_encryption_on_and_pin_the_image() -> None:
    """conduit/ neither asks to turn encryption off nor runs an unpinned image, and says
    what encryption is tested against."""
    conduit = ROOT / "conduit"
    readme = (conduit / "README.md").read_text(encoding="utf8")
    toml = (conduit / "conduit.toml").read_text(encoding="utf8")
    compose = (conduit / "docker-compose.yml").read_text(encoding="utf8")
    for text in (readme, toml, compose):
        assert "unencrypted rooms only" not in text.lower()
        assert "allow_encryption = false" not in text
    assert re.search(r"^allow_encryption = true$", toml, re.MULTILINE)
    (image,) = re.findall(r"^\s*image:\s*(\S+)$", compose, re.MULTILINE)
    assert re.fullmatch(r"matrixconduit/matrix-conduit:v\d+\.\d+\.\d+", image), image
    assert image.split(":")[1] in readme
    assert "Synapse 1.163.2" in readme
