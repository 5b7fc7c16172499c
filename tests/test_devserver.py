"""`make run` for real, as the README says: its own PostgreSQL and Redis, every page for each
demo role, the demo calls to their outcomes, Ctrl-C, a crash and the run after it, `make clean`;
and the demo it seeds (`seed_demo`).

The demo runs in a temporary var/ (ROBODASH_VAR_DIR) on free ports, with no DATABASE_URL or
CELERY_BROKER_URL, exactly as on a machine with only Python. Every wait polls a condition against
a deadline, so a test takes as long as the start-up does (some 10-20 seconds) and fails soon.
"""

import datetime as dt
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import requests
from django.core.management import call_command

from calls.figures import stats
from calls.models import Call, Store, User
from robodash import embedded
from robodash.demo import DEMO_RETRY_DELAYS
from robodash.devserver import port_is_free
from tests.calls.test_permissions import EXPECTED_ROLES, url_for

BASE_DIR = Path(__file__).resolve().parent.parent
START_DEADLINE = 90.0  # seconds for the servers, migrate, seed and all four children
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
    except OSError:  # gone since it was listed
        return None
    fields = raw.rsplit(")", 1)[1].split()  # after "pid (comm)": the name may hold spaces
    return int(fields[1]), fields[0], fields[19]


def _cmdline(pid: int) -> str | None:
    """A live process's command line, None if it ended since it was listed."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone (FileNotFoundError, ProcessLookupError) or already reaped
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def process_tree(root: int) -> dict[tuple[int, str], str]:
    """Every live descendant of `root` as (pid, start time) -> command line.

    The kernel here has no /proc/<pid>/task/<tid>/children, so the parents come from every
    process's stat; only the descendants' command lines are read. On a busy machine processes
    end at any moment: one that ends between the listing and its reading is left out (and so are
    its children, which are re-parented), never an error."""
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
            if ppid == parent and (cmdline := _cmdline(pid)) is not None:
                tree[(pid, started[pid])] = cmdline
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


def devserver_environment(tmp_path: Path, patch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a demo in `tmp_path / "var"`, with no server of the tests'."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env["ROBODASH_VAR_DIR"] = str(tmp_path / "var")
    env["PYTHONUNBUFFERED"] = "1"
    # As root, pytest's private tmp_path is out of the database user's reach, so the cluster
    # lives in the reachable home (robodash/embedded.py): a throw-away one, here and in the test.
    home = Path(tempfile.mkdtemp(prefix="robodash-devserver-test-"))
    home.chmod(0o711)
    env["ROBODASH_EMBEDDED_HOME"] = str(home)
    patch.setenv("ROBODASH_EMBEDDED_HOME", str(home))
    return env


@pytest.fixture
def devserver_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = devserver_environment(tmp_path, monkeypatch)
    yield env
    shutil.rmtree(env["ROBODASH_EMBEDDED_HOME"], ignore_errors=True)


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
    stop(started)


def stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_make_run(
    env: dict[str, str], web_port: int, sim_port: int, shops_port: int = 0
) -> subprocess.Popen[str]:
    """`make run`, as the README says, in a session of its own (a terminal's process group)."""
    ports = {
        "ROBODASH_WEB_PORT": str(web_port),
        "ROBODASH_SIM_PORT": str(sim_port),
        "ROBODASH_SHOPS_PORT": str(shops_port or free_port()),
    }
    return subprocess.Popen(
        ["make", "run"],
        cwd=BASE_DIR,
        env={**env, **ports},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def ctrl_c(process: subprocess.Popen[str]) -> None:
    """What a terminal's Ctrl-C does: SIGINT to the whole foreground process group."""
    os.killpg(process.pid, signal.SIGINT)


def demo_database(var_dir: Path) -> psycopg.Connection:
    return psycopg.connect(embedded.postgres_url(var_dir), autocommit=True)


def demo_objects(var_dir: Path) -> dict[str, int]:
    """The pk of one object of each kind the URLs name, from the demo's own database (a bulk
    action on its first order is recorded for the batch page: the demo has none of its own)."""
    with demo_database(var_dir) as db:
        pks = {
            kind: db.execute(f"SELECT min(id) FROM {table}").fetchone()[0]  # type: ignore[index]
            for kind, table in [
                ("call", "calls_call"),
                ("order", "calls_order"),
                ("campaign", "calls_campaign"),
                ("store", "calls_store"),
                ("user", "calls_user"),
            ]
        }
        pks["batch"] = db.execute(  # type: ignore[index]
            "INSERT INTO calls_orderbatch (action, note, created_by_id, created_at, status, "
            "order_ids, position, changed, skipped, moved_at, finished_at) VALUES ('confirm', "
            "'', %s, now(), 'done', ARRAY[%s]::bigint[], 1, 0, '{}', now(), now()) RETURNING id",
            [pks["user"], pks["order"]],
        ).fetchone()[0]
        return pks


def unfinished_demo_calls(var_dir: Path) -> int:
    with demo_database(var_dir) as db:
        total, unfinished = db.execute(
            "SELECT count(*), count(*) FILTER (WHERE c.state <> 'final') FROM calls_call c "
            "JOIN calls_campaign g ON g.id = c.campaign_id WHERE g.name = 'Demo campaign'"
        ).fetchone()  # type: ignore[misc]
    assert total == 8
    return int(unfinished)


def sign_in(base_url: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base_url}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text
    signed_in = session.post(
        f"{base_url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
        headers={"Referer": f"{base_url}/accounts/login/"},
        timeout=10,
        allow_redirects=False,
    )
    assert signed_in.status_code == 302, f"{username} could not sign in: {signed_in.text[:500]}"
    return session


# Actions answer POST only: a GET by a role that may use them is 405, by any other 403.
POST_ONLY = {
    "call_again",
    "call_withdraw",
    "order_decide",
    "order_call_again",
    "order_phone",
    "order_delivery",
    "order_block",
    "order_unblock",
    "store_delivery_sheet",
    "order_bulk",
    "followup_claim",
    "followup_release",
    "followup_take_over",
    "followup_handled",
    "followup_callback",
    "followup_next",
    "campaign_pause",
    "campaign_resume",
    "store_verify",
    "store_rules_preview",
    "store_block_phone",
    "store_unblock_phone",
}
# The forms of the new-campaign page post here; a plain GET is sent back to that page.
FORM_TARGETS = {"campaign_single_order", "campaign_upload"}
# The demo's campaign is running with no upload waiting: its launch page and its rejected-rows
# download send the browser on to the campaign's page.
NOTHING_WAITING = {"campaign_launch", "campaign_upload_rejected"}
# Fragments are asked for by htmx, as the pages do.
FRAGMENTS = {"overview_balances", "campaign_progress", "call_row", "store_delivery_sheet_status"}


def demo_call_is_final(var_dir: Path, pk: int) -> bool:
    with demo_database(var_dir) as db:
        row = db.execute("SELECT state = 'final' FROM calls_call WHERE id = %s", [pk]).fetchone()
    assert row is not None
    return bool(row[0])


def walk_every_url(
    base_url: str, session: requests.Session, role: str, pks: dict[str, int], var_dir: Path
) -> list[tuple[str, int, set[int]]]:
    """GET every URL of the role table as `role`: (url, status, expected) of each wrong one."""
    objects = {kind: SimpleNamespace(pk=pk) for kind, pk in pks.items()}
    wrong = []
    for name, roles in EXPECTED_ROLES.items():
        url = url_for(name, objects)
        headers = {"HX-Request": "true"} if name in FRAGMENTS else {}
        final_before = name == "call_row" and demo_call_is_final(var_dir, pks["call"])
        response = session.get(
            f"{base_url}{url}", headers=headers, timeout=30, allow_redirects=False
        )
        if role not in roles:
            expected = {403}
        elif name in POST_ONLY:
            expected = {405}
        elif name in FORM_TARGETS or name in NOTHING_WAITING:
            expected = {302}
        elif name == "store_delivery_sheet_status":
            expected = {286}  # the demo has applied no courier sheet: nothing to poll
        elif name == "call_row":
            # A final call's row answers 286 (htmx: stop polling). The demo's calls finish while
            # the walk runs: either answer is right for a call that became final meanwhile.
            final_after = demo_call_is_final(var_dir, pks["call"])
            expected = {286} if final_before else {200} if not final_after else {200, 286}
        else:
            expected = {200}
        if response.status_code not in expected:
            wrong.append((url, response.status_code, expected))
    return wrong


@dataclass
class MakeRun:
    """The module's `make run`: booted once, shared by the tests that walk a running demo."""

    env: dict[str, str]
    var_dir: Path
    process: subprocess.Popen[str]
    output: Output
    web_port: int
    sim_port: int
    shops_port: int


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    """One `make run` on a fresh var/, up to its worker's "ready." (the whole tree is up then).

    A boot costs some 15-20 seconds of both cores (a new cluster, its migrations, the seed and
    every child), so the tests that need a running demo share this one: the first walks it, and
    the crash test ends it (a crash) and starts the next run on its data. Whatever is left
    running at the end of the module is stopped. Under pytest-xdist the module runs in one
    process (tests/conftest.py), so the boot is shared there too."""
    with pytest.MonkeyPatch.context() as patch:
        env = devserver_environment(tmp_path_factory.mktemp("make-run"), patch)
        var_dir = Path(env["ROBODASH_VAR_DIR"])
        web_port, sim_port, shops_port = free_port(), free_port(), free_port()
        process = start_make_run(env, web_port, sim_port, shops_port)
        output = Output(process)
        demo = MakeRun(env, var_dir, process, output, web_port, sim_port, shops_port)
        try:
            output.wait_for("ready.", time.monotonic() + START_DEADLINE, source="worker")
            yield demo
        finally:
            tree = process_tree(process.pid) if process.poll() is None else {}
            if process.poll() is None:
                ctrl_c(process)
            stop([process])
            kill_all(tree)
            shutil.rmtree(env["ROBODASH_EMBEDDED_HOME"], ignore_errors=True)


@pytest.mark.skipif(sys.platform != "linux", reason="reads the process tree from /proc")
def test_make_run_serves_every_page_to_each_role_and_calls_the_demo_orders_to_their_end(
    make_run: MakeRun,
) -> None:
    output, var_dir = make_run.output, make_run.var_dir
    web_port, sim_port, shops_port = make_run.web_port, make_run.sim_port, make_run.shops_port
    deadline = time.monotonic() + START_DEADLINE

    database = output.wait_for("database:", deadline)
    cluster = embedded.make_run_postgres(var_dir).data_dir  # var/postgres unless out of reach
    assert f"PostgreSQL of robodash's own, data in {cluster}" in database
    broker = output.wait_for("broker:", deadline)
    assert "Redis of robodash's own" in broker and str(var_dir / "redis" / "redis.sock") in broker
    assert f"simulator at http://127.0.0.1:{sim_port}/api/v1/" in output.wait_for(
        "provider:", deadline
    )
    login_line = output.wait_for("log in as", deadline)
    password = (var_dir / "demo-admin-password").read_text().strip()
    assert f"log in as admin / {password}" in login_line
    # The worker says so once its pool processes exist: the whole tree is up by then.
    output.wait_for("ready.", deadline, source="worker")
    commands = " ".join(process_tree(make_run.process.pid).values())
    for child in (
        "bin/postgres",
        "redis-server",
        "-m simulator",
        "-m standins",
        "runserver",
        "worker",
        "beat",
    ):
        assert child in commands, f"{child} is not among the children: {commands}"

    base_url = f"http://127.0.0.1:{web_port}"
    pks = demo_objects(var_dir)
    integrations = f"{base_url}/settings/stores/{pks['store']}/integrations/"
    for role in ("admin", "agent", "manager"):
        session = sign_in(base_url, role, password)
        assert walk_every_url(base_url, session, role, pks, var_dir) == [], role
        expected = 200 if role == "admin" else 403
        assert session.get(integrations, timeout=30).status_code == expected, role
    # The walk was refused pages as an agent and a manager: each refusal is one log line, and
    # make run's output holds no traceback.
    output.wait_for("Forbidden (Permission denied)", time.monotonic() + 10)
    at = output.text.find("Traceback")
    assert at == -1, output.text[max(at - 500, 0) : at + 4000]

    # The demo store is connected to the Shopify stand-in: a test order from Integrations
    # is called, and its outcome goes back to the "shop" as a tag.
    admin = sign_in(base_url, "admin", password)
    form = admin.get(integrations, timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token and "demo-store.myshopify.com" in form
    sent = admin.post(
        f"{integrations}test-order/",
        data={"kind": "shopify", "phone": "0300 1234599", "csrfmiddlewaretoken": token[1]},
        headers={"Referer": integrations},
        timeout=30,
    )
    assert sent.status_code == 200 and "Test order: order #TEST-" in sent.text
    shop = f"http://127.0.0.1:{shops_port}/_standin/records"

    def tagged() -> bool:
        orders = requests.get(shop, timeout=10).json()["shopify"].values()
        return any(order["tags"] for order in orders)

    # The demo campaign's calls are placed, followed and finished by the worker and beat.
    assert poll_until(lambda: unfinished_demo_calls(var_dir) == 0, time.monotonic() + 180), (
        output.text[-5000:]
    )
    assert poll_until(tagged, time.monotonic() + 180), requests.get(shop, timeout=10).text


def kill_all(tree: dict[tuple[int, str], str]) -> None:
    for pid, started in tree:
        if still_running(pid, started):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(sys.platform != "linux", reason="reads the process tree from /proc")
def test_after_a_crash_make_run_starts_on_the_same_data_ctrl_c_stops_everything_and_make_clean_removes_it(  # noqa: E501
    make_run: MakeRun, stop_on_failure: list[subprocess.Popen[str]]
) -> None:
    devserver_env, var_dir = make_run.env, make_run.var_dir
    password = (var_dir / "demo-admin-password").read_text().strip()
    tree = process_tree(make_run.process.pid)
    # A crash: everything killed at once, the database mid-flight, its postmaster.pid left.
    os.kill(make_run.process.pid, signal.SIGKILL)
    kill_all(tree)
    assert poll_until(lambda: not any(still_running(*p) for p in tree), time.monotonic() + 10)
    assert (var_dir / "postgres" / "postmaster.pid").exists()

    web_port, sim_port = free_port(), free_port()
    second = start_make_run(devserver_env, web_port, sim_port)
    stop_on_failure.append(second)
    output = Output(second)
    deadline = time.monotonic() + START_DEADLINE
    output.wait_for("press Ctrl-C", deadline)
    output.wait_for("ready.", deadline, source="worker")  # the whole tree is up
    tree = process_tree(second.pid)
    try:
        # The same data: the users and the demo are there, nothing was created again.
        assert "created user" not in output.text and "calls queued" not in output.text
        assert (var_dir / "demo-admin-password").read_text().strip() == password
        session = sign_in(f"http://127.0.0.1:{web_port}", "admin", password)
        assert "Demo campaign" in session.get(f"http://127.0.0.1:{web_port}/campaigns/").text

        ctrl_c(second)
        second.wait(STOP_DEADLINE)
        output.join(5)
        assert "all stopped" in output.text
        at = output.text.find("Traceback")  # none in a normal session, start to stop
        assert at == -1, output.text[max(at - 500, 0) : at + 4000]

        survivors = lambda: [cmd for p, cmd in tree.items() if still_running(*p)]  # noqa: E731
        assert poll_until(lambda: not survivors(), time.monotonic() + 5), survivors()
        assert port_is_free(web_port) and port_is_free(sim_port)  # nothing listens any more
        assert not (var_dir / "postgres" / "postmaster.pid").exists()  # a clean shutdown
    finally:
        # A failure here must not leave the demo running into the next tests.
        kill_all(tree)

    cleaned = subprocess.run(
        ["make", "clean"], cwd=BASE_DIR, env=devserver_env, capture_output=True, text=True
    )
    assert cleaned.returncode == 0, cleaned.stderr
    assert not var_dir.exists()


def test_make_run_says_which_port_is_taken_and_exits_1(
    devserver_env: dict[str, str], stop_on_failure: list[subprocess.Popen[str]]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        devserver = start_devserver(
            devserver_env,
            "--web-port", str(port),
            "--sim-port", str(free_port()),
            "--shops-port", str(free_port()),
        )  # fmt: skip
        stop_on_failure.append(devserver)
        out, _ = devserver.communicate(timeout=30)

    assert devserver.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use, so the web server cannot start" in out
    # Refused before anything started: no database was created.
    assert not (Path(devserver_env["ROBODASH_VAR_DIR"]) / "postgres").exists()


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
    assert store.retry_delays == list(DEMO_RETRY_DELAYS)
    assert (store.calling_start, store.calling_end) == (dt.time(0, 0), dt.time(23, 59))

    calls = Call.objects.filter(campaign__name="Demo campaign", campaign__store=store)
    assert calls.count() == 8  # the second run added none
    assert all(re.fullmatch(r"9230012345\d\d", c.phone) for c in calls)
    assert {c.state for c in calls} == {Call.State.QUEUED}

    # The deliveries demo, once: the returns figures are not empty, and add up.
    assert "Demo deliveries" in first and "Demo deliveries" not in second
    store.refresh_from_db()
    assert store.return_cost == Decimal("450.00")
    figures = stats.figures_total(store=store)
    assert (figures.shipped, figures.delivered, figures.returned) == (10, 5, 3)
    assert (figures.delivered_confirmed, figures.returned_confirmed) == (3, 1)
    assert (figures.delivered_undecided, figures.returned_undecided) == (1, 1)
    assert (figures.delivered_not_called, figures.returned_not_called) == (1, 1)
    assert (figures.cancelled_unshipped, figures.returns_avoided) == (2, Decimal("900.00"))
    assert figures.net_saved == Decimal("900.00") - Decimal("44.00")  # 8 answered calls
    # The two parcels on their way have their notice call, queued for the worker.
    notices = Call.objects.filter(purpose=Call.Purpose.NOTICE, store=store)
    assert sorted(notices.values_list("order_id", "state")) == [
        ("DEMO-2002", Call.State.QUEUED),
        ("DEMO-2005", Call.State.QUEUED),
    ]


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
