"""The allow-list's forward proxy: Debian's tinyproxy, one per distinct ``egress_allow``.

A locked agent with an allow-list reaches the hosts on it, and only those, through a
tinyproxy that Fleetwarden starts on 127.0.0.1 (a free port, its own config and filter
file under ``<state_dir>/sandbox/tinyproxy/<id>/``) and stops when it stops. The filter
is one anchored regular expression per host (``^github\\.com$``), denied by default,
matched against the host of every request; CONNECT goes to port 443 only. A system
tinyproxy service is never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import signal
import socket
from collections.abc import Sequence
from pathlib import Path

from fleet.errors import LaunchFailed

log = logging.getLogger(__name__)

_START_TIMEOUT = 10.0
_STOP_GRACE = 3.0


def host_pattern(host: str) -> str:
    """The filter line that lets ``host`` through, and nothing else."""
    return f"^{re.escape(host.lower())}$"


def config_text(port: int, filter_path: Path, log_path: Path, pid_path: Path) -> str:
    """tinyproxy's configuration: loopback only, the filter denies by default."""
    return "\n".join(
        [
            f"Port {port}",
            "Listen 127.0.0.1",
            "Timeout 600",
            "MaxClients 100",
            "Allow 127.0.0.1",
            f'Filter "{filter_path}"',
            "FilterDefaultDeny Yes",
            "FilterExtended Yes",
            "FilterCaseSensitive No",
            "FilterURLs No",
            "ConnectPort 443",
            "DisableViaHeader Yes",
            f'LogFile "{log_path}"',
            "LogLevel Info",
            f'PidFile "{pid_path}"',
            "",
        ]
    )


def allow_id(allow: Sequence[str]) -> str:
    """A short name for one allow-list (its hosts, sorted)."""
    return hashlib.sha256("\n".join(sorted(allow)).encode()).hexdigest()[:12]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EgressProxies:
    """The running tinyproxies, one per allow-list, started on first use."""

    def __init__(self, root: Path, *, program: str = "tinyproxy") -> None:
        self._root = root
        self._program = program
        self._running: dict[str, tuple[asyncio.subprocess.Process, int]] = {}
        self._lock = asyncio.Lock()

    async def port_for(self, allow: Sequence[str]) -> int:
        """The port of the tinyproxy that enforces ``allow`` (started if need be)."""
        key = allow_id(allow)
        async with self._lock:
            running = self._running.get(key)
            if running is not None and running[0].returncode is None:
                return running[1]
            process, port = await self._start(key, allow)
            self._running[key] = (process, port)
            return port

    async def _start(
        self, key: str, allow: Sequence[str]
    ) -> tuple[asyncio.subprocess.Process, int]:
        where = self._root / key
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        filter_path = where / "filter"
        filter_path.write_text("".join(host_pattern(h) + "\n" for h in sorted(allow)))
        conf = where / "tinyproxy.conf"
        _end_stale(where / "proxy.pid", conf)
        port = _free_port()
        conf.write_text(config_text(port, filter_path, where / "tinyproxy.log", where / "pid"))
        try:
            process = await asyncio.create_subprocess_exec(
                self._program,
                "-d",
                "-c",
                str(conf),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchFailed(
                f"the allow-list's forward proxy could not start ({self._program}: "
                f"{exc.strerror}): install tinyproxy (apt-get install tinyproxy)"
            ) from exc
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT
        while loop.time() < deadline and process.returncode is None:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            (where / "proxy.pid").write_text(str(process.pid))
            log.info("tinyproxy for allow-list %s listens on 127.0.0.1:%d", key, port)
            return process, port
        await _end(process)
        log_path = where / "tinyproxy.log"
        raise LaunchFailed(
            f"the allow-list's forward proxy (tinyproxy) did not start; see {log_path}"
        )

    async def stop(self) -> None:
        """Stop every tinyproxy this started."""
        running, self._running = list(self._running.values()), {}
        await asyncio.gather(*(_end(process) for process, _ in running))


def _end_stale(pid_file: Path, conf: Path) -> None:
    """End a tinyproxy an earlier Fleetwarden left running with this config (it was killed
    before it could stop it): only a process whose command line names ``conf``."""
    try:
        pid = int(pid_file.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(conf).encode() in cmdline.split(b"\0"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def _end(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), _STOP_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
