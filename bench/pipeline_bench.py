"""The pipeline's two costs: get_call requests per final call, and calls placed per second.

    DATABASE_URL=... CELERY_BROKER_URL=... python -m bench.pipeline_bench [--calls 40] [--scale 30]

1. Polling. The same simulator (sped up `--scale` times, the portal's 5/10/30-minute retry
   delays divided by the same factor; at 30x, a second of machine jitter reads as 30 provider
   seconds) serves two batches side by side: one followed by the
   real pipeline (worker + beat), one by a fixed-interval poller asking every 30 s (scaled).
   For each: get_call requests per final call against the floor of one per provider attempt,
   and how late, in provider seconds, each final outcome was seen after the provider had it.
2. Sending. With 100 ms of latency added to every provider answer: calls placed per second by
   the pipeline (one worker, 8 processes) beside a plain sequential loop like the provider's
   sample SDK (`requests.get` per call).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls import transitions  # noqa: E402
from calls.models import Call, Campaign, Order, Store  # noqa: E402
from calls.pipeline.outcomes import judge_report, status_began_at  # noqa: E402
from calls.pipeline.provider import ProviderError, RobocallClient  # noqa: E402
from simulator.control import SimulatorProcess  # noqa: E402
from tests.support.pipeline import Pipeline, queue_orders, wait_for, wait_until_final  # noqa: E402

BENCH_KEY = "bench-key-6c1e0d9a7b"
PORTAL_DELAYS = [300, 600, 1800]
FIXED_INTERVAL = 30.0


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def fresh_store(name: str, delays: list[int]) -> Store:
    """The store `name`, emptied of an earlier run's calls: each run starts a new simulator,
    whose call ids would meet theirs (one provider id per store)."""
    old = Store.objects.filter(name=name).first()
    if old is not None:
        Call.objects.filter(store=old).delete()
        Order.objects.filter(store=old).delete()
        Campaign.objects.filter(store=old).delete()
    store, _ = Store.objects.get_or_create(
        name=name, defaults={"retry_delays": delays, "provider_retries": 3}
    )
    store.api_key = BENCH_KEY
    store.retry_delays = delays
    store.calling_start = store.calling_end = store.calling_start  # around the clock
    store.save()
    return store


def fixed_interval_poller(
    sim: SimulatorProcess, n: int, scale: float, delays: list[int]
) -> list[dict]:
    """Place n calls directly and poll each every 30 s (scaled) until the provider is final."""
    client = RobocallClient(BENCH_KEY, sim.base_url)
    interval = FIXED_INTERVAL / scale
    calls = []
    for i in range(n):
        placed = client.place_call(
            {
                "caller_id": f"92311{i:07d}",
                "voice_id": 102,
                "amount": "1000",
                "text1": "Bench",
                "text2": f"F-{i}",
            }
        )
        calls.append(
            {
                "call_id": placed.call_id,
                "sent_at": timezone.now(),
                "polls": 0,
                "seen_final_at": None,
            }
        )
    pending = list(calls)
    while pending:
        time.sleep(interval)
        for call in list(pending):
            try:
                report = client.get_call(call["call_id"])
            except ProviderError:
                call["polls"] += 1
                continue
            call["polls"] += 1
            now = timezone.now()
            # The same rules as the pipeline, so the two differ only in when they ask.
            seen = (report.call_status, report.retry)
            if call.get("seen") != seen:
                call["seen"] = seen
                call["since"] = status_began_at(
                    updated_at=report.updated_at,
                    not_before=call.get("last_poll", call["sent_at"]),
                    now=now,
                )
            call["last_poll"] = now
            verdict = judge_report(
                call_status=report.call_status,
                dtmf=report.dtmf,
                retry=report.retry,
                status_since=call["since"],
                provider_retries=3,
                retry_delay=delays[min(report.retry, 2)],
                now=now,
            )
            if verdict.outcome is not None:
                call["seen_final_at"] = now.timestamp()
                pending.remove(call)
    return calls


def polling_bench(n: int, scale: float) -> None:
    delays = [round(d / scale) for d in PORTAL_DELAYS]
    sim = SimulatorProcess.start(speed=scale, seed=7)
    try:
        sim.add_account(
            api_key=BENCH_KEY,
            username="bench",
            balance="1000000.00",
            call_rate="5.50",
            retry_delays=delays,
            retries=3,
        )
        store = fresh_store("Bench store", delays)
        campaign = queue_orders(store, f"P {timezone.now():%H%M%S.%f}", n, label="P")
        pipeline = Pipeline(
            base_url=sim.base_url,
            time_scale=scale,
            concurrency=4,
            extra_env={"LOG_LEVEL": "WARNING", "ROBODASH_SWEEP_SECONDS": "0.1"},
        )
        baseline: list[dict] = []
        baseline_thread = threading.Thread(
            target=lambda: baseline.extend(fixed_interval_poller(sim, n, scale, delays))
        )
        pipeline.start()
        baseline_thread.start()
        try:
            wait_until_final(campaign, pipeline, timeout=600)
            baseline_thread.join(timeout=600)
        finally:
            pipeline.stop()
        decided = {str(c["call_id"]): c for c in sim.calls()}
        by_call = sim.stats()["get_call_by_call_id"]
    finally:
        sim.stop()

    def summarise(rows: list[tuple[int, int, float]]) -> tuple[float, float, float, float, float]:
        polls = [r[0] for r in rows]
        floors = [r[1] for r in rows]
        lateness = [r[2] for r in rows]
        return (
            median(polls),
            sum(polls) / sum(floors),
            max(p / f for p, f, _ in rows),
            median(lateness),
            p95(lateness),
        )

    ours = []
    late_by_status: dict[int, list[float]] = {}
    for call in campaign.calls.exclude(provider_call_id=None):
        sim_call = decided[call.provider_call_id]
        late = (call.finalized_at.timestamp() - sim_call["final_at"]) * scale
        ours.append((by_call.get(call.provider_call_id, 0), len(sim_call["attempts"]), late))
        late_by_status.setdefault(sim_call["final"]["call_status"], []).append(late)
    fixed = []
    for call in baseline:
        sim_call = decided[call["call_id"]]
        late = (call["seen_final_at"] - sim_call["final_at"]) * scale
        fixed.append((call["polls"], len(sim_call["attempts"]), late))

    print(
        f"\n## Polling: get_call per final call ({n} calls each, time scaled {scale:g}x, "
        f"retry delays {PORTAL_DELAYS} s / {scale:g})"
    )
    print(
        f"{'poller':<28}{'median get_call':>16}{'total / floor':>15}{'worst call / floor':>20}"
        f"{'median late (s)':>17}{'p95 late (s)':>14}"
    )
    for label, rows in (
        ("robodash (provider-paced)", ours),
        (f"fixed every {FIXED_INTERVAL:g} s", fixed),
    ):
        med, ratio, worst, late_med, late_p95 = summarise(rows)
        print(
            f"{label:<28}{med:>16.1f}{ratio:>15.2f}{worst:>20.2f}{late_med:>17.1f}{late_p95:>14.1f}"
        )
    print(
        "robodash lateness by the provider's final status (median / max provider seconds, calls):"
    )
    for status, values in sorted(late_by_status.items()):
        print(f"  status {status}: {median(values):.0f} / {max(values):.0f}  ({len(values)})")
    floor = [r[1] for r in ours]
    print(
        f"(floor = one get_call per provider attempt: median {median(floor):.0f} attempts per "
        "call; 'late' = provider seconds from the provider's final status to ours)"
    )


def sequential_sdk_loop(sim: SimulatorProcess, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        params = {
            "api_key": BENCH_KEY,
            "caller_id": f"92322{i:07d}",
            "voice_id": 102,
            "amount": "1000",
            "text1": "Bench",
            "text2": f"S-{i}",
        }
        response = requests.get(f"{sim.base_url}calls", params=params, timeout=10)
        response.raise_for_status()
    return n / (time.perf_counter() - started)


def pipeline_send_rate(
    sim: SimulatorProcess, n: int, run: int, *, pool: str = "prefork", concurrency: int = 8
) -> float:
    store = fresh_store("Bench send store", [300, 600, 1800])
    campaign = queue_orders(
        store,
        f"T{run} {timezone.now():%H%M%S.%f}",
        n,
        label=f"T{run}",
        first_phone=100000 * (run + 1),
    )
    transitions.pause_campaign(campaign.id)
    pipeline = Pipeline(
        base_url=sim.base_url,
        time_scale=1,
        concurrency=concurrency,
        pool=pool,
        extra_env={"LOG_LEVEL": "WARNING", "ROBODASH_SWEEP_SECONDS": "0.25"},
    )
    pipeline.start()
    try:
        time.sleep(3)  # let the worker boot before the clock starts
        transitions.resume_campaign(campaign.id)
        wait_for(
            lambda: (
                not campaign.calls.filter(sent_at=None).exclude(state=Call.State.FINAL).exists()
            ),
            timeout=300,
            interval=0.2,
            what="every call to be sent",
        )
    finally:
        pipeline.stop()
    span = campaign.calls.aggregate(first=Min("claimed_at"), last=Max("sent_at"))
    return n / (span["last"] - span["first"]).total_seconds()


def throughput_bench(n: int, runs: int) -> None:
    sim = SimulatorProcess.start(speed=1000, seed=3, latency_ms=100)
    try:
        sim.add_account(api_key=BENCH_KEY, username="bench", balance="1000000.00", call_rate="5.50")
        ours, sequential = [], []
        for run in range(runs):
            sequential.append(sequential_sdk_loop(sim, n // 4))
            ours.append(pipeline_send_rate(sim, n, run))
    finally:
        sim.stop()
    print(f"\n## Sending: calls placed per second, 100 ms provider latency ({runs} runs, medians)")
    print(f"{'sender':<40}{'calls/s':>10}{'runs':>30}")
    print(
        f"{'sequential loop (provider sample SDK)':<40}{median(sequential):>10.1f}"
        f"{'  ' + ', '.join(f'{v:.1f}' for v in sequential):>30}"
    )
    print(
        f"{'robodash (1 worker, 8 processes)':<40}{median(ours):>10.1f}"
        f"{'  ' + ', '.join(f'{v:.1f}' for v in ours):>30}"
    )
    print(f"ratio: {median(ours) / median(sequential):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--scale", type=float, default=30)
    parser.add_argument("--send-calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"database {settings.DATABASES['default']['NAME']}, broker {settings.CELERY_BROKER_URL}")
    polling_bench(args.calls, args.scale)
    throughput_bench(args.send_calls, args.runs)


if __name__ == "__main__":
    main()
