"""The stub agent: a small demo program for trying Fleetwarden without any real agent CLI.

It is a demonstration runtime, not an imitation of a real coding agent. It prints
progress lines for its prompt ("count to 5" counts to five; anything else takes three
steps) and, when Fleetwarden's offline provider stands in for Anthropic
(FLEETWARDEN_OFFLINE_PROVIDERS names it), asks it once about its prompt, so its run shows
spend; then it echoes every line it receives on stdin. Lines it understands:

    exit         say goodbye and exit with status 0
    fail N       exit with status N (to see how failures look)
    fork         start a child process that sleeps (to see group stop at work)
    lines N      print N numbered lines at once (to see how long output is shown)
    hang         say "working" one last time, then stop heartbeating and answering while
                 staying alive (to see stall detection)
    ask N        make N streamed requests to the model at ANTHROPIC_BASE_URL (the metering
                 proxy, under Fleetwarden) and print each answer (to see metering at work);
                 a prompt "ask N" does the same instead of its steps
    tool CMD     ask the operators in chat for leave to run the shell command CMD, as a
                 CLI's hook asks (the approval door beside the heartbeat URL), wait for
                 the answer and print it; the stub runs nothing (to see approvals at work)
    commit TEXT  add the line TEXT to NOTES.md in its working directory and commit it with
                 the message TEXT, as the checkout's own identity (the agent's, set by
                 Fleetwarden in the checkout); said, and nothing done, when the working
                 directory is no git checkout (the agent has no ``repo``)
    review approve TEXT, review changes TEXT
                 give the verdict TEXT on the review asked of it, as a review agent is told
                 to: ``fw-msg review approve|changes TEXT``

A prompt that asks for a review (Fleetwarden's review prompt, which tells the agent to
answer with ``fw-msg review approve``) is answered by itself, by one rule: the change it
quotes has lines, so it approves ("the change has N lines; the stub approves any change");
an empty change gets ``changes`` ("there is no change to review"). Then it says goodbye and
exits with status 0, as a review agent's run ends once it has answered.

When FLEETWARDEN_HEARTBEAT_URL and FLEETWARDEN_HEARTBEAT_TOKEN are set, it POSTs a
heartbeat there every --heartbeat-interval seconds (default: FLEETWARDEN_HEARTBEAT_INTERVAL,
else 5): ``{"state": "working"}`` while it works on its prompt, ``{"state": "waiting"}``
while it waits for input. The beats of one agent share a kept-alive connection while they
come less than :data:`KEEP_FOR` seconds apart (a thousand agents beating are then no
thousand new connections every few seconds for the endpoint to accept); one the endpoint
closed meanwhile is replaced and the beat sent again on the new one.

It exits with status 0 on SIGTERM. Standard library only; run as a script.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType, ModuleType
from typing import NoReturn
from urllib.parse import urlsplit

HEARTBEAT_URL_ENV = "FLEETWARDEN_HEARTBEAT_URL"
HEARTBEAT_TOKEN_ENV = "FLEETWARDEN_HEARTBEAT_TOKEN"
HEARTBEAT_INTERVAL_ENV = "FLEETWARDEN_HEARTBEAT_INTERVAL"
OFFLINE_PROVIDERS_ENV = "FLEETWARDEN_OFFLINE_PROVIDERS"
DEFAULT_HEARTBEAT_INTERVAL = 5.0
MIN_HEARTBEAT_INTERVAL = 0.05
# Seconds a beat's connection is used again after its answer: under the heartbeat
# endpoint's 10 s for the next request's headers, after which it closes the connection.
KEEP_FOR = 8.0
MAX_ANSWER_HEAD = 16 * 1024


def say(text: str) -> None:
    print(f"stub: {text}", flush=True)


class Heartbeat:
    """Tells Fleetwarden this agent is alive, from a daemon thread, until :meth:`stop`."""

    def __init__(self, url: str, token: str, interval: float) -> None:
        self.state = "working"  # read by the thread at each beat
        self._url = url
        self._token = token
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._lock = threading.Lock()  # one beat at a time on the connection
        self._conn: socket.socket | None = None
        self._answered_at = 0.0  # time.monotonic() of the last answer on ``_conn``

    @classmethod
    def from_env(cls, environ: Mapping[str, str], interval: float) -> Heartbeat | None:
        url, token = environ.get(HEARTBEAT_URL_ENV), environ.get(HEARTBEAT_TOKEN_ENV)
        return cls(url, token, interval) if url and token else None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No more beats; a beat already on its way lands before this returns."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        with self._lock:
            self._close()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._beat()
            self._stopped.wait(self._interval)

    def beat_once(self) -> None:
        """One beat now, outside the schedule."""
        self._beat()

    def _beat(self) -> None:
        # One HTTP/1.1 POST on a plain socket to the loopback URL (never through an
        # http_proxy from the environment): urllib.request would cost every stub agent
        # 4 MB of memory, a fleet of a thousand 4 GB.
        url = urlsplit(self._url)
        if url.scheme != "http" or url.hostname is None:
            return
        body = json.dumps({"state": self.state}).encode()
        head = (
            f"POST {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"X-Fleetwarden-Token: {self._token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        request = head.encode() + body
        with self._lock:
            kept = self._conn is not None and time.monotonic() - self._answered_at < KEEP_FOR
            if not kept:
                self._close()
            # A kept connection may have been closed by the endpoint meanwhile (a restart,
            # its cap of connections): then the beat goes again on a new one.
            for _ in range(2 if kept else 1):
                try:
                    if self._conn is None:
                        address = (url.hostname, url.port or 80)
                        self._conn = socket.create_connection(address, timeout=2.0)
                    self._conn.sendall(request)
                    keep = _answer(self._conn)  # to its end: the beat has landed
                except Exception:
                    self._close()  # Fleetwarden may be restarting; the next beat tells it
                    continue
                self._answered_at = time.monotonic()
                if not keep:
                    self._close()
                return

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None


def _answer(conn: socket.socket) -> bool:
    """Read one HTTP answer from ``conn`` to its end; whether the connection stays open.
    Raises ``OSError`` when it closes first, ``ValueError`` on what is no answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_ANSWER_HEAD:
            raise ValueError("answer head too long")
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the answer")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version = lines[0].split(" ", 1)[0]
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    if "transfer-encoding" in fields:
        return False  # not read to its end here: the connection goes with it
    length = int(fields.get("content-length", "0"))
    while len(rest) < length:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the answer")
        rest += chunk
    return version == "HTTP/1.1" and fields.get("connection") != "close" and len(rest) == length


