"""Realistic demo data, fast: a million calls in well under a minute.

    DATABASE_URL=... python -m bench.demo_data [--calls 1000000] [--campaigns 50]

Three stores, the three personas (admin, agent, manager), `campaigns` campaigns spread over the
last `days` days, and `calls` calls in them, written by one INSERT ... SELECT over
generate_series inside Postgres (no row travels through Python). The newest campaigns are still
running (queued and in-flight calls); the rest are final with outcomes, provider fields, charges
and times as the pipeline leaves them: about half the calls confirmed, a quarter unreachable,
answered calls charged by 30 s pulse, follow-ups older than a working shift handled
by an agent. Phone numbers
are Pakistani mobiles (923[0-4]X XXXXXXX), order ids carry the store's prefix.

The parcels follow as a merchant's would: an order ships a day or two after it arrived (nearly
every confirmed one, most of the undecided and never called ones, hardly any cancelled one) and
is delivered or returned two to five days later, learnt mostly from a courier's sheet; confirmed
orders come back least (7%), never called ones most (40%). Each order is marked `called` when its
call reached the provider. One store has a notice call when an order ships
(`notify_on_shipped`), switched on ten days ago, so its recent shipments each have one; every
store has a return cost. So the reports' returns and money are measured at full size.

Event timelines are optional (`--events N`: the N newest final calls get theirs), so the call
page looks as it does in production without writing ten million event rows.

The data is the same on every run with the same arguments (`setseed`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")
django.setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from calls.figures import counters  # noqa: E402
from calls.models import Call, Campaign, Store, User  # noqa: E402
from calls.transitions import order_status_sql  # noqa: E402


@dataclass(frozen=True)
class DemoStore:
    name: str
    order_prefix: str
    call_rate: Decimal
    balance: Decimal
    voice_id: int
    return_cost: Decimal
    notify_on_shipped: int | None = None  # a notice call's voice id when an order ships
    api_key: str = ""  # blank: a key nobody will ever send (the bench makes no provider request)


DEMO_STORES = (
    DemoStore(
        "Karachi Kitchenware",
        "KK",
        Decimal("5.50"),
        Decimal("48250.00"),
        102,
        Decimal("450.00"),
        notify_on_shipped=110,
    ),
    DemoStore("Lahore Looms", "LL", Decimal("6.00"), Decimal("12890.50"), 105, Decimal("380.00")),
    DemoStore(
        "Peshawar Spice Co.", "PS", Decimal("5.00"), Decimal("410.00"), 102, Decimal("300.00")
    ),
)
NOTICES_SINCE_DAYS = 10  # the shipped notices were switched on this long ago
# When an order's parcel left (SQL of the order's id and arrival): 18 to 48 hours after it came.
SHIPPED_AT = "({created} + make_interval(hours => 18 + ({order} %% 31)::int))"
CAMPAIGN_NAMES = (
    "Weekend orders",
    "Daraz flash sale",
    "Instagram orders",
    "Website COD",
    "Eid collection",
    "Winter stock",
    "WhatsApp orders",
    "Clearance sale",
)
DEMO_USERS = (
    ("amina", User.Role.ADMIN),
    ("bilal", User.Role.AGENT),
    ("sana", User.Role.MANAGER),
)


@dataclass
class DemoData:
    stores: list[Store]
    campaigns: list[Campaign]
    users: dict[str, User]
    calls: int
    seconds: float
    events: int = 0
    notes: list[str] = field(default_factory=list)


def ensure_users(password: str) -> dict[str, User]:
    """The personas by role name ("admin", "agent", "manager"). The admin is also Django
    admin staff, so the bench can open the admin changelist as the same person."""
    users = {}
    for username, role in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, role=role)
        user.role = role
        user.is_staff = user.is_superuser = role == User.Role.ADMIN
        user.set_password(password)
        user.save()
        users[str(role)] = user
    return users


def _campaign_sizes(total: int, count: int) -> list[int]:
    """Sizes that vary as real campaigns do (a quiet Tuesday, a sale), summing to `total`."""
    weights = [1.0 + 0.8 * ((k * 7919) % 13) / 12 for k in range(count)]
    scale = total / sum(weights)
    sizes = [max(1, int(w * scale)) for w in weights]
    sizes[-1] += total - sum(sizes)
    if sizes[-1] < 1:  # tiny totals: spread what there is
        sizes = [total // count + (1 if k < total % count else 0) for k in range(count)]
    return sizes


def _make_stores(api_keys: dict[str, str] | None) -> list[Store]:
    now = timezone.now()
    stores = []
    for spec in DEMO_STORES:
        store = Store.objects.filter(name=spec.name).first() or Store(name=spec.name)
        store.api_key = (
            (api_keys or {}).get(spec.name) or spec.api_key or f"demo-{spec.order_prefix}"
        )
        store.default_voice_id = spec.voice_id
        store.balance = spec.balance
        store.call_rate = spec.call_rate
        store.balance_username = spec.name.split()[0].lower()
        store.balance_checked_at = now - dt.timedelta(minutes=3)
        store.key_verified_at = now - dt.timedelta(days=70)
        store.low_balance_threshold = Decimal(500)
        store.return_cost = spec.return_cost
        store.notify_on_shipped = spec.notify_on_shipped
        store.save()
        stores.append(store)
    return stores


def _make_campaigns(
    stores: list[Store], admin: User, count: int, days: int, running: int
) -> list[tuple[Campaign, dt.datetime, float]]:
    """(campaign, when it started, how long its calls kept coming in seconds), oldest first."""
    now = timezone.now()
    step = dt.timedelta(days=days) / count
    made = []
    for k in range(count):
        store = stores[k % len(stores)]
        start = now - dt.timedelta(days=days) + k * step
        local = start.astimezone(store.zone)
        name = f"{CAMPAIGN_NAMES[k % len(CAMPAIGN_NAMES)]} {local:%d %b}"
        # Campaigns stay "running" once launched; a few were paused by hand along the way.
        paused = k < count - running and k % 11 == 5
        status = Campaign.Status.PAUSED if paused else Campaign.Status.RUNNING
        campaign, _ = Campaign.objects.update_or_create(
            store=store,
            name=name,
            defaults={
                "status": status,
                "voice_id": 105 if k % 5 == 3 else None,
                "created_by": admin,
            },
        )
        # created_at is auto_now_add: set the real start afterwards.
        Campaign.objects.filter(pk=campaign.pk).update(created_at=start)
        campaign.created_at = start
        made.append((campaign, start, step.total_seconds() * 0.95))
    return made


# Outcome shares of all final calls (the rest is unreachable). Thresholds are cumulative.
OUTCOME_THRESHOLDS = """
    CASE
      WHEN r < 0.008 THEN 'withdrawn'
      WHEN r < 0.015 THEN 'failed'
      WHEN r < 0.018 THEN 'needs_review'
      WHEN r < 0.518 THEN 'confirmed'
      WHEN r < 0.598 THEN 'cancelled'
      WHEN r < 0.643 THEN 'callback_requested'
      WHEN r < 0.713 THEN 'no_input'
      ELSE 'unreachable'
    END
