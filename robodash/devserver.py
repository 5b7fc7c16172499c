"""`make run`: the whole of robodash on one machine with nothing but Python.

Starts robodash's own PostgreSQL and Redis (robodash.embedded) unless DATABASE_URL and
CELERY_BROKER_URL name others, migrates, seeds the demo (`seed_demo`), then runs the simulator,
the web server, a Celery worker and beat as child processes, their output prefixed with their
names, until Ctrl-C.

Each child runs in its own session, so the terminal's Ctrl-C reaches only this supervisor,
which then stops them in order (beat, worker and web first; then the simulator, so in-flight
sends still get an answer; the database and broker last) and kills whatever is left of each
process group: no orphans. Each child also gets a signal of its own if the supervisor dies.

This is a supervisor of its own rather than honcho or a Procfile runner because the start-up is
ordered (the database must answer before migrate, the simulator before the worker sends) and so
is the stop (the servers outlive their clients), which those tools do not do.

Django is not imported here at module level: the supervisor only reads the settings module
to report which database and broker are in use.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import importlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from robodash import embedded
from robodash.demo import (
    DEMO_ACCOUNT,
    DEMO_RETRY_DELAYS,
    SIMULATOR_SPEED,
    demo_admin_password,
    demo_api_key,
    demo_shopify_secrets,
)

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 60.0  # seconds for the simulator and the web server to accept connections
STOP_GRACE = 15.0  # seconds a child may take to stop (a worker finishes its current task)


class DevServerError(Exception):
    """A reason to stop, said plainly to the person at the terminal."""


class Interrupted(Exception):
    """Ctrl-C, SIGTERM or SIGHUP reached the supervisor."""


# --- Children ---------------------------------------------------------------------------------


def _die_with_parent(signum: int) -> Callable[[], None]:
    """In the child, before exec: get `signum` if the supervisor itself is killed (Linux)."""

    def arrange() -> None:
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signum)

    return arrange


# Children stop in this order: the apps, then the simulator, then the servers they talk to.
APP, SIMULATOR, SERVER = 0, 1, 2


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    label: str
    rank: int = APP
    stop_signal: int = signal.SIGTERM
    pending: bytes = field(default=b"")
    open: bool = True


class Supervisor:
    def __init__(self) -> None:
        self.env: dict[str, str] = {}  # the children's environment, set once decided
        self.children: list[Child] = []
        self.selector = selectors.DefaultSelector()
        self.hurry = False  # a second Ctrl-C while stopping: kill instead of waiting
        self.label_width = 9

    def start(
        self,
        name: str,
        argv: list[str],
        *,
        rank: int = APP,
        stop_signal: int = signal.SIGTERM,
        **popen: Any,
    ) -> Child:
        process = subprocess.Popen(
            argv,
            cwd=BASE_DIR,
            env=popen.pop("env", self.env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # out of the terminal's process group: Ctrl-C is ours to relay
            preexec_fn=_die_with_parent(stop_signal) if sys.platform == "linux" else None,
            **popen,
        )
        label = f"{name:<{self.label_width}}| "
        child = Child(name, process, label, rank=rank, stop_signal=stop_signal)
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        self.selector.register(process.stdout, selectors.EVENT_READ, child)
        self.children.append(child)
        say(f"started {name} (pid {process.pid})")
        return child

    def pump(self, timeout: float) -> None:
        """Copy children's output to ours, line by line with their names, for up to `timeout`."""
        if not self.selector.get_map():
            time.sleep(timeout)
            return
        for key, _ in self.selector.select(timeout):
            self._read(key.data)

    def _read(self, child: Child) -> None:
        stdout = child.process.stdout
        assert stdout is not None
        try:
            chunk = os.read(stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if not chunk:
            self._close(child)
            return
        *lines, child.pending = (child.pending + chunk).split(b"\n")
        for line in lines:
            self._emit(child, line)

    def _emit(self, child: Child, line: bytes) -> None:
        write(child.label + line.decode("utf-8", errors="replace").rstrip("\r") + "\n")

    def _close(self, child: Child) -> None:
        if child.pending:
            self._emit(child, child.pending)
            child.pending = b""
        if child.open:
            assert child.process.stdout is not None
            self.selector.unregister(child.process.stdout)
            child.process.stdout.close()
            child.open = False

    def check_alive(self) -> None:
        """Raise if a child ended on its own: the demo is not whole without it."""
        for child in self.children:
            code = child.process.poll()
            if code is not None:
                self._drain(child, deadline=time.monotonic() + 1)
                raise DevServerError(f"{child.name} exited with code {code}; stopping the others")

    def _drain(self, child: Child, deadline: float) -> None:
        while child.open and time.monotonic() < deadline:
            self.pump(0.05)
        if child.open:  # a grandchild still holds the pipe: stop reading it
            self._close(child)

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise DevServerError(f"{what} did not start within {timeout:.0f}s")
            self.pump(0.2)

    def run_forever(self) -> None:
        while True:
            self.check_alive()
            self.pump(0.5)

    def stop_all(self) -> None:
        """Stop beat, worker and web, then the simulator, then the database and broker; kill
        what outlives its grace period."""
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._hurry)
        for rank in (APP, SIMULATOR, SERVER):
            group = [c for c in self.children if c.rank == rank]
            if group:
                self._stop(group)
        for child in self.children:
            self._drain(child, deadline=time.monotonic() + 1)
        self.selector.close()

    def _stop(self, group: list[Child]) -> None:
        for child in group:
            if child.process.poll() is None:
                # SIGTERM is a warm shutdown for Celery: the worker finishes the task in hand.
                # PostgreSQL is told SIGINT, its fast shutdown, once its clients are gone.
                child.process.send_signal(child.stop_signal)
        deadline = time.monotonic() + STOP_GRACE
        while (
            any(c.process.poll() is None for c in group)
            and time.monotonic() < deadline
            and not self.hurry
        ):
            self.pump(0.1)
        for child in group:
            if child.process.poll() is None:
                when = "at once" if self.hurry else f"within {STOP_GRACE:.0f}s"
                say(f"{child.name} did not stop {when}; killing it")
                _kill_group(child.process.pid)
            child.process.wait()
            # Anything left in the child's process group (a pool process whose parent died
            # first) would be an orphan: kill it too.
            if _group_exists(child.process.pid):
                say(f"killing what was left of {child.name}")
                _kill_group(child.process.pid)
            say(f"stopped {child.name}")

    def _hurry(self, signum: int, frame: FrameType | None) -> None:
        self.hurry = True


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# --- Start-up checks and messages ---------------------------------------------------------------


