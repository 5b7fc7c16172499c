"""Shared fixtures: personas, a store on the simulator, the simulator itself over real HTTP."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.test import TransactionTestCase
from django.utils import translation
from pytest_django import DjangoDbBlocker

from calls.models import Store, User
from simulator.control import SimulatorProcess
from tests.support import flush, migrations, worker_databases

# The key the test store uses on the simulator. Tests look for it in logs, pages and the DB.
TEST_API_KEY = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Personas are created in most tests; the real hasher would cost half a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def transactional_tests_delete_their_rows() -> Iterator[None]:
    """After a transactional test, the rows it left are deleted rather than every table
    truncated: the same empty database for the next test, in a fraction of the time
    (tests/support/flush.py)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TransactionTestCase, "_fixture_teardown", flush.fixture_teardown)
        yield


@pytest.fixture(scope="session")
def django_db_keepdb(request: pytest.FixtureRequest) -> bool:
    """pytest-django's (--reuse-db), and under pytest-xdist the copy each worker made of the
    run's migrated template (tests/support/worker_databases.py), which it must not migrate."""
    reuse: bool = request.config.getvalue("reuse_db")
    return reuse or worker_databases.copying(request.config)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(
    django_db_modify_db_settings: None,  # pytest-django's: names the database after the worker
    request: pytest.FixtureRequest,
    django_db_blocker: DjangoDbBlocker,
) -> Iterator[None]:
    """Under pytest-xdist, the worker's test database is copied from one migrated once for the
    run, before pytest-django sets it up, and dropped at the end of the worker's session."""
    if not worker_databases.copying(request.config):
        yield
        return
    with django_db_blocker.unblock():
        worker_databases.copy_the_migrated_template(request.config)
    yield
    with django_db_blocker.unblock():
        worker_databases.drop_the_copy_and_the_template(request.config)


@pytest.fixture(scope="session")
def past_database_name(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[str]:
    """The migration tests' own database (tests/support/migrations.py): made once a session,
    where one of them runs, and dropped at its end."""
    with django_db_blocker.unblock():
        name = migrations.create_past_database()
    yield name
    with django_db_blocker.unblock():
        migrations.drop_database(name)


@pytest.fixture
def past_database(transactional_db: None, past_database_name: str) -> Iterator[None]:
    """For the test, the database is an empty one of its own, to migrate forward to its past
    and on (tests/support/migrations.py). The daily figures are checked there after the test,
    as on the test database after every other one (pytest_runtest_call below)."""
    with migrations.on_empty_database(past_database_name):
        yield


@pytest.fixture(autouse=True)
def default_language_after_each_test() -> Iterator[None]:
    """A request leaves its reader's language active in the thread (LocaleMiddleware and the
    user's saved language activate it; nothing deactivates it): an Urdu page asked for in one
    test must not word the next test's messages in Urdu."""
    yield
    translation.deactivate()


def drives_the_browser(item: pytest.Item) -> bool:
    return "chromium" in getattr(item, "fixturenames", ()) or bool(
        item.get_closest_marker("browser")
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests run last, after pytest-django's order (database tests, then
    transactional ones, then the rest): they share one Chromium for the session, whose asyncio
    loop lives in this thread from the first of them to the end (tests/browser/conftest.py), and
    no other test may run beside it."""
    items.sort(key=drives_the_browser)  # stable: each group keeps its order


# Modules whose tests share a module-scoped fixture that starts processes (one `make run` boot
# for the tests that need it): under pytest-xdist each runs whole in one worker process.
ONE_WORKER_MODULES = frozenset({"tests/test_devserver.py"})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """pytest-xdist's "load" distribution (each test to the next free worker, in collection
    order, so the browser tests stay last), except that ONE_WORKER_MODULES go whole to one.
    (Its own `xdist_group` marks rename test ids in a way pytest 9 no longer sees.)"""
    from xdist.scheduler import LoadScopeScheduling

    class LoadKeepingModulesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER_MODULES else nodeid

    return LoadKeepingModulesTogether(config, log)  # type: ignore[arg-type]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """After every test that used the database and passed, the figures the triggers counted
    equal a direct count of the calls (calls/figures/counters.py): whatever the test did to the
    calls — transitions, imports, raw SQL, deletes — the pages' figures stayed exact."""
    result = yield
    if "_django_db_helper" in getattr(item, "fixturenames", ()):
        from calls.figures import counters

        assert counters.mismatches() == [], "the daily figures differ from the calls"
    return result


@pytest.fixture(scope="session")
def simulator_process() -> Iterator[SimulatorProcess]:
    """One simulator per test session, sped up 60x so a call finishes in about a second."""
    process = SimulatorProcess.start(speed=60.0, seed=1)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def simulator(simulator_process: SimulatorProcess) -> SimulatorProcess:
    """The session's simulator, reset to a clean state with the test account on it."""
    simulator_process.reset()
    simulator_process.add_account(
        api_key=TEST_API_KEY,
        username="teststore",
        balance="5000.00",
        call_rate="5.50",
        retry_delays=[2, 2, 2],
        retries=3,
    )
    return simulator_process


@pytest.fixture
def provider_url(simulator: SimulatorProcess, settings) -> str:
    settings.ROBOCALL_BASE_URL = simulator.base_url
    return simulator.base_url


@pytest.fixture
def store(db) -> Store:
    # Calls around the clock (start == end), so tests don't depend on the hour they run at.
    store = Store(
        name="Karachi Kitchenware",
        retry_delays=[2, 2, 2],
        provider_retries=3,
        calling_start=dt.time(0, 0),
        calling_end=dt.time(0, 0),
    )
    store.api_key = TEST_API_KEY
    store.save()
    return store


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_user("amina", password="pw-admin-123", role=User.Role.ADMIN)


@pytest.fixture
def agent_user(db) -> User:
    return User.objects.create_user("bilal", password="pw-agent-123", role=User.Role.AGENT)


@pytest.fixture
def admin(client, admin_user):  # type: ignore[no-untyped-def]
    """Django's test client, signed in as the merchant admin."""
    client.force_login(admin_user)
    return client


@pytest.fixture
def manager_user(db) -> User:
    return User.objects.create_user("sana", password="pw-manager-123", role=User.Role.MANAGER)