"""

CALLS_SQL = f"""
WITH params AS (
  SELECT c.*, j, random() AS r, random() AS r2, random() AS r3, random() AS r4
  FROM demo_campaign c CROSS JOIN LATERAL generate_series(0, c.n_calls - 1) AS j
), timed AS (
  SELECT p.*,
    p.start_at + make_interval(secs => p.span * (p.j + p.r4) / p.n_calls) AS created,
    -- Running campaigns: their newest calls are not final yet.
    CASE
      WHEN p.running AND p.j >= p.n_calls * 0.998 THEN 'queued'
      WHEN p.running AND p.j >= p.n_calls * 0.995 THEN 'in_progress'
      ELSE 'final'
    END AS st,
    {OUTCOME_THRESHOLDS} AS oc
  FROM params p
), shaped AS (
  SELECT t.*,
    CASE WHEN t.st = 'final' THEN t.oc ELSE '' END AS outcome,
    (t.st = 'in_progress' OR (t.st = 'final' AND t.oc NOT IN ('withdrawn', 'failed'))) AS placed,
    (t.st = 'final' AND t.oc IN ('confirmed', 'cancelled', 'callback_requested', 'no_input'))
      AS answered,
    -- Retries before the last attempt: answered calls mostly on the first ring.
    CASE WHEN t.r2 < 0.78 THEN 0 WHEN t.r2 < 0.92 THEN 1 WHEN t.r2 < 0.98 THEN 2 ELSE 3 END
      AS retries
  FROM timed t
)
INSERT INTO calls_call (
  shop_order_id, store_id, campaign_id, parent_id, order_id, phone, amount, voice_id,
  text1, text2, text3, text4, text5, key1, key2, key3, key4, key5,
  state, outcome, provider_call_id, call_status, dtmf, retry, call_charges, provider_updated_at,
  scheduled_for, enqueued_at, send_attempts, claimed_at, sent_at, next_poll_at, poll_count,
  poll_errors, finalized_at, last_error, review_reason, reattempt, hand_decision, created_at,
  updated_at
)
SELECT
  %(order_base)s + s.first_call + s.j + 1, s.store_id, s.campaign_id, NULL,
  s.prefix || '-' || (100000 + s.first_call + s.j)::text,
  '923' || floor(s.r3 * 5)::int::text || floor(s.r4 * 10)::int::text
        || lpad(floor(random() * 10000000)::int::text, 7, '0'),
  ((floor(random() * 290) + 10) * 50 - CASE WHEN s.r3 < 0.2 THEN 1 ELSE 0 END)::numeric(12, 2),
  s.voice_id,
  s.store_name, s.prefix || '-' || (100000 + s.first_call + s.j)::text, '', '', '',
  '', '', '', '', '',
  s.st, s.outcome,
  CASE WHEN s.placed THEN (7000000 + s.first_call + s.j)::text END,
  CASE
    WHEN s.answered THEN 2
    WHEN s.st = 'in_progress' THEN CASE WHEN s.r2 < 0.5 THEN 8 ELSE 1 END
    WHEN s.outcome = 'unreachable' THEN
      CASE WHEN s.r2 < 0.5 THEN 5 WHEN s.r2 < 0.75 THEN 4 WHEN s.r2 < 0.9 THEN 6 ELSE 3 END
    WHEN s.outcome = 'needs_review' THEN 1
  END,
  CASE s.outcome WHEN 'confirmed' THEN 1 WHEN 'cancelled' THEN 2
                 WHEN 'callback_requested' THEN 3 END,
  CASE
    WHEN s.answered THEN s.retries
    WHEN s.outcome = 'unreachable' THEN 3
    WHEN s.placed THEN 0
  END,
  CASE
    -- Charged per started 30 s of talk; unanswered attempts cost nothing.
    WHEN s.answered THEN s.call_rate * (CASE WHEN s.r2 < 0.85 THEN 1 ELSE 2 END)
    WHEN s.outcome = 'unreachable' OR s.st = 'in_progress' THEN 0
  END,
  CASE WHEN s.placed THEN s.created + make_interval(secs => 50 + 60 * s.r2) END,
  s.created, s.created, CASE WHEN s.outcome = 'withdrawn' THEN 0 ELSE 1 END,
  CASE WHEN s.outcome <> 'withdrawn' THEN s.created + make_interval(secs => 2 + 20 * s.r3) END,
  CASE WHEN s.placed THEN s.created + make_interval(secs => 3 + 20 * s.r3) END,
  CASE WHEN s.st = 'in_progress' THEN now() + interval '20 seconds' END,
  CASE WHEN s.answered THEN 2 + s.retries * 2 WHEN s.outcome = 'unreachable' THEN 8
       WHEN s.placed THEN 2 ELSE 0 END,
  0,
  CASE
    WHEN s.st <> 'final' THEN NULL
    WHEN s.outcome = 'unreachable' THEN s.created + make_interval(secs => 2760 + 300 * s.r2)
    WHEN s.answered THEN s.created + make_interval(secs => 70 + 60 * s.r2 + 600 * s.retries)
    ELSE s.created + make_interval(secs => 25 + 30 * s.r2)
  END,
  CASE s.outcome
    WHEN 'failed' THEN 'The provider refused the call: invalid caller_id (HTTP 422).'
    WHEN 'needs_review'
      THEN 'The send timed out after the request left: the call may have been placed.'
    ELSE ''
  END,
  CASE WHEN s.outcome = 'needs_review'
    THEN 'The provider did not answer the send in time; not sent again, to never call twice.'
    ELSE '' END,
  0,
  '',
  s.created,
  s.created + make_interval(secs => 3000)
