"""`make run` for real: `python -m robodash.devserver` in embedded mode, then Ctrl-C; and
the demo it seeds (`seed_demo`).

The demo runs in a temporary var/ on free ports, with no DATABASE_URL or CELERY_BROKER_URL,
exactly as on a machine with only Python. Every wait polls a condition against a deadline, so
the test takes as long as the start-up does (some 10-20 seconds) and fails within a minute.
"""

import datetime as dt
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from calls.models import Call, Store, User
from robodash.devserver import port_is_free

BASE_DIR = Path(__file__).resolve().parent.parent
START_DEADLINE = 45.0  # seconds for migrate, seed and all four children
STOP_DEADLINE = 20.0  # beat, worker and web stop together, then the simulator
# Settings that would take the demo out of embedded mode or off its defaults.
NOT_INHERITED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "ROBOCALL_BASE_URL",
    "SECRET_KEY",
    "FIELD_ENCRYPTION_KEY",
    "DEBUG",
    "ROBODASH_TIME_SCALE",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Output:
    """The devserver's output, collected line by line on a thread so the pipe never fills."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, fragment: str, deadline: float, *, source: str = "") -> str:
        """The first line holding `fragment` (from the child named `source`, if given)."""
        while time.monotonic() < deadline:
            for line in self.lines:
                if fragment in line and line.startswith(source):
                    return line
            time.sleep(0.1)
        raise AssertionError(f"no line with {fragment!r} in time; output so far:\n{self.text}")

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


# --- The process tree, from /proc (Linux) -----------------------------------------------------


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw.rsplit(")", 1)[1].split()  # after "pid (comm)": the name may hold spaces
    return int(fields[1]), fields[0], fields[19]


def process_tree(root: int) -> dict[tuple[int, str], str]:
    """Every descendant of `root` as (pid, start time) -> command line."""
    parents: dict[int, int] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], _, started[int(entry.name)] = stat
    tree: dict[tuple[int, str], str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                tree[(pid, started[pid])] = cmdline.decode(errors="replace")
                frontier.append(pid)
    return tree


def still_running(pid: int, started: str) -> bool:
    stat = _stat(pid)
    # Same pid and start time: the same process, not a newcomer reusing the pid. A zombie is dead.
    return stat is not None and stat[2] == started and stat[1] != "Z"


def poll_until(condition: Callable[[], bool], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


# --- The test -----------------------------------------------------------------------------------


@pytest.fixture
def devserver_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env["ROBODASH_VAR_DIR"] = str(tmp_path / "var")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_devserver(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "robodash.devserver", *args],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def stop_on_failure() -> Iterator[list[subprocess.Popen[str]]]:
    """Whatever a failed test left running is killed, so it cannot hold ports for the next."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.skipif(sys.platform != "linux", reason="reads the process tree from /proc")
def test_make_run_serves_the_demo_embedded_and_ctrl_c_leaves_no_process_behind(
    devserver_env: dict[str, str], stop_on_failure: list[subprocess.Popen[str]]
) -> None:
    web_port, sim_port = free_port(), free_port()
    devserver = start_devserver(
        devserver_env, "--web-port", str(web_port), "--sim-port", str(sim_port)
    )
    stop_on_failure.append(devserver)
    output = Output(devserver)
    deadline = time.monotonic() + START_DEADLINE

    assert "SQLite" in output.wait_for("database:", deadline)
    assert "filesystem://" in output.wait_for("broker:", deadline)
    assert f"simulator at http://127.0.0.1:{sim_port}/api/v1/" in output.wait_for(
        "provider:", deadline
    )
    login_line = output.wait_for("log in as", deadline)
    password = (Path(devserver_env["ROBODASH_VAR_DIR"]) / "demo-admin-password").read_text().strip()
    assert f"log in as admin / {password}" in login_line
    # The worker says so once its pool processes exist: the whole tree is up by then.
    output.wait_for("ready.", deadline, source="worker")

    login = requests.get(f"http://127.0.0.1:{web_port}/accounts/login/", timeout=5)
    assert login.status_code == 200
    assert "Sign in" in login.text

    tree = process_tree(devserver.pid)
    try:
        commands = " ".join(tree.values())
        for child in ("-m simulator", "runserver", "worker", "beat"):
            assert child in commands, f"{child} is not among the children: {commands}"

        devserver.send_signal(signal.SIGINT)
        assert devserver.wait(STOP_DEADLINE) == 0, output.text
        output.join(5)
        assert "all stopped" in output.text

        survivors = lambda: [cmd for p, cmd in tree.items() if still_running(*p)]  # noqa: E731
        assert poll_until(lambda: not survivors(), time.monotonic() + 5), survivors()
        assert port_is_free(web_port) and port_is_free(sim_port)  # nothing listens any more
    finally:
        # A failure here must not leave the demo running into the next tests.
        for pid, started in tree:
            if still_running(pid, started):
                os.kill(pid, signal.SIGKILL)


