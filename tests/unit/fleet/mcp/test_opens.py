"""How often an agent may open sessions with one server: a sliding window per agent and
server, a refused open not counted, and words that name the limit."""

from __future__ import annotations

from fleet.mcp.door.rules.opens import Opens


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_opens_past_the_limit_wait_for_the_window_to_slide() -> None:
    """Three opens a minute: the fourth is refused until the first is a minute old; a
    refused one never counts; another agent or server has its own count."""
    clock = Clock()
    opens = Opens(3, 60.0, clock)
    for step in range(3):
        clock.now += step
        assert opens.take("coder", "tracker")
    assert not opens.take("coder", "tracker")
    assert opens.take("reviewer", "tracker") and opens.take("coder", "db")
    clock.now = 1000.0 + 59.9
    assert not opens.take("coder", "tracker")
    clock.now = 1000.0 + 60.0
    assert opens.take("coder", "tracker")
    assert not opens.take("coder", "tracker")


def test_the_refusal_names_the_limit_and_what_to_do() -> None:
    """The words name the server, the number and the window, and how to go on."""
    said = Opens(12, 60.0, Clock()).words("tracker")
    assert "12" in said and "tracker" in said and "60 s" in said and "Mcp-Session-Id" in said