FROM shaped s
"""

# Each demo call is the only call of its order: the calls go in first, each with the id its order
# will have (the foreign keys are dropped for the load, and checked when they are added back),
# then the orders are written from them, with the status and key-press decision
# calls/transitions.py gives them. The agents keep up: an order that needs a person waits in the
# follow-up queue for a working shift (a tenth of them claimed), older ones were handled.
# The parcel: shipped 18 to 48 hours after the order arrived (so never one still waiting for a
# person), with a chance by how the order was decided (`p_ship`); its end known 2 to 5 days
# later, returned with a chance by the same (`p_back`). Times come from the order's id, so the
# notices below find each shipment's time again.
ORDERS_SQL = f"""
INSERT INTO calls_order (
  id, order_id, phone, amount, voice_id, text1, text2, text3, text4, text5,
  key1, key2, key3, key4, key5, store_id, campaign_id, customer_name, source, status,
  decision, decided_via, decided_by_id, decision_note, decided_at, rejected_reason, shop_ref,
  followup, followup_at, callback_set, claimed_by_id, claimed_at, called,
  delivery, delivery_at, delivery_via, delivery_learnt_at, tracking, created_at, updated_at
)
SELECT c.shop_order_id, c.order_id, c.phone, c.amount, c.voice_id,
  c.text1, c.text2, c.text3, c.text4, c.text5,
  c.key1, c.key2, c.key3, c.key4, c.key5, c.store_id, c.campaign_id, '', 'csv',
  {order_status_sql("c")},
  CASE WHEN c.outcome IN ('confirmed', 'cancelled') THEN c.outcome ELSE '' END,
  CASE WHEN c.outcome IN ('confirmed', 'cancelled') THEN 'key' ELSE '' END, NULL, '',
  CASE WHEN c.outcome IN ('confirmed', 'cancelled') THEN c.finalized_at END, '', '',
  CASE WHEN q.waiting THEN CASE c.outcome WHEN 'failed' THEN 'rejected' ELSE c.outcome END
       ELSE '' END,
  CASE WHEN q.waiting THEN c.finalized_at END, false,
  CASE WHEN q.waiting AND c.id %% 10 = 0 THEN d.agent_id END,
  CASE WHEN q.waiting AND c.id %% 10 = 0 THEN c.finalized_at END,
  c.sent_at IS NOT NULL,
  p.delivery,
  p.delivery_at,
  CASE WHEN p.delivery = '' THEN '' WHEN z.r_via < 0.8 THEN 'sheet' WHEN z.r_via < 0.95 THEN 'api'
       ELSE 'hand' END,
  p.delivery_at,
  CASE WHEN p.delivery <> '' AND z.r_via < 0.95 THEN 'LP' || (5000000 + c.shop_order_id)::text
       ELSE '' END,
  c.created_at, COALESCE(p.delivery_at, c.created_at)
