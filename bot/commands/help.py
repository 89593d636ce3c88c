"""Markdown help rendered from the command table: the list of commands, and one command's
details.

The list is a table of two columns, each command's usage (its flags as ``[flags]`` when
they would make it long) and what it does: an HTML table on Matrix, a list on Discord
(too wide for its code block), columns fitted to the terminal on the console.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.commands.errors import ParseError
from bot.commands.parsing.grammar import CommandSpec, show, suggest, walk

LISTED_USAGE = 30
"""The longest usage line the list of commands shows whole; a longer one shows its flags
as ``[flags]`` (``help COMMAND`` names them), so the list stays two narrow columns."""


def help_text(
    specs: Sequence[CommandSpec], name: str | None, *, prefix: str = "!", typed: str | None = None
) -> str:
    """Markdown help: a table of every command, or the details of command ``name``.
    ``typed``: the prefix the asker typed (``""`` on the console, which needs none), for
    the ``help`` an unknown name is pointed to; ``prefix`` when not said."""
    every = list(walk(specs))
    if name is None or not name.strip():
        rows = [f"| {_cell(_code(_listed(spec)))} | {_cell(spec.summary)} |" for spec in every]
        return "\n".join(
            [
                "| command | what it does |",
                "|---|---|",
                *rows,
                "",
                "Type `help COMMAND` for details. Commands start with "
                f"{_code(prefix)} in chat rooms; on the console the prefix is optional.",
            ]
        )
    wanted = name.strip()
    if wanted.startswith(prefix):
        wanted = wanted[len(prefix) :]
    wanted = " ".join(wanted.lower().split())
    for spec in every:
        if spec.name == wanted:
            return _details(spec, prefix)
    guess = suggest(wanted, [spec.name for spec in every])
    hint = f"did you mean '{guess}'? Try" if guess else "try"
    form = prefix if typed is None else typed
    raise ParseError(f"help: unknown command {show(wanted)} — {hint} {form}help")


def _listed(spec: CommandSpec) -> str:
    """``spec``'s usage as the list of commands shows it: too many subcommands to list on
    a short line are ``[SUBCOMMAND]`` (each has a row of its own)."""
    usage = spec.usage
    if len(usage) > LISTED_USAGE + len(" [flags]") and spec.subcommands:
        words = "|".join(sub.name.rsplit(" ", 1)[-1] for sub in spec.subcommands)
        usage = usage.replace(f"[{words}]", "[SUBCOMMAND]", 1)
    if len(usage) <= LISTED_USAGE or not spec.flags:
        return usage
    return usage.replace(" ".join(flag.usage for flag in spec.flags), "[flags]", 1)


def _details(spec: CommandSpec, prefix: str) -> str:
    parts = [_code(spec.usage), spec.summary]
    if spec.description:
        parts.append(spec.description)
    if spec.admin_only:
        parts.append("Needs the admin role.")
    elif spec.control:
        parts.append("Needs the operator role.")
    if spec.args:
        lines = []
        for arg in spec.args:
            choices = f" One of: {', '.join(arg.choices)}." if arg.choices else ""
            optional = " (optional)" if not arg.required else ""
            lines.append(f"- {_code(arg.name)}{optional} — {arg.help}{choices}")
        parts.append("**Arguments**\n" + "\n".join(lines))
    if spec.flags:
        lines = [
            f"- {_code(flag.usage.strip('[]'))} — {flag.help}"
            + (f" One of: {', '.join(flag.choices)}." if flag.choices else "")
            for flag in spec.flags
        ]
        parts.append("**Flags**\n" + "\n".join(lines))
    if spec.subcommands:
        lines = [f"- {_code(sub.usage)} — {sub.summary}" for sub in spec.subcommands]
        parts.append("**Subcommands**\n" + "\n".join(lines))
    if spec.examples:
        body = "\n".join(prefix + example for example in spec.examples)
        parts.append(f"**Examples**\n```text\n{body}\n```")
    return "\n\n".join(parts)


def _code(text: str) -> str:
    """``text`` as a markdown code span (spec texts contain no backticks)."""
    return f"`{text}`"


def _cell(text: str) -> str:
    """``text`` safe inside a markdown table cell: pipes escaped, one line."""
    return text.replace("|", "\\|").replace("\n", " ")
