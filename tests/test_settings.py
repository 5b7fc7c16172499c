"""Settings come from the environment and refuse to start on a missing or malformed value.

The test process's own settings are already loaded and would hide a failure, so each check runs
robodash/settings.py afresh with a clean environment: in this process (`load_settings`; the
file's import-time checks are everything a start does with the environment), and, for a start
and a refusal, in a fresh interpreter the way a server starts (`start_django`).
"""

import os
import runpy
import secrets
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.conf import global_settings
from django.core.exceptions import ImproperlyConfigured

from robodash.settings import envbool

BASE_DIR = Path(__file__).resolve().parent.parent
GOOD_KEY = "JfU0Xy2jQm6w5b1sXhJ1mQq8yq2k8ZrZkqv4lWm3c8Y="


def start_django(**env: str) -> subprocess.CompletedProcess[str]:
    """`django.setup()` in a new interpreter whose environment holds only PATH and `env`."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "robodash.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def load_settings(**env: str) -> dict[str, Any]:
    """The settings robodash/settings.py makes of an environment holding only PATH and `env`,
    the file run afresh in this process (not imported: the loaded settings stay as they are),
    over Django's defaults as django.conf lays them."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "robodash.settings", **env}
    with mock.patch.dict(os.environ, clean, clear=True):
        made = runpy.run_path(str(BASE_DIR / "robodash" / "settings.py"), run_name="settings")
    defaults = {name: getattr(global_settings, name) for name in dir(global_settings)}
    return {name: value for name, value in {**defaults, **made}.items() if name.isupper()}


def refusal(**env: str) -> str:
    """What a start with `env` refuses with, as its traceback prints it (the chained errors
    included: none of them may echo a secret)."""
    with pytest.raises(ImproperlyConfigured) as refused:
        load_settings(**env)
    return "".join(traceback.format_exception(refused.value))


def test_envbool_reads_the_usual_spellings_of_true_and_false(monkeypatch):
    spellings = [("true", True), ("1", True), ("YES", True), ("off", False), ("0", False)]
    for value, expected in spellings:
        monkeypatch.setenv("ROBODASH_TEST_FLAG", value)
        assert envbool("ROBODASH_TEST_FLAG", "false") is expected


def test_envbool_refuses_a_value_that_is_neither_true_nor_false(monkeypatch):
    monkeypatch.setenv("ROBODASH_TEST_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="ROBODASH_TEST_FLAG must be true or false"):
        envbool("ROBODASH_TEST_FLAG", "false")


def test_production_settings_with_both_secrets_start():
    result = start_django(DEBUG="false", SECRET_KEY="s3cret", FIELD_ENCRYPTION_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_missing_secret_key_with_debug_off_refuses_to_start():
    result = start_django(DEBUG="false", FIELD_ENCRYPTION_KEY=GOOD_KEY)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in result.stderr


def test_missing_field_encryption_key_with_debug_off_refuses_to_start():
    refused = refusal(DEBUG="false", SECRET_KEY="s3cret")
    assert "ImproperlyConfigured: FIELD_ENCRYPTION_KEY is not set" in refused


def test_debug_on_starts_without_any_secret_for_the_local_demo():
    assert load_settings(DEBUG="true")["DEBUG"] is True


def test_garbage_field_encryption_key_refuses_to_start_without_echoing_it():
    garbage = "not-a-fernet-key-but-still-a-secret"
    refused = refusal(DEBUG="false", SECRET_KEY="s3cret", FIELD_ENCRYPTION_KEY=garbage)
    assert "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys" in refused
    assert "Fernet.generate_key()" in refused  # says how to make a good one
    assert garbage not in refused


def test_one_bad_key_in_a_rotation_list_refuses_to_start():
    refused = refusal(DEBUG="false", SECRET_KEY="s3cret", FIELD_ENCRYPTION_KEY=f"{GOOD_KEY},short")
    assert "FIELD_ENCRYPTION_KEY must be one or more comma-separated Fernet keys" in refused


def test_a_rotation_list_of_new_and_old_keys_starts():
    new = Fernet.generate_key().decode()
    started = load_settings(
        DEBUG="false", SECRET_KEY="s3cret", FIELD_ENCRYPTION_KEY=f"{new}, {GOOD_KEY}"
    )
    assert started["DEBUG"] is False


def test_a_bad_debug_value_refuses_to_start():
    assert "DEBUG must be true or false, not 'sometimes'" in refusal(DEBUG="sometimes")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///var/robodash.sqlite3",
        "mysql://robodash:s3cret-db-pw@db:3306/robodash",
        "not a url at all",
    ],
)
def test_a_database_other_than_postgresql_refuses_to_start_naming_database_url(url):
    refused = refusal(DEBUG="true", DATABASE_URL=url)
    assert "ImproperlyConfigured: DATABASE_URL must be a PostgreSQL URL" in refused
    assert "s3cret-db-pw" not in refused  # the URL is never echoed: it may hold a password