FROM calls_call c
JOIN demo_campaign d ON d.campaign_id = c.campaign_id
CROSS JOIN LATERAL (SELECT c.state = 'final'
  AND c.outcome IN ('callback_requested', 'unreachable', 'no_input', 'needs_review', 'failed')
  AND c.created_at >= now() - interval '8 hours' AS waiting) q
CROSS JOIN LATERAL (SELECT random() AS r_ship, random() AS r_back, random() AS r_via,
  {SHIPPED_AT.format(order="c.shop_order_id", created="c.created_at")} AS ship_at,
  CASE
    WHEN c.state <> 'final' THEN 0
    WHEN c.outcome = 'confirmed' THEN 0.97
    WHEN c.outcome = 'cancelled' THEN 0.01
    WHEN c.outcome IN ('withdrawn', 'failed') THEN 0.7
    ELSE 0.6
  END AS p_ship,
  CASE c.outcome WHEN 'confirmed' THEN 0.07 WHEN 'cancelled' THEN 0.6
    WHEN 'withdrawn' THEN 0.4 WHEN 'failed' THEN 0.4 ELSE 0.28 END AS p_back) z
CROSS JOIN LATERAL (SELECT
  z.ship_at + make_interval(hours => 48 + (c.shop_order_id * 7 %% 73)::int) AS end_at) e