def _sane_interval(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_HEARTBEAT_INTERVAL
    return max(value, MIN_HEARTBEAT_INTERVAL)


def _interval_from_env(environ: Mapping[str, str]) -> float:
    try:
        return _sane_interval(float(environ.get(HEARTBEAT_INTERVAL_ENV, "")))
    except ValueError:
        return DEFAULT_HEARTBEAT_INTERVAL


def ask(times: int, model: str, question: str = "") -> None:
    """Stream ``times`` answers from the Anthropic Messages API at ``ANTHROPIC_BASE_URL``:
    to ``question`` when one is given, else to numbered stub questions."""
    import urllib.request  # here: 4 MB of memory only the stubs that ask pay for

    base = os.environ.get("ANTHROPIC_BASE_URL", "")
    if not base:
        say("cannot ask: ANTHROPIC_BASE_URL is not set (is metering on?)")
        return
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for turn in range(1, times + 1):
        body = {
            "model": model or "claude-haiku-4-5",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": question or f"stub question {turn}"}],
        }
        request = urllib.request.Request(
            base.rstrip("/") + "/v1/messages",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "anthropic-version": "2023-06-01",
                "x-api-key": os.environ.get("ANTHROPIC_API_KEY", "none"),
            },
        )
        text: list[str] = []
        try:
            with opener.open(request, timeout=60.0) as response:
                for raw in response:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    delta = event.get("delta") if isinstance(event, dict) else None
                    if isinstance(delta, dict) and delta.get("type") == "text_delta":
                        text.append(str(delta.get("text", "")))
        except Exception as exc:
            say(f"ask {turn}/{times} failed: {exc}")
            continue
        say(f"answer {turn}/{times}: {''.join(text)}")


def tool(number: int, command: str) -> None:
    """Ask for leave to run ``command`` through the approval door (``POST
    /approval/<agent>``, then polled while it answers 202), and print the answer."""
    import urllib.error
    import urllib.request

    beat, token = os.environ.get(HEARTBEAT_URL_ENV, ""), os.environ.get(HEARTBEAT_TOKEN_ENV, "")
    if "/heartbeat/" not in beat or not token:
        say(f"tool {number}: cannot ask: no heartbeat URL (is it run by Fleetwarden?)")
        return
    door = beat.replace("/heartbeat/", "/approval/", 1)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(method: str, url: str, body: bytes | None) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("X-Fleetwarden-Token", token)
        request.add_header("Content-Type", "application/json")
        try:
            with opener.open(request, timeout=60.0) as reply:
                return reply.status, json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    body = {"id": f"tool-{number}", "tool": "Bash", "subject": command}
    try:
        status, reply = call("POST", door, json.dumps(body).encode())
        while status == 202:
            status, reply = call("GET", f"{door}/{reply['id']}", None)
    except (OSError, ValueError, KeyError) as exc:
        say(f"tool {number}: could not ask: {exc}")
        return
    if status != 200:
        say(f"tool {number}: could not ask: {status} {reply.get('error', '')}")
        return
    said = " ".join(str(reply.get("message") or "").split())
    verdict = "allowed" if reply.get("decision") == "allow" else "denied"
    why = f": {said}" if said else ""
    say(f"tool {number}: {command} — {verdict}{why} (the stub runs nothing)")


