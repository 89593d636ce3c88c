"""What a roster edit must leave whole in the entries it touches, judged on the edited
data before the config's own check, so that a refusal names the one command that works
rather than a key of a file the edit never wrote: a ``command`` agent's ``argv`` beside
its ``runtime`` (the rule of :mod:`fleet.agents.command_argv`), and an agent removed
while a peer's ``talks_to`` still names it.

Pure: each function reads the entries and the edit's words and raises
:class:`CoherenceError` with the command to type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fleet.agents.command_argv import COMMAND_RUNTIME, argv_fault

EXAMPLE_ARGV = "[python3, -m, mybot]"
"""The command line a refusal shows when the one typed cannot be shown."""


class CoherenceError(Exception):
    """Keys an edit leaves at odds (the message says which command sets them together)."""


def check_added(entry: Mapping[str, object], name: str, typed: Mapping[str, str]) -> None:
    """``roster add NAME``'s new ``entry`` (``typed``: the keys given as YAML text)."""
    runtime, argv = entry.get("runtime"), entry.get("argv")
    shown = typed.get("argv", EXAMPLE_ARGV)
    example = f"`roster add {name} --runtime {COMMAND_RUNTIME} --argv '{EXAMPLE_ARGV}'`"
    _check_shape(argv, f"--argv is the command line as a list, program first: {example}")
    fault = argv_fault(argv, runtime)
    if fault == "argv_missing":
        raise CoherenceError(
            f"runtime '{COMMAND_RUNTIME}' runs the command line it is given: give it with "
            f"--argv in the same command: {example}"
        )
    if fault == "argv_program":
        raise CoherenceError(f"argv[0], the program to run, is empty: {example}")
    if fault == "argv_forbidden":
        raise CoherenceError(
            f"--argv is only for runtime '{COMMAND_RUNTIME}', and {name}'s runtime is "
            f"{runtime!r}: leave --argv out, or `roster add {name} --runtime "
            f"{COMMAND_RUNTIME} --argv '{shown}'`"
        )


def check_set(entry: Mapping[str, object], name: str, pairs: Sequence[tuple[str, str]]) -> None:
    """The ``entry`` of ``name`` once ``roster set`` gave it ``pairs`` (as typed)."""
    given = dict(pairs)
    if "runtime" not in given and "argv" not in given:
        return
    runtime, argv = entry.get("runtime"), entry.get("argv")
    _check_shape(
        argv,
        f"argv is the command line as a list, program first: `roster set {name} argv "
        f"{EXAMPLE_ARGV}`",
    )
    fault = argv_fault(argv, runtime)
    if fault == "argv_missing" and "argv" not in given:
        raise CoherenceError(
            f"runtime '{COMMAND_RUNTIME}' runs the command line it is given: give its argv "
            f"in the same command: `roster set {name} runtime {COMMAND_RUNTIME} argv "
            f"{EXAMPLE_ARGV}`"
        )
    if fault == "argv_missing":
        raise CoherenceError(
            f"{name}'s runtime is '{COMMAND_RUNTIME}', which needs argv: give another "
            f"(`roster set {name} argv {EXAMPLE_ARGV}`), or take argv out with the runtime "
            f"changed in the same command: `roster set {name} runtime R argv null`"
        )
    if fault == "argv_program":
        raise CoherenceError(
            f"argv[0], the program to run, is empty: `roster set {name} argv {EXAMPLE_ARGV}`"
        )
    if fault == "argv_forbidden" and "argv" in given:
        own = f"is {runtime!r}" if runtime is not None else "is not set in its entry"
        raise CoherenceError(
            f"argv is only for runtime '{COMMAND_RUNTIME}', and {name}'s runtime {own}: set "
            f"both in one command: `roster set {name} runtime {COMMAND_RUNTIME} argv "
            f"{given['argv']}`"
        )
    if fault == "argv_forbidden":
        raise CoherenceError(
            f"{name} has argv, which only runtime '{COMMAND_RUNTIME}' takes: take it out in "
            f"the same command: `roster set {name} runtime {given['runtime']} argv null`"
        )


def check_removed(agents: Sequence[object], name: str) -> None:
    """``roster remove NAME`` over the roster's ``agents``: refused while another agent's
    ``talks_to`` names it, with the ``roster set`` that takes it out of each."""
    fixes, peers = [], []
    for entry in agents:
        if not isinstance(entry, Mapping) or entry.get("name") == name:
            continue
        listed = entry.get("talks_to")
        if not isinstance(listed, Sequence) or isinstance(listed, str) or name not in listed:
            continue
        peer = str(entry.get("name"))
        rest = [str(each) for each in listed if each != name]
        value = f"[{', '.join(rest)}]" if rest else "null"
        peers.append(peer)
        fixes.append(f"`roster set {peer} talks_to {value}`")
    if peers:
        who = " and ".join(peers)
        raise CoherenceError(
            f"{name!r} is a peer of {who} (named in talks_to): take it out of "
            f"{'their lists' if len(peers) > 1 else 'the list'} first — {'; '.join(fixes)} "
            f"— then `roster remove {name}`"
        )


def _check_shape(argv: object, said: str) -> None:
    """Refuse an ``argv`` that is no list of strings (a scalar, a mapping, a nested list)."""
    if argv is None:
        return
    if not isinstance(argv, Sequence) or isinstance(argv, str):
        raise CoherenceError(said)
    if not all(isinstance(word, str) for word in argv):
        raise CoherenceError(f"{said} — each word is text: quote a number or true/false ('5')")