CROSS JOIN LATERAL (SELECT
  CASE
    WHEN z.r_ship >= z.p_ship OR z.ship_at > now() THEN ''
    WHEN e.end_at > now() THEN 'shipped'
    WHEN z.r_back < z.p_back THEN 'returned'
    ELSE 'delivered'
  END AS delivery) k
CROSS JOIN LATERAL (SELECT k.delivery,
  CASE k.delivery WHEN '' THEN NULL WHEN 'shipped' THEN z.ship_at ELSE e.end_at END
    AS delivery_at) p
WHERE c.shop_order_id > %(order_base)s
"""
# The notice call of each order shipped since the store switched them on: placed a minute after
# the shipment was learnt, answered four times in five (charged a pulse; no key to press).
NOTICES_SQL = f"""
INSERT INTO calls_call (
  shop_order_id, store_id, campaign_id, parent_id, order_id, phone, amount, voice_id,
  text1, text2, text3, text4, text5, key1, key2, key3, key4, key5, purpose, notice_of,
  state, outcome, provider_call_id, call_status, dtmf, retry, call_charges, provider_updated_at,
  scheduled_for, enqueued_at, send_attempts, claimed_at, sent_at, next_poll_at, poll_count,
  poll_errors, finalized_at, last_error, review_reason, reattempt, hand_decision, created_at,
  updated_at
)
SELECT o.id, o.store_id, o.campaign_id, NULL, o.order_id, o.phone, o.amount,
  s.notify_on_shipped, o.text1, o.text2, o.text3, o.text4, o.text5,
  o.key1, o.key2, o.key3, o.key4, o.key5, 'notice', 'shipped',
  'final', CASE WHEN n.answered THEN 'no_input' ELSE 'unreachable' END,
  (9000000 + o.id)::text, CASE WHEN n.answered THEN 2 ELSE 5 END, NULL,
  CASE WHEN n.answered THEN 0 ELSE 3 END,
  CASE WHEN n.answered THEN d.call_rate ELSE 0 END, n.at + interval '60 seconds',
  n.at, n.at, 1, n.at + interval '2 seconds', n.at + interval '3 seconds', NULL,
  CASE WHEN n.answered THEN 2 ELSE 8 END, 0, n.at + interval '90 seconds', '', '', 0, '',
  n.at, n.at + interval '90 seconds'
FROM calls_order o
JOIN calls_store s ON s.id = o.store_id
JOIN demo_campaign d ON d.campaign_id = o.campaign_id
CROSS JOIN LATERAL (SELECT
  {SHIPPED_AT.format(order="o.id", created="o.created_at")} + interval '1 minute' AS at,
  random() < 0.8 AS answered) n
WHERE o.id > %(order_base)s AND o.delivery <> '' AND s.notify_on_shipped IS NOT NULL
  AND n.at >= now() - make_interval(days => {NOTICES_SINCE_DAYS})
  AND n.at <= now() - interval '2 minutes'
