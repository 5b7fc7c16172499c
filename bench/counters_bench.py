"""What counting the figures in triggers costs the writers (calls/figures/counters.py).

    DATABASE_URL=... python -m bench.counters_bench [--calls 400] [--rounds 7] [--rows 100000]

1. Transitions. `--calls` orders walk the pipeline's path through calls/transitions.py, each
   step its own transaction as in the workers: queue_call, start_sending, mark_sent, finish
   (with a charge). Timed per call, with the counting triggers on and off, in alternating
   rounds so that the shared machine's noise falls on both alike.
2. A bulk insert. `--rows` calls written by one INSERT ... SELECT (as an import's COPY writes
   them): the statement's time with the triggers on and off.

Prints the medians and the ratio. Every round runs inside a transaction that is rolled back, so
the database is left as it was.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls import transitions  # noqa: E402
from calls.models import Call, Campaign, Order, Store  # noqa: E402


class Rollback(Exception):
    """Leaves a round's transaction: nothing it wrote stays."""


def _triggers(on: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE calls_call {'ENABLE' if on else 'DISABLE'} TRIGGER USER")


def _orders(label: str, n: int) -> tuple[Campaign, list[Order]]:
    """A store of its own, a campaign and `n` orders, for one round."""
    store = Store.objects.create(name=label)
    campaign = Campaign.objects.create(store=store, name=label)
    orders = Order.objects.bulk_create(
        Order(
            store=store,
            campaign=campaign,
            order_id=f"CB-{k}",
            phone="923001234567",
            amount=Decimal("1500.00"),
            voice_id=102,
        )
        for k in range(n)
    )
    return campaign, orders


def walk_calls(n: int, on: bool, round_no: int) -> float:
    """Seconds per call for the pipeline's four transitions, each in its own savepoint."""
    try:
        with transaction.atomic():
            _triggers(on)
            campaign, orders = _orders(f"Counters bench {round_no} {on}", n)
            now = timezone.now()
            started = time.perf_counter()
            for k, order in enumerate(orders):
                with transaction.atomic():
                    call = transitions.queue_call(order, campaign_id=campaign.pk, scheduled_for=now)
                with transaction.atomic():
                    call = Call.objects.select_for_update().get(pk=call.pk)
                    transitions.start_sending(call, now)
                transitions.mark_sent(call, f"P-{k}", now)
                with transaction.atomic():
                    call = Call.objects.select_for_update().get(pk=call.pk)
                    call.call_charges = Decimal("5.50")
                    transitions.finish(call, Call.Outcome.CONFIRMED, now)
            elapsed = time.perf_counter() - started
            raise Rollback
    except Rollback:
        pass
    return elapsed / n


BULK_SQL = """
INSERT INTO calls_call (
  store_id, campaign_id, shop_order_id, order_id, phone, amount, voice_id,
  text1, text2, text3, text4, text5, key1, key2, key3, key4, key5,
  state, outcome, send_attempts, poll_count, poll_errors, last_error, review_reason,
  reattempt, hand_decision, scheduled_for, created_at, updated_at
)
SELECT %(store)s, %(campaign)s, %(order)s, 'BULK-' || g, '923001234567', 1500, 102,
  '', '', '', '', '', '', '', '', '', '',
  'queued', '', 0, 0, 0, '', '', 0, '', now(), now(), now()
FROM generate_series(1, %(rows)s) AS g
"""


def bulk_insert(rows: int, on: bool, round_no: int) -> float:
    try:
        with transaction.atomic():
            _triggers(on)
            campaign, [order] = _orders(f"Counters bulk {round_no} {on}", 1)
            with connection.cursor() as cursor:
                started = time.perf_counter()
                cursor.execute(
                    BULK_SQL,
                    {
                        "store": campaign.store_id,
                        "campaign": campaign.pk,
                        "order": order.pk,
                        "rows": rows,
                    },
                )
                elapsed = time.perf_counter() - started
            raise Rollback
    except Rollback:
        pass
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.counters_bench", description=__doc__)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)

    walks: dict[bool, list[float]] = {True: [], False: []}
    bulks: dict[bool, list[float]] = {True: [], False: []}
    for n in range(args.rounds):
        for on in (n % 2 == 0, n % 2 != 0):  # alternate which goes first
            walks[on].append(walk_calls(args.calls, on, n))
            bulks[on].append(bulk_insert(args.rows, on, n))
        print(f"  round {n + 1} of {args.rounds}", flush=True)

    def row(label: str, on: list[float], off: list[float], unit: float, name: str) -> None:
        with_, without = statistics.median(on) * unit, statistics.median(off) * unit
        print(f"{label:<44} {with_:10.2f} {without:10.2f} {with_ / without:7.2f}x  {name}")

    print(f"\n{'median of ' + str(args.rounds) + ' rounds':<44} {'counting':>10} {'off':>10} "
          f"{'ratio':>8}")  # fmt: skip
    print("-" * 80)
    row("four transitions of one call", walks[True], walks[False], 1000, "ms per call")
    row(f"INSERT ... SELECT of {args.rows:,} calls", bulks[True], bulks[False], 1, "s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
