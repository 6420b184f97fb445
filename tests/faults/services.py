"""Private Redis and PostgreSQL servers for the fault suite, each on its own free loopback port.

The fault tests kill and restart these, never the shared services other tests (and other
engineers) use. Both are started from the binaries Debian installs (`redis-server`,
`/usr/lib/postgresql/*/bin/{initdb,pg_ctl}`); PostgreSQL refuses to run as root, so as root its
commands run as the `postgres` OS user through `runuser`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 15.0) -> None:
    """Block until something accepts connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def wait_for_port_closed(port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                pass
        except OSError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"127.0.0.1:{port} still accepts connections after {timeout} s")


# -- Redis -------------------------------------------------------------------------------------


def redis_binary() -> str | None:
    return shutil.which("redis-server")


class PrivateRedis:
    """A `redis-server` subprocess on a free port, with nothing kept on disk."""

    def __init__(self) -> None:
        binary = redis_binary()
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rabta-fault-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-command, as on a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        wait_for_port_closed(self.port)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- PostgreSQL --------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def _postgres_user() -> str | None:
    """Who runs the cluster: `postgres` when we are root (PostgreSQL refuses root), else us."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise FileNotFoundError("running as root and there is no `postgres` OS user") from exc
    if shutil.which("runuser") is None:
        raise FileNotFoundError("running as root and `runuser` is missing")
    return "postgres"


class PrivateCluster:
    """A throw-away PostgreSQL cluster (initdb in a temp folder) on a free loopback port."""

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        if bin_dir is None or not (bin_dir / "pg_ctl").exists():
            raise FileNotFoundError("no /usr/lib/postgresql/*/bin/initdb and pg_ctl")
        self.bin = bin_dir
        self.user = _postgres_user()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="rabta-fault-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C",
        )

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, check=check, timeout=60, cwd=self.root
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
            " -c max_connections=100 -c shared_buffers=32MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")
        wait_for_port(self.port)

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: every backend is killed at once, no checkpoint; recovery on start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
        wait_for_port_closed(self.port)

    def create_database(self, name: str) -> None:
        psql = self.bin / "psql"
        command = [str(psql) if psql.exists() else "psql"]
        command += ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c"]
        command += [f'CREATE DATABASE "{name}"']
        subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