"""
EVENTS_SQL = """
WITH newest AS (
  SELECT * FROM calls_call
  WHERE state = 'final' AND sent_at IS NOT NULL
  ORDER BY created_at DESC, id DESC LIMIT %(n)s
)
INSERT INTO calls_callevent (call_id, at, kind, data, actor_id)
SELECT id, created_at, 'created', jsonb_build_object('source', 'csv'), %(admin)s FROM newest
UNION ALL
SELECT id, claimed_at, 'claimed', '{"attempt": 1}'::jsonb, NULL FROM newest
UNION ALL
SELECT id, sent_at, 'sent', jsonb_build_object('provider_call_id', provider_call_id), NULL
FROM newest
UNION ALL
SELECT id, sent_at + interval '20 seconds', 'polled',
  jsonb_build_object('call_status', 1, 'retry', 0, 'call_charges', '0.00'), NULL FROM newest
UNION ALL
SELECT id, finalized_at, 'final',
  jsonb_strip_nulls(jsonb_build_object('outcome', outcome, 'call_status', call_status,
    'dtmf', dtmf, 'retry', retry, 'call_charges', call_charges::text)), NULL FROM newest
"""


def _drop_constraints(cursor: Any, table: str) -> list[str]:
    """Drop `table`'s foreign keys and unique constraints (checked row by row while loading);
    return the statements that add them back, checking every row at once."""
    cursor.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = %s::regclass AND contype IN ('f', 'u') ORDER BY contype DESC""",
        [table],
    )
    constraints = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    return [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
        for name, definition in constraints
    ][::-1]


def _drop_plain_indexes(cursor: Any, table: str) -> list[str]:
    """Drop `table`'s indexes that back no constraint; return the statements that recreate them,
    with the statistics targets their columns were given (order_id_trgm_idx's)."""
    cursor.execute(
        """SELECT i.relname, pg_get_indexdef(x.indexrelid)
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           WHERE x.indrelid = %s::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)""",
        [table],
    )
    indexes = cursor.fetchall()
    cursor.execute(
        """SELECT i.relname, a.attnum, a.attstattarget
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_attribute a ON a.attrelid = x.indexrelid
           WHERE x.indrelid = %s::regclass AND a.attstattarget >= 0""",
        [table],
    )
    targets = [
        f'ALTER INDEX "{name}" ALTER COLUMN {column} SET STATISTICS {target}'
        for name, column, target in cursor.fetchall()
        if any(name == index for index, _ in indexes)
    ]
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in indexes] + targets


