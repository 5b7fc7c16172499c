"""State that more than one process reads lives where they all see it: the cache is the broker's
Redis (never a per-process memory), and the provider's last word on a store's key is on the
store's row."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from calls.models import Store
from calls.pipeline.balances import note_provider_state, provider_states
from robodash import embedded
from robodash.settings import redis_cache_url_beside
from shops.models import ApiToken
from tests.support.pipeline import ROOT, child_database_url


@pytest.mark.parametrize(
    ("broker", "cache_url", "cache_db"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1", 1),
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379/1", 1),
        ("redis://:s3cret@redis.internal:6380/3", "redis://:s3cret@redis.internal:6380/2", 2),
        (
            "rediss://user:pw@redis.example:6380/2?ssl_cert_reqs=required",
            "rediss://user:pw@redis.example:6380/3?ssl_cert_reqs=required",
            3,
        ),
        ("redis://127.0.0.1:6379/15", "redis://127.0.0.1:6379/14", 14),
        (
            "redis+socket:///srv/var/redis.sock?virtual_host=2",
            "unix:///srv/var/redis.sock?db=3",
            3,
        ),
        ("redis+socket:///srv/var/redis.sock", "unix:///srv/var/redis.sock?db=1", 1),
    ],
)
def test_the_cache_is_the_other_database_of_the_brokers_pair(broker, cache_url, cache_db):
    derived = redis_cache_url_beside(broker)

    assert derived == cache_url
    # A form redis-py reads (the cache's client): the same server, another database.
    pool = redis.ConnectionPool.from_url(derived)
    assert pool.connection_kwargs["db"] == cache_db
    if broker.startswith("redis+socket"):
        assert pool.connection_kwargs["path"] == "/srv/var/redis.sock"


def test_a_broker_database_that_is_not_a_number_is_refused_by_name():
    with pytest.raises(ImproperlyConfigured, match="database must be a number, not 'queue'"):
        redis_cache_url_beside("redis://127.0.0.1:6379/queue")


def test_the_cache_is_a_redis_every_process_shares(settings):
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    # With no CACHE_URL (as `make run` and the tests run): the broker's Redis.
    assert settings.CACHES["default"]["LOCATION"] == (
        os.environ.get("CACHE_URL") or redis_cache_url_beside(settings.CELERY_BROKER_URL)
    )
    key = f"robodash:test-shared:{time.monotonic_ns()}"
    cache.set(key, "seen", 30)
    try:
        # Read back by a client of its own, as another process would.
        other = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
        assert other.exists(cache.make_and_validate_key(key)) == 1
        other.close()
    finally:
        cache.delete(key)


def test_make_runs_socket_broker_gives_a_cache_on_the_same_redis(tmp_path: Path):
    server = embedded.EmbeddedRedis(tmp_path / "redis")
    process = embedded._start(server, tmp_path / "redis.log")
    try:
        broker = server.url(db=2)
        assert broker.startswith("redis+socket://")
        first = RedisCache(redis_cache_url_beside(broker), {})
        second = RedisCache(redis_cache_url_beside(broker), {})  # another process's client

        first.set("note", "from the worker")

        assert second.get("note") == "from the worker"
        on_db_3 = redis.Redis(unix_socket_path=str(server.socket), db=3)
        assert on_db_3.dbsize() == 1  # the broker's db 2 holds none of it
        on_db_3.close()
    finally:
        embedded._stop(process, embedded.signal.SIGTERM)


CHILD_REQUESTS = """
import json, os, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
headers = {"Authorization": "Bearer " + os.environ["RATE_TEST_TOKEN"]}
print(json.dumps([Client().get("/api/v1/orders/X", headers=headers).status_code
                  for _ in range(2)]))
"""


@pytest.mark.django_db(transaction=True)
def test_the_api_rate_limit_is_counted_once_over_every_process(client, store, settings):
    settings.ROBODASH_API_RATE_PER_MINUTE = 3
    token = ApiToken.issue(store, "website")[1]
    headers = {"Authorization": f"Bearer {token}"}
    # The count is per clock minute: start early in one, so all four requests fall in it.
    if time.time() % 60 > 50:
        time.sleep(60.5 - time.time() % 60)

    here = [client.get("/api/v1/orders/X", headers=headers).status_code for _ in range(2)]
    child = subprocess.run(
        [sys.executable, "-c", CHILD_REQUESTS],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": child_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "ROBODASH_API_RATE_PER_MINUTE": "3",
            "RATE_TEST_TOKEN": token,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert here == [404, 404]
    assert child.returncode == 0, child.stderr[-3000:]
    # Another process (another gunicorn worker) sees the two already counted here.
    assert json.loads(child.stdout.strip().splitlines()[-1]) == [404, 429]


@pytest.mark.django_db
def test_the_providers_last_word_is_on_the_row_for_every_process(store):
    note_provider_state(store, Store.ProviderState.REJECTED)

    fresh = Store.objects.get(pk=store.pk)  # as the web process loads it

    assert fresh.provider_state == "rejected"
    assert provider_states([fresh]) == {store.pk: "rejected"}


@pytest.mark.django_db
def test_a_note_older_than_three_missed_refreshes_says_nothing(store):
    note_provider_state(store, Store.ProviderState.UNREACHABLE)
    Store.objects.filter(pk=store.pk).update(
        provider_state_at=timezone.now() - dt.timedelta(minutes=3, seconds=1)
    )

    assert provider_states([Store.objects.get(pk=store.pk)]) == {store.pk: ""}