def write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError:
        # Our own output is gone (`make run | head`, a closed terminal): carry on regardless,
        # above all while stopping the children.
        pass


def say(message: str) -> None:
    write(f"{'robodash':<9}| {message}\n")


def port_is_free(port: int) -> bool:
    """Whether a server could listen on HOST:port now (as runserver would, SO_REUSEADDR set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def without_password(url: str) -> str:
    """A URL fit to print: the password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def describe_database(settings: ModuleType) -> str:
    database = settings.DATABASES["default"]
    if settings.EMBEDDED_DATABASE:
        return (
            f"PostgreSQL of robodash's own, data in {embedded_postgres(settings).data_dir} "
            "(set DATABASE_URL to use another)"
        )
    where = f"{database.get('HOST') or 'localhost'}:{database.get('PORT') or 5432}"
    return f"PostgreSQL database {database['NAME']!r} on {where} (DATABASE_URL)"


def describe_broker(settings: ModuleType) -> str:
    if settings.EMBEDDED_BROKER:
        redis = embedded_redis(settings)
        return f"Redis of robodash's own, on {redis.socket} (set CELERY_BROKER_URL to use another)"
    return f"{without_password(settings.CELERY_BROKER_URL)} (CELERY_BROKER_URL)"


def embedded_postgres(settings: ModuleType) -> embedded.EmbeddedPostgres:
    return embedded.make_run_postgres(Path(settings.VAR_DIR))


def embedded_redis(settings: ModuleType) -> embedded.EmbeddedRedis:
    return embedded.EmbeddedRedis(Path(settings.VAR_DIR) / "redis")


def shopify_stand_in_url(port: int) -> str:
    return f"http://{HOST}:{port}/admin/api/2025-07/graphql.json"


def simulator_url(port: int) -> str:
    return f"http://{HOST}:{port}/api/v1/"


def points_at_simulator(base_url: str, sim_port: int) -> bool:
    parts = urlsplit(base_url)
    return parts.hostname in ("127.0.0.1", "localhost") and parts.port == sim_port