def generate(
    *,
    calls: int = 1_000_000,
    campaigns: int = 50,
    days: int = 60,
    running: int = 1,
    events: int = 0,
    password: str = "demo-password-123",
    api_keys: dict[str, str] | None = None,
    seed: float = 0.42,
    verbose: bool = True,
) -> DemoData:
    """Write the demo dataset into the configured database (added to whatever is there)."""
    started = time.perf_counter()

    def say(message: str) -> None:
        if verbose:
            print(f"  [{time.perf_counter() - started:6.1f}s] {message}", flush=True)

    with transaction.atomic():
        users = ensure_users(password)
        stores = _make_stores(api_keys)
        made = _make_campaigns(stores, users["admin"], campaigns, days, running)
        sizes = _campaign_sizes(calls, campaigns)
        by_store = {spec.name: spec for spec in DEMO_STORES}
        first = 0
        with connection.cursor() as cursor:
            cursor.execute(
                """CREATE TEMP TABLE demo_campaign (
                     k int, campaign_id bigint, store_id bigint, store_name text, prefix text,
                     voice_id int, call_rate numeric, running bool, start_at timestamptz,
                     span float8, first_call int, n_calls int, agent_id bigint
                   ) ON COMMIT DROP"""
            )
            rows = []
            for k, ((campaign, start, span), size) in enumerate(zip(made, sizes, strict=True)):
                spec = by_store[campaign.store.name]
                rows.append(
                    (
                        k,
                        campaign.pk,
                        campaign.store_id,
                        spec.name,
                        spec.order_prefix,
                        campaign.voice_id or spec.voice_id,
                        spec.call_rate,
                        k >= campaigns - running,
                        start,
                        # The newest campaign's calls keep arriving until a minute ago.
                        span
                        if k < campaigns - 1
                        else (timezone.now() - start).total_seconds() - 60,
                        first,
                        size,
                        users["agent"].pk,
                    )
                )
                first += size
            cursor.executemany(
                "INSERT INTO demo_campaign VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows
            )
            say(f"{len(stores)} stores, {len(made)} campaigns, 3 users")
            cursor.execute("SELECT setseed(%s)", [seed])
            # Building an index once over sorted rows is far faster than growing a dozen of
            # them row by row: drop the plain indexes, insert, build them again (same
            # definitions, read back from the catalog, all in this one transaction).
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no trigger queue for CREATE INDEX
            cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")  # index builds sort in memory
            # The figures' triggers would count the 10M-row INSERT and then the UPDATE linking
            # the orders (a join of two transition tables that size): off for the load, and
            # every call counted once at the end, as `manage.py figures --rebuild` does. The
            # orders' row triggers would count each shipped or cancelled order one at a time.
            cursor.execute("ALTER TABLE calls_call DISABLE TRIGGER USER")
            cursor.execute("ALTER TABLE calls_order DISABLE TRIGGER USER")
            constraints = _drop_constraints(cursor, "calls_call")
            constraints += _drop_constraints(cursor, "calls_order")
            rebuild = _drop_plain_indexes(cursor, "calls_call")
            rebuild += _drop_plain_indexes(cursor, "calls_order")
            cursor.execute("SELECT COALESCE(max(id), 0) FROM calls_order")
            (order_base,) = cursor.fetchone()
            cursor.execute(CALLS_SQL, {"order_base": order_base})
            say(f"{cursor.rowcount:,} calls inserted")
            cursor.execute(ORDERS_SQL, {"order_base": order_base})
            say(f"{cursor.rowcount:,} orders inserted, with their parcels")
            cursor.execute(NOTICES_SQL, {"order_base": order_base})
            say(f"{cursor.rowcount:,} notice calls of shipped orders inserted")
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('calls_order', 'id'), max(id)) "
                "FROM calls_order"
            )
            for definition in rebuild + constraints:
                cursor.execute(definition)
            say(f"{len(rebuild)} indexes built and {len(constraints)} constraints added again")
            cursor.execute("ALTER TABLE calls_call ENABLE TRIGGER USER")
            cursor.execute("ALTER TABLE calls_order ENABLE TRIGGER USER")
            groups = counters.rebuild()
            say(f"figures counted: {groups:,} groups of a day, campaign and voice id")
            inserted_events = 0
            if events:
                cursor.execute(EVENTS_SQL, {"n": events, "admin": users["admin"].pk})
                inserted_events = cursor.rowcount
                say(f"{inserted_events:,} events for the {events:,} newest final calls")
    # Fresh statistics and visibility map, as autovacuum would give a table this size in
    # production: the planner needs them to pick the indexes the pages rely on.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE calls_call")
        cursor.execute("VACUUM ANALYZE calls_order")
        cursor.execute("VACUUM ANALYZE calls_callevent")
        cursor.execute("ANALYZE calls_campaign")
    say("vacuum analyze done")
    return DemoData(
        stores=stores,
        campaigns=[c for c, _, _ in made],
        users=users,
        calls=calls,
        seconds=time.perf_counter() - started,
        events=inserted_events,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo_data", description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--events", type=int, default=0, help="timelines for the N newest calls")
    args = parser.parse_args(argv)
    if args.calls < args.campaigns or args.campaigns < 1:
        parser.error("need at least one call per campaign")
    data = generate(calls=args.calls, campaigns=args.campaigns, days=args.days, events=args.events)
    print(
        f"{data.calls:,} calls in {len(data.campaigns)} campaigns, {data.events:,} events, "
        f"in {data.seconds:.1f} s ({Call.objects.count():,} calls in the database)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
