"""Tests for the Matrix connector's thread links: matrix.to permalinks Element opens."""

from __future__ import annotations

from connectors.matrix.connector import permalink


def test_a_thread_link_is_a_matrix_to_permalink_of_its_root_via_the_bots_server() -> None:
    """The room and event ids are escaped as the spec's examples are; ``via`` names the
    server that can resolve the room."""
    link = permalink("!abc:example.org", "$Root_Id-1", via="example.org")
    assert link == "https://matrix.to/#/!abc%3Aexample.org/%24Root_Id-1?via=example.org"
