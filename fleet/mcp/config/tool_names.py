"""Tool names the config gives against the names a server really lists (pure): a
``tools:`` entry the server does not list (``get_env`` for ``get-env``) would hide that
tool from every agent without a word, so it is said with the listed name closest to it;
and a call refused as off the allow-list names the allowed tool it is likely a typo of.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from fleet.schema import did_you_mean

SHOWN = 12
"""How many of a server's tools a message lists at most."""


def unlisted(
    server: str, configured: Sequence[str], listed: Collection[str]
) -> list[tuple[int, str]]:
    """Each of ``configured`` (a ``tools:`` list, by index) that ``server`` does not list,
    with why: the nearest listed name when one is close, else the names it lists."""
    found = []
    names = sorted(listed)
    for index, tool in enumerate(configured):
        if tool in listed:
            continue
        guess = did_you_mean(tool, names)
        hint = (
            f"did you mean {guess!r}? (tool names are the server's own, spelt as it lists them)"
            if guess is not None
            else f"it lists {_some(names)}"
        )
        found.append((index, f"MCP server {server} lists no tool {tool!r}: {hint}"))
    return found


def near_allowed(tool: str, allowed: Collection[str]) -> str | None:
    """The allowed tool that ``tool`` (a call refused as off the allow-list) is likely a
    misspelling of — or that is a misspelling of it in the config — if one is close."""
    return did_you_mean(tool, sorted(allowed))


def _some(names: Sequence[str]) -> str:
    if not names:
        return "no tools"
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    # A server's names are its own text: each quoted, its control characters escaped.
    return ", ".join(repr(name) for name in names[:SHOWN]) + more
