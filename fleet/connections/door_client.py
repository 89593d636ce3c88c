"""The agent's side of its doors on the heartbeat endpoint: what ``fw-forge`` (the forge door)
and ``fw-msg`` (the peer door) share — the door's URL and the agent's token from its
environment, one JSON call posted and tried again while Fleetwarden restarts, the answer
read within a cap, the usage and failure errors, and the run of one command line.

It runs inside the agent's sandbox, on this machine or a host, with only the system's
python3 (3.9 or later): it imports nothing but the standard library. The commands import
it as part of Fleetwarden when they are; run as scripts, each loads this file from the same
tree (which each host's bundle copies as it is).
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

DOOR_CLIENT: Final = Path(__file__).resolve()
"""This file: each host's bundle holds a copy, beside the commands that load it."""
URL_VAR = "FLEETWARDEN_HEARTBEAT_URL"
TOKEN_VAR = "FLEETWARDEN_HEARTBEAT_TOKEN"
TOKEN_HEADER = "X-Fleetwarden-Token"
RETRY_SECONDS = 30.0  # Fleetwarden restarting: its port refuses connections for a while
MAX_TEXT = 64 * 1024  # a door's own cap on a call
MAX_ANSWER = 1024 * 1024
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

Call = dict[str, Any]  # a call, as a door takes it (PEP 585: python3 >= 3.9)
Answer = tuple[int, "dict[str, Any] | None"]


class UsageError(Exception):
    """The command line or the environment cannot make a call; ``usage`` is the usage
    line of the (sub)command that said so."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class Failed(Exception):
    """The call was refused or could not be made; the message says why."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors raise :class:`UsageError`."""

    def error(self, message: str) -> Any:
        raise UsageError(message, self.format_usage())


def door_url(env: Mapping[str, str], door: str, command: str) -> tuple[str, str]:
    """The URL of the agent's ``door`` (``forge``, ``msg``) and its token, from ``env``;
    :class:`UsageError` naming ``command`` outside a Fleetwarden agent."""
    url, token = env.get(URL_VAR, ""), env.get(TOKEN_VAR, "")
    if not url or not token:
        raise UsageError(
            f"{URL_VAR} and {TOKEN_VAR} are not set: {command} works inside a Fleetwarden agent"
        )
    if not url.startswith("http://") or "/heartbeat/" not in url:
        raise UsageError(f"{URL_VAR} is not Fleetwarden's heartbeat URL")
    return url.replace("/heartbeat/", f"/{door}/", 1), token


def read_stdin() -> str:
    """Standard input, as text given as ``-`` (at most a call's cap, and one byte more)."""
    data = sys.stdin.buffer.read(MAX_TEXT + 1)
    return data.decode("utf-8", "replace")


def _refused_connection(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError):
        return True
    return isinstance(reason, OSError) and reason.errno == errno.ECONNREFUSED


def _lost_connection(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, (ConnectionResetError, http.client.RemoteDisconnected))


def post(
    url: str,
    token: str,
    call: Call,
    *,
    door: str,
    timeout: float,
    retry_lost: bool = False,
    retry_seconds: float = RETRY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Answer:
    """Post ``call`` to ``door`` (its name in what is said: ``forge door``); its status
    and JSON answer (``None``: no JSON). A refused connection (Fleetwarden restarting) or
    a busy answer (503: still starting) is tried again for ``retry_seconds``, and — with
    ``retry_lost``, for a call that changes nothing — a connection lost before any answer;
    otherwise a lost connection is not (the call might have been done)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    data = json.dumps(call).encode("utf-8")
    headers = {"Content-Type": "application/json", TOKEN_HEADER: token}
    deadline = clock() + retry_seconds
    pause = 0.1
    while True:
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with opener.open(request, timeout=timeout) as response:
                return response.status, _json(response.read(MAX_ANSWER + 1))
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(MAX_ANSWER + 1)
            finally:
                exc.close()
            if exc.code != 503:
                return exc.code, _json(body)
            why = "Fleetwarden is busy"
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if _refused_connection(exc):
                why = "Fleetwarden does not answer (connection refused)"
            elif retry_lost and _lost_connection(exc):
                why = "Fleetwarden closed the connection"
            else:
                raise Failed(f"cannot reach Fleetwarden's {door}: {_reason(exc)}") from None
        if clock() + pause > deadline:
            raise Failed(f"{why}, and still after {retry_seconds:g} s; try again later")
        sleep(pause)
        pause = min(pause * 2, 1.0)


def _reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return type(reason).__name__


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def failure(status: int, door: str) -> Failed:
    """What an answer with no text and no error of its own says: by its status."""
    if status == 403:
        return Failed(f"refused: the {door} does not take this agent's {TOKEN_VAR}")
    if status == 408:
        return Failed("the call did not reach Fleetwarden in time; try again")
    if status == 413:
        return Failed(f"refused: the call is over {MAX_TEXT // 1024} KiB; make the text shorter")
    return Failed(f"the {door} answered {status}")


def write(stream: Any, text: str) -> None:
    """``text`` on ``stream`` as UTF-8, ending with a newline."""
    if not text.endswith("\n"):
        text += "\n"
    stream.buffer.write(text.encode("utf-8", "replace"))
    stream.flush()


def run(
    command: str,
    door: str,
    parser: Callable[[], argparse.ArgumentParser],
    build_call: Callable[[argparse.Namespace, Callable[[], str]], Call],
    answer: Callable[[str, str, Call], str],
    argv: Sequence[str] | None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``command``'s one command line: parsed, made a call to ``door`` (its URL and
    token from ``env``, else the environment, then the call by ``build_call`` from the
    arguments, text given as ``-`` read from standard input), answered (``answer``); what
    it said on standard output, or why not on standard error; its exit status."""
    try:
        args = parser().parse_args(argv)
        url, token = door_url(os.environ if env is None else env, door, command)
        call = build_call(args, read_stdin)
    except SystemExit as exc:  # --help: printed, and done
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except UsageError as exc:
        write(sys.stderr, f"{exc.usage or parser().format_usage()}{command}: {exc}")
        return EXIT_USAGE
    try:
        text = answer(url, token, call)
    except Failed as exc:
        write(sys.stderr, f"{command}: {exc}")
        return EXIT_REFUSED
    write(sys.stdout, text)
    return EXIT_OK


def own_directory_off_path(path: str) -> None:
    """Take the directory of the script at ``path`` off ``sys.path``: run by a Python
    without ``-P`` (before 3.11), it comes first, and a module of the package there would
    be imported before one of the standard library's of the same name."""
    here = os.path.dirname(os.path.abspath(path))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