def load_settings() -> ModuleType:
    """The settings module as Django would read it, or a plain message saying what is wrong."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        return importlib.import_module("robodash.settings")
    except ImproperlyConfigured as error:
        raise DevServerError(f"settings: {error}") from None


def manage(env: dict[str, str], name: str, *args: str) -> None:
    """Run one manage.py command to completion, its output prefixed like the children's."""
    argv = [sys.executable, str(BASE_DIR / "manage.py"), *args]
    process = subprocess.Popen(
        argv,
        cwd=BASE_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            write(f"{name:<9}| " + line.decode("utf-8", errors="replace"))
        code = process.wait()
    except BaseException:
        process.terminate()  # interrupted: leave nothing running behind us
        process.wait()
        raise
    if code != 0:
        raise DevServerError(f"`manage.py {' '.join(args)}` failed with code {code}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m robodash.devserver",
        description="Run robodash locally: simulator, web server, Celery worker and beat.",
    )
    parser.add_argument(
        "--web-port",
        type=int,
        default=os.environ.get("ROBODASH_WEB_PORT", "8000"),  # argparse applies `type`
        help="port of the web server on 127.0.0.1 (default 8000, or ROBODASH_WEB_PORT)",
    )
    parser.add_argument(
        "--sim-port",
        type=int,
        default=os.environ.get("ROBODASH_SIM_PORT", "8001"),  # argparse applies `type`
        help="port of the provider simulator on 127.0.0.1 (default 8001, or ROBODASH_SIM_PORT)",
    )
    parser.add_argument(
        "--shops-port",
        type=int,
        default=os.environ.get("ROBODASH_SHOPS_PORT", "8002"),  # argparse applies `type`
        help="port of the shop stand-ins (Shopify, WooCommerce) on 127.0.0.1 (default 8002, or "
        "ROBODASH_SHOPS_PORT)",
    )
    return parser.parse_args(argv)


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


# --- Main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    # The demo needs no set-up: DEBUG on supplies development SECRET_KEY and encryption keys.
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
    # The demo's shop stand-ins are on 127.0.0.1 over plain http: let the workers reach them.
    os.environ.setdefault("ROBODASH_ALLOW_PRIVATE_TARGETS", "true")
    supervisor = Supervisor()
    code = 0
    try:
        start_demo(supervisor, args)
        supervisor.run_forever()
    except Interrupted:
        say("stopping…")
    except DevServerError as error:
        say(f"error: {error}")
        code = 1
    finally:
        supervisor.stop_all()
    if supervisor.children:
        say("all stopped")
    return code


def start_demo(supervisor: Supervisor, args: argparse.Namespace) -> None:
    use_simulator = points_at_simulator(
        os.environ.get("ROBOCALL_BASE_URL", simulator_url(args.sim_port)), args.sim_port
    )
    if use_simulator:
        os.environ.setdefault("ROBOCALL_BASE_URL", simulator_url(args.sim_port))
        # The pipeline's clock keeps pace with the simulator's (first poll, re-polls, leases).
        os.environ.setdefault("ROBODASH_TIME_SCALE", str(SIMULATOR_SPEED))
    supervisor.env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    ports = [("web server", args.web_port, "--web-port")]
    if use_simulator:
        ports.append(("simulator", args.sim_port, "--sim-port"))
        ports.append(("shop stand-ins", args.shops_port, "--shops-port"))
    for what, port, option in ports:
        if not port_is_free(port):
            raise DevServerError(
                f"port {port} on {HOST} is already in use, so the {what} cannot start. "
                f"Is another `make run` still running? Stop whatever holds the port, or choose "
                f"another with `python -m robodash.devserver {option} PORT`."
            )
    if use_simulator and not (BASE_DIR / "simulator" / "__main__.py").exists():
        raise DevServerError("the provider simulator (simulator/__main__.py) is missing")

    settings = load_settings()
    var_dir = Path(settings.VAR_DIR)
    var_dir.mkdir(parents=True, exist_ok=True)

    say(f"database: {describe_database(settings)}")
    say(f"broker:   {describe_broker(settings)}")
    start_servers(supervisor, settings)
    if use_simulator:
        say(f"provider: the local simulator at {os.environ['ROBOCALL_BASE_URL']} (set")
        say("          ROBOCALL_BASE_URL to use the real API, https://portal.robocall.pk/api/v1/)")
    else:
        say(f"provider: {os.environ['ROBOCALL_BASE_URL']} (ROBOCALL_BASE_URL); no simulator")
    if settings.ROBODASH_TIME_SCALE != 1:
        scale = settings.ROBODASH_TIME_SCALE
        say(f"timing:   the pipeline's clock runs {scale:g}x fast (ROBODASH_TIME_SCALE)")

    manage(supervisor.env, "migrate", "migrate", "--noinput")
    # Without the simulator the demo store's key would go to a real provider: users only.
    seed_env = {
        **supervisor.env,
        "ROBODASH_DEMO_SHOPIFY_URL": shopify_stand_in_url(args.shops_port),
    }
    manage(seed_env, "seed_demo", "seed_demo", *([] if use_simulator else ["--users-only"]))
    password, _ = demo_admin_password(var_dir)
    if not use_simulator:
        say("no demo store: add yours on the settings page or with `manage.py add_store NAME`")

    start_children(supervisor, args, var_dir, use_simulator)
    say(f"robodash is running at http://{HOST}:{args.web_port}/")
    say(f"log in as admin / {password}  (agent and manager have the same password)")
    say("press Ctrl-C to stop everything")


def start_servers(supervisor: Supervisor, settings: ModuleType) -> None:
    """robodash's own PostgreSQL and Redis, where no DATABASE_URL / CELERY_BROKER_URL is set."""
    try:
        if settings.EMBEDDED_DATABASE:
            postgres = embedded_postgres(settings)
            for done in postgres.prepare():
                say(done)
            supervisor.start(
                "postgres",
                postgres.argv(),
                rank=SERVER,
                stop_signal=signal.SIGINT,
                **postgres.popen_kwargs(),
            )
            supervisor.wait_until(postgres.ready, "PostgreSQL", STARTUP_TIMEOUT)
            if postgres.ensure_database():
                say(f"created the database {embedded.DATABASE_NAME!r}")
        if settings.EMBEDDED_BROKER:
            redis = embedded_redis(settings)
            for done in redis.prepare():
                say(done)
            supervisor.start("redis", redis.argv(), rank=SERVER)
            supervisor.wait_until(redis.ready, "Redis", STARTUP_TIMEOUT)
    except embedded.EmbeddedServerError as error:
        raise DevServerError(str(error)) from None


def start_children(
    supervisor: Supervisor, args: argparse.Namespace, var_dir: Path, use_simulator: bool
) -> None:
    python = sys.executable
    if use_simulator:
        account = ":".join((demo_api_key(var_dir), *DEMO_ACCOUNT))
        supervisor.start(
            "simulator",
            [
                python, "-m", "simulator",
                "--host", HOST, "--port", str(args.sim_port),
                "--speed", str(SIMULATOR_SPEED),
                "--retry-delays", ",".join(map(str, DEMO_RETRY_DELAYS)),
            ],
            rank=SIMULATOR,
            # The demo key goes in the environment: a command line is visible to `ps`.
            env={**supervisor.env, "SIMULATOR_ACCOUNTS": account},
        )  # fmt: skip
        supervisor.wait_until(lambda: port_accepts(args.sim_port), "the simulator", STARTUP_TIMEOUT)
        # The demo store's Shopify: a stand-in that records the tags the decisions become.
        supervisor.start(
            "shops",
            [python, "-m", "standins", "--host", HOST, "--port", str(args.shops_port)],
            rank=SIMULATOR,
            env={**supervisor.env, "STANDINS_SHOPIFY_TOKENS": demo_shopify_secrets(var_dir)[0]},
        )
    supervisor.start(
        "web",
        [python, str(BASE_DIR / "manage.py"), "runserver", f"{HOST}:{args.web_port}", "--noreload"],
    )
    supervisor.start(
        "worker",
        [python, "-m", "celery", "-A", "robodash", "worker", "-l", "INFO", "--concurrency", "2"],
    )
    supervisor.start(
        "beat",
        [
            python, "-m", "celery", "-A", "robodash", "beat", "-l", "INFO",
            "-s", str(var_dir / "celerybeat-schedule"),
        ],
    )  # fmt: skip
    supervisor.wait_until(lambda: port_accepts(args.web_port), "the web server", STARTUP_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
