"""A real git upstream for tests: bare repositories served over smart HTTP by git's own
``git http-backend``, behind a loopback server that demands the repository's token.

It takes GitHub's convention — HTTP Basic with user ``x-access-token`` and the token as
password — or, made with ``any_user``, GitLab's: any non-blank user with the token as
password (the users seen are kept in :attr:`GitUpstream.users`); it refuses every other
credential with a 401 (git then says ``Authentication
failed``), so a test proves a fetch or push carried the real token, and that nothing
reached the upstream without it: every request is recorded with whether it was
authorised (:attr:`GitUpstream.requests`), and :meth:`GitUpstream.pushes` lists the
receive-pack posts that landed.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

GIT_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Upstream",
    "GIT_AUTHOR_EMAIL": "upstream@example.com",
    "GIT_COMMITTER_NAME": "Upstream",
    "GIT_COMMITTER_EMAIL": "upstream@example.com",
}


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the upstream answered."""

    method: str
    path: str
    authorised: bool
    status: int


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    """Run git as the upstream's owner (a test's own), its output."""
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


class GitUpstream:
    """Bare repositories under ``root`` served at ``http://127.0.0.1:PORT/NAME.git``."""

    def __init__(self, root: Path, token: str, *, any_user: bool = False) -> None:
        self.root = root
        self.token = token
        self.any_user = any_user
        self.users: set[str] = set()
        self.requests: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._backend = Path(git("--exec-path")) / "git-http-backend"

    # -- repositories --------------------------------------------------------------------

    def create(self, name: str, files: dict[str, str], branch: str = "main") -> Path:
        """A bare repository ``name`` whose ``branch`` holds ``files`` in one commit."""
        bare = self.root / f"{name}.git"
        git("init", "-q", "--bare", "-b", branch, str(bare))
        git("config", "http.receivepack", "true", cwd=bare)
        work = self.root / f".{name}-seed"
        git("init", "-q", "-b", branch, str(work))
        for path, text in files.items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "the first commit", cwd=work)
        git("push", "-q", str(bare), f"{branch}:{branch}", cwd=work)
        return bare

    def commit(self, name: str, files: dict[str, str], branch: str = "main") -> str:
        """Another commit on ``branch`` of ``name``, as a teammate would push it; its sha."""
        work = self.root / f".{name}-seed"
        git("fetch", "-q", str(self.root / f"{name}.git"), branch, cwd=work)
        git("checkout", "-q", "-B", branch, "FETCH_HEAD", cwd=work)
        for path, text in files.items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", "a teammate's commit", cwd=work)
        git("push", "-q", str(self.root / f"{name}.git"), f"{branch}:{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    def tip(self, name: str, branch: str = "main") -> str | None:
        found = git("rev-parse", "--verify", "-q", f"refs/heads/{branch}",
                    cwd=self.root / f"{name}.git", check=False)  # fmt: skip
        return found or None

    def branches(self, name: str) -> dict[str, str]:
        out = git(
            "for-each-ref", "--format=%(refname) %(objectname)", cwd=self.root / f"{name}.git"
        )
        return {ref: sha for ref, sha in (line.split() for line in out.splitlines())}

    def show(self, name: str, *args: str) -> str:
        return git(*args, cwd=self.root / f"{name}.git")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def pushes(self) -> list[Seen]:
        """The receive-pack posts that were let in."""
        return [
            seen
            for seen in self.requests
            if seen.method == "POST" and seen.path.endswith("git-receive-pack") and seen.authorised
        ]

    # -- serving -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    def start(self) -> GitUpstream:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                upstream._serve(self)

            def do_POST(self) -> None:
                upstream._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        if not hmac.compare_digest(password, self.token):
            return False
        self.users.add(user)
        return bool(user.strip()) if self.any_user else user == "x-access-token"

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        authorised = self._authorised(handler.headers.get("Authorization"))
        if not authorised:
            self.requests.append(Seen(handler.command, parts.path, False, 401))
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="upstream"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        body = _body(handler)
        env = {
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": parts.path,
            "REQUEST_METHOD": handler.command,
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": "127.0.0.1",
        }
        if handler.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = handler.headers["Content-Encoding"]
        if handler.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = handler.headers["Git-Protocol"]
        done = subprocess.run([str(self._backend)], input=body, env=env, capture_output=True)
        head, _, rest = done.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.requests.append(Seen(handler.command, parts.path, True, status))
        handler.send_response(status)
        for key, value in headers:
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(rest)))
        handler.end_headers()
        handler.wfile.write(rest)


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request's body, chunked or not."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


@contextlib.contextmanager
def served_app(root: Path, token: str, *, any_user: bool = False) -> Iterator[GitUpstream]:
    """An upstream under ``root`` holding ``app`` (a README on ``main``), served for the
    block and stopped however it ends (``any_user``: GitLab's convention)."""
    root.mkdir(parents=True, exist_ok=True)
    upstream = GitUpstream(root, token, any_user=any_user)
    upstream.create("app", {"README.md": "# app\n"})
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()


def token_anywhere(token: str, *roots: Path) -> list[Path]:
    """Files under ``roots`` whose bytes hold ``token`` (symlinks not followed)."""
    found = []
    needle = token.encode()
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                try:  # regular files only: a run's stdin FIFO would block a read
                    if stat.S_ISREG(path.lstat().st_mode) and needle in path.read_bytes():
                        found.append(path)
                except OSError:
                    continue
    return found
