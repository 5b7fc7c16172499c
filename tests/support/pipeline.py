"""Real Celery worker and beat processes for pipeline tests, on the test database and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connection, models

from calls.models import Call, Campaign, Store
from tests.support.orders import with_orders

ROOT = Path(__file__).resolve().parents[2]


def child_database_url() -> str:
    """The URL of the test database (pytest-django's test_ one), for the processes tests start.
    The host may be a socket folder (robodash's own PostgreSQL): it is quoted into the URL."""
    db = connection.settings_dict
    user = quote(db["USER"] or "postgres", safe="")
    if db["PASSWORD"]:
        user += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "127.0.0.1", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}@{host}{port}/{db['NAME']}"


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str = "condition",
    describe: Callable[[], str] = lambda: "",
) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{describe()}")
        time.sleep(interval)


class Pipeline:
    """A worker and a beat, started as the production commands are, with logs kept in files."""

    def __init__(
        self,
        *,
        base_url: str,
        time_scale: float = 60,
        # Two pool processes: enough for tasks to overlap, and each more one is a process to
        # start on a shared two-core machine. A test about concurrency asks for more.
        concurrency: int = 2,
        pool: str = "prefork",
        extra_env: dict[str, str] | None = None,
    ):
        self.dir = Path(tempfile.mkdtemp(prefix="robodash-pipeline-"))
        self.env = {
            **os.environ,
            "DATABASE_URL": child_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "ROBOCALL_BASE_URL": base_url,
            "ROBODASH_TIME_SCALE": str(time_scale),
            "ROBODASH_SWEEP_SECONDS": "0.5",
            "ROBOCALL_READ_TIMEOUT": "3",
            "LOG_LEVEL": "DEBUG",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.concurrency = concurrency
        self.pool = pool
        self.workers: list[subprocess.Popen[bytes]] = []
        self.beat: subprocess.Popen[bytes] | None = None
        self._n = 0

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "robodash", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_worker(self) -> subprocess.Popen[bytes]:
        self._n += 1
        worker = self._spawn(
            f"worker{self._n}",
            [
                "worker",
                "-l",
                "DEBUG",
                "-c",
                str(self.concurrency),
                "-P",
                self.pool,
                "-n",
                f"w{self._n}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
        )
        self.workers.append(worker)
        return worker

    def start_beat(self) -> None:
        self.beat = self._spawn(
            "beat", ["beat", "-l", "DEBUG", "-s", str(self.dir / "beat-schedule"), "--pidfile="]
        )

    def start(self) -> Pipeline:
        self.start_worker()
        self.start_beat()
        return self

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Signal the process and its pool children, as a machine losing the process would."""
        Pipeline._signal(process, sig)
        Pipeline._reap(process)

    @staticmethod
    def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)

    @staticmethod
    def _reap(process: subprocess.Popen[bytes]) -> None:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """A warm shutdown of every worker and the beat, all told at once: each takes a second
        or two to stop (a worker its pool), and they need not wait for one another."""
        running = [
            p for p in [*self.workers, *([self.beat] if self.beat else [])] if p.poll() is None
        ]
        for process in running:
            self._signal(process, signal.SIGTERM)
        for process in running:
            self._reap(process)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.dir.glob("*.log")))


def queue_orders(
    store: Store, campaign_name: str, n: int, *, label: str = "ORD", first_phone: int = 0
) -> Campaign:
    """A running campaign of `n` queued calls to distinct mobiles, as an import leaves them."""
    campaign = Campaign.objects.create(store=store, name=campaign_name)
    Call.objects.bulk_create(
        with_orders(
            Call(
                store=store,
                campaign=campaign,
                order_id=f"{label}-{i:04d}",
                phone=f"92300{first_phone + i:07d}",
                amount=Decimal(1500 + i),
                voice_id=102,
                text1=store.name,
                text2=f"{label}-{i:04d}",
            )
            for i in range(n)
        )
    )
    return campaign


def all_final(campaign: Campaign) -> bool:
    return not campaign.calls.exclude(state=Call.State.FINAL).exists()


def wait_until_final(
    campaign: Campaign,
    pipeline: Pipeline,
    *,
    timeout: float,
    on_each_look: Callable[[], object] = lambda: None,
) -> None:
    """Wait for every call of `campaign` to be final; on time-out, say where they are stuck."""

    def look() -> bool:
        on_each_look()
        return all_final(campaign)

    def describe() -> str:
        counts = campaign.calls.values_list("state", "outcome").annotate(n=models.Count("id"))
        return f"; calls by state and outcome: {sorted(counts)}\n{pipeline.logs()[-3000:]}"

    wait_for(look, timeout=timeout, interval=0.3, what="every call to be final", describe=describe)