def _work() -> ModuleType:
    """The stub's work on a checkout and a review (``stub_work.py`` beside it), loaded when
    first asked for: run with ``-I``, its own directory is not on ``sys.path``, and a stub
    that never commits pays nothing for it."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), "stub_work.py")
    spec = importlib.util.spec_from_file_location("fleetwarden_stub_work", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REVIEW_ASKED = "fw-msg review approve"
"""What only a review prompt says: how to answer it."""


def _ask_count(text: str) -> int | None:
    match = re.fullmatch(r"ask(?: (\d+))?", text.strip())
    return min(int(match.group(1) or 1), 100) if match else None


def _idle_forever() -> NoReturn:
    while True:
        signal.pause()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Straight to the file descriptor: the signal may land while the main thread is inside
    # a print to a full terminal, and a second print there raises "reentrant call".
    with contextlib.suppress(OSError):
        os.write(sys.stdout.fileno(), b"stub: received SIGTERM, exiting\n")
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stub_agent")
    parser.add_argument("--prompt", default="")
    parser.add_argument("--model", default="")
    parser.add_argument("--step-delay", type=float, default=0.05)
    parser.add_argument("--heartbeat-interval", type=float, default=_interval_from_env(os.environ))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    heartbeat = Heartbeat.from_env(os.environ, _sane_interval(args.heartbeat_interval))
    if heartbeat is not None:
        heartbeat.start()

    say(f"started{f' with model {args.model}' if args.model else ''}")
    prompt = args.prompt.strip()
    asks = _ask_count(prompt)
    if asks is not None:
        ask(asks, args.model)
    elif REVIEW_ASKED in prompt:
        say("reviewing the change it was asked to review")
        work = _work()
        work.review(*work.reviewed(prompt))
        say("bye")
        if heartbeat is not None:
            heartbeat.stop()
        return 0
    elif prompt:
        say(f"working on: {prompt}")
        match = re.search(r"count to (\d+)", prompt, re.IGNORECASE)
        steps = min(int(match.group(1)), 1000) if match else 3
        for i in range(1, steps + 1):
            time.sleep(args.step_delay)
            say(str(i) if match else f"step {i}/{steps}")
        if "anthropic" in os.environ.get(OFFLINE_PROVIDERS_ENV, "").split(","):
            ask(1, args.model, question=prompt)  # a stand-in's answer: no spend on a real key
        say("done")
    if heartbeat is not None:
        heartbeat.state = "waiting"
    say("waiting for input (send 'exit' to quit)")

    children: list[subprocess.Popen[bytes]] = []
    tools = 0
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        words = line.split()
        if line.strip() == "exit":
            say("bye")
            return 0
        if len(words) == 2 and words[0] == "fail" and words[1].isdigit():
            say(f"failing with status {words[1]}")
            return int(words[1])
        if len(words) == 2 and words[0] == "lines" and words[1].isdigit():
            count = min(int(words[1]), 100_000)
            sys.stdout.write("".join(f"stub: line {i} of {count}\n" for i in range(1, count + 1)))
            sys.stdout.flush()
            continue
        asks = _ask_count(line)
        if asks is not None:
            ask(asks, args.model)
            continue
        if line.strip() == "hang":
            if heartbeat is not None:
                # A stall is an agent that says it is working and then goes silent (one
                # that said it waits for input may rightly stay quiet for hours).
                heartbeat.stop()
                heartbeat.state = "working"
                heartbeat.beat_once()
            say("hanging: no more heartbeats or answers until stopped")
            _idle_forever()
        if words[:1] == ["tool"] and len(words) > 1:
            tools += 1
            command = line.strip()[len("tool") :].strip()
            threading.Thread(target=tool, args=(tools, command), daemon=True).start()
            continue
        if words[:1] == ["commit"] and len(words) > 1:
            _work().commit(line.strip()[len("commit") :].strip())
            continue
        if words[:1] == ["review"] and len(words) > 1 and words[1] in ("approve", "changes"):
            _work().review(words[1], line.strip()[len("review") :].strip()[len(words[1]) :].strip())
            continue
        if line.strip() == "fork":
            child = subprocess.Popen(
                [sys.executable, "-c", "import time\nwhile True: time.sleep(60)"],
                stdin=subprocess.DEVNULL,
            )
            children.append(child)
            say(f"forked child {child.pid}")
            continue
        say(f"received: {line}")
    # stdin closed: keep running until told to stop, like an agent awaiting work.
    _idle_forever()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
