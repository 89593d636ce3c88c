"""The git door: smart HTTP for each agent's line repo on the heartbeat endpoint, served by
git's own ``git http-backend``, so an agent fetches and pushes its branch through
Fleetwarden and never holds a credential for the upstream.

Routes (mounted on the heartbeat app, :meth:`GitDoor.mount`)::

    GET  /git/<agent>/<repo>.git/info/refs?service=git-upload-pack|git-receive-pack
    POST /git/<agent>/<repo>.git/git-upload-pack
    POST /git/<agent>/<repo>.git/git-receive-pack

HTTP Basic: the user is the agent, the password its heartbeat token (the origin URL
``http://<agent>:<token>@127.0.0.1:<port>/git/<agent>/<repo>.git``). No credentials: 401
with a Basic challenge; wrong ones, or another agent's: 403, no detail. Any other path or
method (git's dumb HTTP protocol included): 404; so is a repository the agent has no line
on. The request runs ``git http-backend`` (argv, no shell) on the line repo the ``resolve``
callable names, with a CGI environment of Fleetwarden's making: protocol v0 only (the
client's ``Git-Protocol`` header is not passed, so a fetch can only want what the line's
refs reach), no system or global config. The body is streamed to it (aiohttp has already
undone chunked and gzip transfer), its answer streamed back; a request has
:data:`TIME_LIMIT` seconds and :data:`MAX_BODY` bytes, and http-backend is killed, with
everything it started, when the client goes away. After a receive-pack the hook's
refusals (:mod:`fleet.repos.hook.receive`) are taken and handed to ``on_refusals``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from fleet.connections.loopback import AgentSecrets
from fleet.names import AgentName
from fleet.repos.door.line_repo import take_refusals
from fleet.repos.git import git_program
from fleet.repos.schema import is_repo_name
from fleet.sandbox.git.git_probe import SEALED_GIT_ENV, SYSTEM_PATH

log = logging.getLogger(__name__)

PREFIX: Final = "/git/"
REALM: Final = 'Basic realm="fleetwarden"'
TIME_LIMIT: Final = 600.0
MAX_BODY: Final = 512 * 1024 * 1024
SERVICES: Final = ("git-upload-pack", "git-receive-pack")
CHUNK: Final = 64 * 1024
MAX_CGI_HEADERS: Final = 16 * 1024
_PASSED: Final = ("content-type", "cache-control", "expires", "pragma")
_HEADER_VALUE: Final = re.compile(r"[ -~]{0,1024}")

Resolve = Callable[[AgentName, str], Awaitable[Path | None]]
"""The line repo (its ``.git`` directory) ``agent`` may use on ``repo``; None: none."""
OnRefusals = Callable[[AgentName, str, list[dict[str, str]]], Awaitable[None]]
"""Told ``(agent, repo, refusals)`` after a push the hook refused something of."""


def basic_credentials(request: web.Request) -> tuple[str, str] | None:
    """The user and password of a Basic ``Authorization`` header; None when there is no
    such header; ``("", "")`` when there is one that cannot be read."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return "", ""
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else ("", "")


def git_agent(request: web.Request, secrets: AgentSecrets) -> AgentName | None:
    """The agent a git door request is from: its path's agent, when the request's Basic
    credentials are that agent's name and token."""
    raw = request.match_info.get("agent", "")
    given = basic_credentials(request)
    if given is None or given[0] != raw:
        return None
    return secrets.matches(raw, given[1])