@pytest.mark.parametrize(
    "url", ["filesystem://", "amqp://guest:s3cret-mq-pw@localhost//", "memory://"]
)
def test_a_broker_other_than_redis_refuses_to_start_naming_celery_broker_url(url):
    refused = refusal(DEBUG="true", CELERY_BROKER_URL=url)
    assert "ImproperlyConfigured: CELERY_BROKER_URL must be a Redis URL" in refused
    assert "s3cret-mq-pw" not in refused


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://:pw@redis.example:6380/1",
        "redis+socket:///run/redis/redis.sock?virtual_host=0",
    ],
)
def test_redis_brokers_over_tcp_tls_or_a_unix_socket_start(url):
    assert load_settings(DEBUG="true", CELERY_BROKER_URL=url)["CELERY_BROKER_URL"] == url


@pytest.fixture
def open_tmp_path() -> Iterator[Path]:
    """A temporary folder every user may pass through: as root, a private one (pytest's
    tmp_path is) puts make run's cluster in the reachable home instead (tests/test_embedded.py)."""
    folder = Path(tempfile.mkdtemp(prefix="robodash-settings-test-"))
    folder.chmod(0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_with_nothing_set_the_settings_point_at_make_runs_own_servers_under_var(open_tmp_path):
    tmp_path = open_tmp_path
    s = load_settings(DEBUG="true", ROBODASH_VAR_DIR=str(tmp_path))
    assert [s["DATABASES"]["default"]["HOST"], s["CELERY_BROKER_URL"]] == [
        str(tmp_path / "postgres"),
        f"redis+socket://{tmp_path / 'redis' / 'redis.sock'}?virtual_host=0",
    ]


def env_example() -> dict[str, str]:
    """The settings .env.example gives, as `KEY=value` lines (comments and blanks left out)."""
    values = {}
    for line in (BASE_DIR / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_check_deploy_with_the_production_settings_of_env_example_reports_nothing():
    env = env_example()
    assert env["DEBUG"] == "false"
    # The secrets .env.example leaves for the operator to generate.
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["FIELD_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "robodash.settings", **env}
    # Checks need no database connection: point it at the test server, which exists.
    clean["DATABASE_URL"] = os.environ["DATABASE_URL"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Only the HSTS preload-list check is silenced, with its reason, in settings.
    assert "System check identified no issues (1 silenced)." in result.stdout


def test_production_defaults_are_https_only_and_make_run_defaults_are_not():
    def probe_with(**env: str) -> str:
        s = load_settings(**env)
        return (
            f"{s['SECURE_SSL_REDIRECT']} {s['SESSION_COOKIE_SECURE']} {s['CSRF_COOKIE_SECURE']} "
            f"{s['SECURE_HSTS_SECONDS'] > 0} {s['SECURE_PROXY_SSL_HEADER']}"
        )

    production = probe_with(DEBUG="false", SECRET_KEY="s3cret", FIELD_ENCRYPTION_KEY=GOOD_KEY)
    assert production == "True True True True ('HTTP_X_FORWARDED_PROTO', 'https')"
    assert probe_with(DEBUG="true") == "False False False False None"


def test_private_targets_are_refused_unless_the_setting_allows_them_for_development():
    production = {"DEBUG": "false", "SECRET_KEY": "s3cret", "FIELD_ENCRYPTION_KEY": GOOD_KEY}

    def probe_with(**env: str) -> str:
        return str(load_settings(**env)["ROBODASH_ALLOW_PRIVATE_TARGETS"])

    assert probe_with(**production) == "False"
    assert probe_with(DEBUG="true") == "False"  # DEBUG alone allows nothing
    assert probe_with(**production, ROBODASH_ALLOW_PRIVATE_TARGETS="true") == "True"
    assert env_example()["ROBODASH_ALLOW_PRIVATE_TARGETS"] == "false"