def test_make_run_says_which_port_is_taken_and_exits_1(
    devserver_env: dict[str, str], stop_on_failure: list[subprocess.Popen[str]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        devserver = start_devserver(
            devserver_env, "--web-port", str(port), "--sim-port", str(free_port())
        )
        stop_on_failure.append(devserver)
        out, _ = devserver.communicate(timeout=30)

    assert devserver.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use, so the web server cannot start" in out
    assert not (Path(devserver_env["ROBODASH_VAR_DIR"]) / "robodash.sqlite3").exists()


# --- seed_demo: what `make run` seeds, on the test database --------------------------------------


@pytest.fixture
def demo_var_dir(settings, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path
    return tmp_path


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_creates_the_demo_users_store_and_campaign_once(demo_var_dir: Path) -> None:
    first = seed()
    second = seed()

    password = (demo_var_dir / "demo-admin-password").read_text().strip()
    assert password in first and password not in second  # printed when made, not again
    users = {u.username: u for u in User.objects.filter(username__in=["admin", "agent", "manager"])}
    assert {name: u.role for name, u in users.items()} == {
        "admin": User.Role.ADMIN,
        "agent": User.Role.AGENT,
        "manager": User.Role.MANAGER,
    }
    assert all(u.check_password(password) for u in users.values())

    store = Store.objects.get(name="Demo Store")
    assert store.api_key == (demo_var_dir / "demo-api-key").read_text().strip()
    assert store.retry_delays == [30, 60, 120]
    assert (store.calling_start, store.calling_end) == (dt.time(0, 0), dt.time(23, 59))

    calls = Call.objects.filter(campaign__name="Demo campaign", campaign__store=store)
    assert calls.count() == 8  # the second run added none
    assert all(re.fullmatch(r"9230012345\d\d", c.phone) for c in calls)
    assert {c.state for c in calls} == {Call.State.QUEUED}


@pytest.mark.django_db
def test_seed_demo_leaves_a_password_someone_changed_alone(demo_var_dir: Path) -> None:
    seed()
    admin = User.objects.get(username="admin")
    admin.set_password("my-own-password-42")
    admin.save()

    out = seed()

    admin.refresh_from_db()
    assert admin.check_password("my-own-password-42")
    assert "admin already exists with another password" in out


@pytest.mark.django_db
def test_seed_demo_follows_a_new_demo_key_when_var_was_cleared(demo_var_dir: Path) -> None:
    seed()
    (demo_var_dir / "demo-api-key").unlink()

    seed()

    new_key = (demo_var_dir / "demo-api-key").read_text().strip()
    assert Store.objects.get(name="Demo Store").api_key == new_key


@pytest.mark.django_db
def test_seed_demo_users_only_creates_no_store_for_a_real_provider(demo_var_dir: Path) -> None:
    seed("--users-only")

    assert User.objects.filter(username__in=["admin", "agent", "manager"]).count() == 3
    assert not Store.objects.filter(name="Demo Store").exists()
    assert not (demo_var_dir / "demo-api-key").exists()