class GitDoor:
    """The ``/git/`` routes of the heartbeat endpoint (:meth:`mount`)."""

    def __init__(
        self,
        resolve: Resolve,
        on_refusals: OnRefusals,
        *,
        time_limit: float = TIME_LIMIT,
        max_body: int = MAX_BODY,
    ) -> None:
        self._resolve = resolve
        self._on_refusals = on_refusals
        self._time_limit = time_limit
        self._max_body = max_body
        self._secrets: AgentSecrets | None = None
        self._backend: str | None = None

    def mount(self, app: web.Application, secrets: AgentSecrets) -> None:
        """Add the routes to ``app``; tokens are checked against ``secrets``."""
        self._secrets = secrets
        path = PREFIX + "{agent}/{repo}.git/{tail:.*}"
        app.router.add_route("GET", path, self._serve)
        app.router.add_route("POST", path, self._serve)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        if basic_credentials(request) is None:
            return web.Response(status=401, headers={"WWW-Authenticate": REALM})
        agent = git_agent(request, self._secrets) if self._secrets is not None else None
        if agent is None:
            return web.Response(status=403)
        repo, tail = request.match_info["repo"], request.match_info["tail"]
        service = _service(request, tail)
        if service is None or not is_repo_name(repo):
            return web.Response(status=404)
        line = await self._resolve(agent, repo)
        if line is None:
            return web.Response(status=404, text=f"{agent} has no branch on {repo}\n")
        length = request.content_length
        if length is not None and length > self._max_body:
            return web.Response(status=413)
        query = f"service={service}" if tail == "info/refs" else ""
        run = _Run(request, self._max_body)
        try:
            async with asyncio.timeout(self._time_limit):
                response = await run.serve(
                    await self._program(), _cgi_env(request, agent, line, tail, query)
                )
        except TimeoutError:
            log.warning("git door: a request of %s took over %.0f s", agent, self._time_limit)
            response = run.abort(504)
        finally:
            await run.end()
        if request.method == "POST" and service == "git-receive-pack":
            await self._refusals(agent, repo, line)  # counted before the client hears the end
        await run.finish()
        return response

    async def _refusals(self, agent: AgentName, repo: str, line: Path) -> None:
        try:
            refusals = await asyncio.to_thread(take_refusals, line)
            if refusals:
                await self._on_refusals(agent, repo, refusals)
        except Exception:
            log.exception("git door: the refusals of %s's push could not be counted", agent)

    async def _program(self) -> str:
        """git-http-backend, by its absolute path in git's exec path."""
        if self._backend is None:
            proc = await asyncio.create_subprocess_exec(
                git_program(),
                "--exec-path",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                stdin=asyncio.subprocess.DEVNULL,
                env={"PATH": SYSTEM_PATH, "HOME": "/nonexistent"},
            )
            out, _ = await proc.communicate()
            where = out.decode().strip()
            if proc.returncode != 0 or not os.path.isabs(where):
                raise RuntimeError("git --exec-path did not say where git's programs are")
            self._backend = os.path.join(where, "git-http-backend")
        return self._backend


def _service(request: web.Request, tail: str) -> str | None:
    """The smart-HTTP service a request asks for; None for anything else."""
    if tail == "info/refs" and request.method == "GET":
        wanted = request.query.getall("service", [])
        if len(request.query) == 1 and len(wanted) == 1 and wanted[0] in SERVICES:
            return str(wanted[0])
        return None
    if tail in SERVICES and request.method == "POST" and not request.query_string:
        return tail
    return None


def _cgi_env(request: web.Request, agent: str, line: Path, tail: str, query: str) -> dict[str, str]:
    content_type = request.headers.get("Content-Type", "")
    return {
        **SEALED_GIT_ENV,
        "GIT_PROJECT_ROOT": str(line.parent),
        "PATH_INFO": f"/{line.name}/{tail}",
        "GIT_HTTP_EXPORT_ALL": "1",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type if _HEADER_VALUE.fullmatch(content_type) else "",
        "REMOTE_USER": agent,
        "REMOTE_ADDR": "127.0.0.1",
    }


