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
   sample SDK (`requests.get` per call), and the CPU each placed call cost the worker and its
   PostgreSQL backends (read from /proc: the figure a busy machine moves least). Then the cost
   of each step of one send (claim, the provider's request, mark_sent): one process sending
   calls one after another through the worker's own code, each step timed and its queries
   counted.

`--only sending` (or `polling`) runs one part.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls import transitions  # noqa: E402
from calls.models import Call, Campaign, Order, Store  # noqa: E402
from calls.pipeline import dispatch  # noqa: E402
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


BENCH_STORES = ["Bench store", "Bench send store", "Bench step store"]


def empty_stores(names: list[str]) -> None:
    """An earlier run's calls go: each run starts a new simulator, whose call ids would meet
    theirs (one provider id per store), and a worker would poll the ones left in progress."""
    stores = Store.objects.filter(name__in=names)
    Call.objects.filter(store__in=stores).delete()
    Order.objects.filter(store__in=stores).delete()
    Campaign.objects.filter(store__in=stores).delete()


def fresh_store(name: str, delays: list[int]) -> Store:
    empty_stores([name])
    store, _ = Store.objects.get_or_create(
        name=name, defaults={"retry_delays": delays, "provider_retries": 3}
    )
    store.api_key = BENCH_KEY
    store.retry_delays = delays
    store.calling_start = store.calling_end = store.calling_start  # around the clock
    # An earlier run's calls, polled after its simulator stopped, may have paused it.
    store.paused, store.pause_kind, store.paused_reason = False, "", ""
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


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the processes `pids` have spent (0 for one that has gone)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (a worker and its pool processes)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def other_backends() -> list[int]:
    """The PostgreSQL backends of this database but this process's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


class CpuMeter:
    """CPU spent by the worker's processes and the database's other backends while it runs, on
    a machine whose /proc shows them (PostgreSQL on the same host); None elsewhere."""

    def __init__(self, worker_pid: int):
        self.worker_pid = worker_pid
        self.usable = os.path.exists(f"/proc/{worker_pid}/stat")

    def __enter__(self) -> CpuMeter:
        if self.usable:
            self.worker_start = {pid: cpu_seconds([pid]) for pid in process_tree(self.worker_pid)}
            self.backends_start = {pid: cpu_seconds([pid]) for pid in other_backends()}
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.usable:
            return
        self.worker = sum(
            cpu_seconds([pid]) - self.worker_start.get(pid, 0.0)
            for pid in process_tree(self.worker_pid)
        )
        self.backends = sum(
            cpu_seconds([pid]) - self.backends_start.get(pid, 0.0) for pid in other_backends()
        )


def pipeline_send_rate(
    sim: SimulatorProcess, n: int, run: int, *, pool: str = "prefork", concurrency: int = 8
) -> tuple[float, tuple[float, float] | None]:
    """Calls placed per second, and the CPU (ms) each cost the worker and PostgreSQL."""
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
        with CpuMeter(pipeline.workers[0].pid) as cpu:
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
    rate = n / (span["last"] - span["first"]).total_seconds()
    placed = campaign.calls.exclude(sent_at=None).count()
    per_call = (1000 * cpu.worker / placed, 1000 * cpu.backends / placed) if cpu.usable else None
    return rate, per_call


# The steps of one send, as calls/pipeline/dispatch.py takes them: (label, owner, attribute).
SEND_STEPS = [
    ("claim (queued -> sending)", dispatch, "_claim_for_sending"),
    ("request (place_call)", RobocallClient, "place_call"),
    ("mark_sent (-> in_progress)", dispatch, "_mark_sent"),
]


@contextlib.contextmanager
def timed_steps(
    steps: list[tuple[str, Any, str]],
) -> Iterator[tuple[dict[str, float], dict[str, list[float]]]]:
    """Wrap each step to add its time, and the number and time of the queries it runs, to the
    dicts yielded (seconds and [queries, seconds] by label; "" for queries outside the steps)."""
    elapsed: dict[str, float] = collections.defaultdict(float)
    queries: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    current = [""]

    def timing(label: str, step: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            outer, current[0] = current[0], label
            started = time.perf_counter()
            try:
                return step(*args, **kwargs)
            finally:
                elapsed[label] += time.perf_counter() - started
                current[0] = outer

        return timed

    def count_query(execute: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(*args)
        finally:
            queries[current[0]][0] += 1
            queries[current[0]][1] += time.perf_counter() - started

    originals = [(owner, name, getattr(owner, name)) for _, owner, name in steps]
    try:
        for (label, owner, name), (_, _, step) in zip(steps, originals, strict=True):
            setattr(owner, name, timing(label, step))
        with connection.execute_wrapper(count_query):
            yield elapsed, queries
    finally:
        for owner, name, step in originals:
            setattr(owner, name, step)


def send_step_costs(sim: SimulatorProcess, n: int) -> None:
    """One process sends `n` calls one after another through dispatch.send_call, as a worker's
    task does, with each step timed and its queries counted."""
    store = fresh_store("Bench step store", [300, 600, 1800])
    campaign = queue_orders(store, f"Steps {timezone.now():%H%M%S.%f}", n, label="ST")
    ids = list(campaign.calls.order_by("id").values_list("id", flat=True))
    base_url = settings.ROBOCALL_BASE_URL
    settings.ROBOCALL_BASE_URL = sim.base_url
    logging.disable(logging.INFO)  # a line per call accepted, as a worker logs it
    try:
        dispatch.send_call(ids.pop())  # a first call opens the connections and plans the queries
        n -= 1
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (backend,) = cursor.fetchone()
        own_cpu, backend_cpu = time.process_time(), cpu_seconds([backend])
        with timed_steps([("whole send_call", dispatch, "send_call"), *SEND_STEPS]) as (
            elapsed,
            queries,
        ):
            for call_id in ids:
                dispatch.send_call(call_id)
        own_cpu, backend_cpu = time.process_time() - own_cpu, cpu_seconds([backend]) - backend_cpu
    finally:
        settings.ROBOCALL_BASE_URL = base_url
        logging.disable(logging.NOTSET)
    assert not campaign.calls.exclude(state=Call.State.IN_PROGRESS).exists(), "a call not sent"

    print(
        f"\n## Sending, step by step: one process, {n} calls one after another "
        "(100 ms provider latency)"
    )
    print(f"{'step':<30}{'ms per call':>12}{'queries per call':>18}{'ms in queries':>15}")
    for label in ["whole send_call", *(label for label, _, _ in SEND_STEPS)]:
        count, seconds = (
            queries[label]
            if label != "whole send_call"
            else (
                sum(q[0] for q in queries.values()),
                sum(q[1] for q in queries.values()),
            )
        )
        print(
            f"{label:<30}{1000 * elapsed[label] / n:>12.1f}{count / n:>18.1f}"
            f"{1000 * seconds / n:>15.1f}"
        )
    print(
        f"CPU per call: {1000 * own_cpu / n:.1f} ms in this process, "
        f"{1000 * backend_cpu / n:.1f} ms in its PostgreSQL backend"
        + ("" if os.path.exists(f"/proc/{backend}/stat") else " (not on this host: not read)")
    )


def throughput_bench(n: int, runs: int) -> None:
    sim = SimulatorProcess.start(speed=1000, seed=3, latency_ms=100)
    try:
        sim.add_account(api_key=BENCH_KEY, username="bench", balance="1000000.00", call_rate="5.50")
        ours, sequential, cpu = [], [], []
        for run in range(runs):
            sequential.append(sequential_sdk_loop(sim, n // 4))
            rate, per_call = pipeline_send_rate(sim, n, run)
            ours.append(rate)
            if per_call is not None:
                cpu.append(per_call)
        print_send_rates(runs, sequential, ours, cpu)
        send_step_costs(sim, n // 4)
    finally:
        sim.stop()


def print_send_rates(
    runs: int, sequential: list[float], ours: list[float], cpu: list[tuple[float, float]]
) -> None:
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
    if cpu:
        print(
            f"CPU per placed call (median of runs): worker {median([w for w, _ in cpu]):.1f} ms, "
            f"its PostgreSQL backends {median([b for _, b in cpu]):.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--scale", type=float, default=30)
    parser.add_argument("--send-calls", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=["polling", "sending"])
    args = parser.parse_args()
    print(f"database {settings.DATABASES['default']['NAME']}, broker {settings.CELERY_BROKER_URL}")
    empty_stores(BENCH_STORES)
    if args.only != "sending":
        polling_bench(args.calls, args.scale)
    if args.only != "polling":
        throughput_bench(args.send_calls, args.runs)


if __name__ == "__main__":
    main()
