"""Uploads through the processes production runs: time and peak memory of the web process.

    DATABASE_URL=... CELERY_BROKER_URL=... python -m bench.upload_bench [--rows 100000]

Starts a real gunicorn (one worker, DEBUG off) and a Celery worker on the bench database, with
the simulator as the provider, signs in and uploads through HTTP, as a browser would:

1. the 10 MB file of 5.2 million one-character rows (refused by the row cap);
2. `--rows` valid orders, then "Launch": the request hands the launch to the worker, which
   turns the rows into orders and calls while the bench polls for the end.

For each: the time of the request (and of the launch to its end), and how far the gunicorn
worker's peak resident memory (VmHWM) rose above its resident memory before the request.
Targets: under 100 MB for either; the launch request well under gunicorn's 30 s timeout.
"""

from __future__ import annotations

import argparse
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.conf import settings  # noqa: E402

from bench.import_bench import clean_up  # noqa: E402
from calls.models import Campaign, Store, Upload, User  # noqa: E402
from simulator.control import SimulatorProcess  # noqa: E402
from tests.support.pipeline import Pipeline, child_database_url, wait_for  # noqa: E402
from tests.support.webserver import gunicorn  # noqa: E402

BENCH_KEY = "sk-upload-bench-key-0001"
BENCH_STORE = "Upload Bench Store"
PASSWORD = "a-long-passphrase-for-the-bench"
HEADER = b"phone,amount,order_id,store_name\n"


def fresh_store() -> Store:
    old = Store.objects.filter(name=BENCH_STORE).first()
    if old is not None:
        forget(old)
    store = Store(name=BENCH_STORE)
    store.api_key = BENCH_KEY
    store.save()
    return store


def forget(store: Store) -> None:
    Upload.objects.filter(campaign__store=store).delete()  # with their staged rows
    clean_up(store)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    rows = parser.parse_args().rows
    sim = SimulatorProcess.start(speed=1000, seed=5)
    sim.add_account(api_key=BENCH_KEY, username="bench", balance="100000000.00", call_rate="5.50")
    store = fresh_store()
    User.objects.filter(username="upload-bench").delete()
    User.objects.create_user("upload-bench", password=PASSWORD, role=User.Role.ADMIN)
    env = {
        "DATABASE_URL": child_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
        "ROBOCALL_BASE_URL": sim.base_url,
    }
    pipeline = Pipeline(base_url=sim.base_url, concurrency=1)
    try:
        with gunicorn(env) as web:
            browser = web.signed_in("upload-bench", PASSWORD)
            print(f"{'upload':<44}{'answer':>8}{'request s':>11}{'web +MiB':>10}{'launch s':>10}")
            huge = HEADER + b"1\n" * 5_200_000
            answer, seconds, growth = web.upload(browser, store.pk, "Bench huge", huge)
            print(
                f"{'10.4 MB, 5.2 M one-character rows (capped)':<44}{answer.status_code:>8}"
                f"{seconds:>11.1f}{growth:>10.0f}{'—':>10}"
            )

            body = b"".join(b"0300%07d,1500,UB-%07d,Shop\n" % (i, i) for i in range(rows))
            answer, seconds, growth = web.upload(browser, store.pk, "Bench big", HEADER + body)
            campaign = Campaign.objects.get(store=store, name="Bench big")
            staged = Upload.objects.get(campaign=campaign)
            token = web.csrf_token(browser, f"/campaigns/{campaign.pk}/launch/")
            pipeline.start_worker()
            started = time.monotonic()
            launched = browser.post(
                f"{web.url}/campaigns/{campaign.pk}/launch/",
                data={"upload": staged.pk, "csrfmiddlewaretoken": token},
                headers={"Referer": f"{web.url}/campaigns/{campaign.pk}/launch/"},
                allow_redirects=False,
                timeout=300,
            )
            answered = time.monotonic() - started
            wait_for(
                lambda: Upload.objects.get(pk=staged.pk).status == Upload.Status.LAUNCHED,
                timeout=600,
                interval=0.5,
                what="the launch to finish",
                describe=lambda: pipeline.logs()[-2000:],
            )
            done = time.monotonic() - started
            print(
                f"{f'{rows:,} valid rows ({len(body) / 1e6:.1f} MB), upload':<44}"
                f"{answer.status_code:>8}{seconds:>11.1f}{growth:>10.0f}{'—':>10}"
            )
            print(
                f"{f'{rows:,} valid rows, Launch (worker)':<44}{launched.status_code:>8}"
                f"{answered:>11.1f}{'':>10}{done:>10.1f}"
            )
            print(f"\ncalls queued: {campaign.calls.count():,}")
    finally:
        pipeline.stop()
        sim.stop()
        forget(store)
        User.objects.filter(username="upload-bench").delete()


if __name__ == "__main__":
    main()