class _Run:
    """One http-backend run for one request."""

    def __init__(self, request: web.Request, max_body: int) -> None:
        self._request = request
        self._max_body = max_body
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._response: web.StreamResponse | None = None
        self._too_big = False
        self._aborted = False
        self._errors = b""

    async def serve(self, program: str, env: dict[str, str]) -> web.StreamResponse:
        self._proc = proc = await asyncio.create_subprocess_exec(
            program,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            cwd=env["GIT_PROJECT_ROOT"],
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        pumping = asyncio.create_task(self._pump(proc.stdin))
        self._tasks = [
            pumping,
            asyncio.create_task(self._drain(proc.stderr)),
            asyncio.create_task(self._watch()),
        ]
        head, rest = await _cgi_head(proc.stdout)
        # http-backend answers its headers before it reads the body: the answer begins
        # only once the whole body is with it, so one past the cap is still refused.
        await pumping
        if self._too_big:
            return web.Response(status=413)
        if head is None:
            log.warning("git door: git http-backend gave no answer: %r", self._errors[-300:])
            return web.Response(status=502)
        status, headers = head
        response = self._response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(self._request)
        try:
            if rest:
                await response.write(rest)
            while chunk := await proc.stdout.read(CHUNK):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            self._kill()  # the client went away
            self._aborted = True
        return response

    async def finish(self) -> None:
        """End the answer begun (unless it was cut short)."""
        if self._response is not None and not self._aborted:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._response.write_eof()

    def abort(self, status: int) -> web.StreamResponse:
        """The answer when the run is cut short: ``status``, or the connection closed
        when the answer had begun."""
        self._kill()
        self._aborted = True
        if self._response is None:
            return web.Response(status=status)
        transport = self._request.transport
        if transport is not None:
            transport.close()
        return self._response

    async def end(self) -> None:
        """Wait for http-backend to be gone (killed if it is still there)."""
        proc = self._proc
        if proc is not None:
            if proc.returncode is None:
                try:
                    async with asyncio.timeout(5.0):
                        await proc.wait()
                except TimeoutError:
                    self._kill()
            await asyncio.shield(proc.wait())
            if proc.returncode not in (0, None):
                log.debug(
                    "git door: git http-backend exited %s: %r", proc.returncode, self._errors[-300:]
                )
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    async def _pump(self, stdin: asyncio.StreamWriter) -> None:
        """The request's body into http-backend, :data:`MAX_BODY` at most."""
        size = 0
        try:
            if self._request.method == "POST":
                while chunk := await self._request.content.read(CHUNK):
                    size += len(chunk)
                    if size > self._max_body:
                        self._too_big = True
                        self._kill()
                        return
                    stdin.write(chunk)
                    await stdin.drain()
        except (ConnectionError, BrokenPipeError):
            pass  # http-backend stopped reading: its answer says why
        except Exception:
            self._kill()  # the body could not be read: the client went away
        finally:
            with contextlib.suppress(Exception):
                stdin.close()

    async def _drain(self, stderr: asyncio.StreamReader) -> None:
        while chunk := await stderr.read(CHUNK):
            self._errors = (self._errors + chunk)[-4096:]

    async def _watch(self) -> None:
        """Kill http-backend when the client hangs up."""
        while self._proc is not None and self._proc.returncode is None:
            transport = self._request.transport
            if transport is None or transport.is_closing():
                self._kill()
                return
            await asyncio.sleep(0.5)


async def _cgi_head(
    stdout: asyncio.StreamReader,
) -> tuple[tuple[int, dict[str, str]] | None, bytes]:
    """The CGI answer's status and the headers passed on, and what followed them."""
    data = b""
    while True:
        at = min((i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0), default=-1)
        if at >= 0:
            break
        chunk = await stdout.read(CHUNK)
        if not chunk or len(data) > MAX_CGI_HEADERS:
            return None, b""
        data += chunk
    sep = 4 if data[at : at + 4] == b"\r\n\r\n" else 2
    head, rest = data[:at], data[at + sep :]
    status = 200
    headers: dict[str, str] = {}
    for raw in head.decode("latin-1").splitlines():
        name, _, value = raw.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "status":
            code = value.split(" ", 1)[0]
            status = int(code) if code.isdigit() and 100 <= int(code) <= 599 else 502
        elif name in _PASSED and _HEADER_VALUE.fullmatch(value):
            headers[name.title()] = value
    return (status, headers), rest
