"""Writing decisions back to the shop, from the outbox (WriteBack rows), exactly as the call
pipeline sends calls: claim, commit, then send.

- **Queued with the decision.** `queue_write_backs` runs inside the transaction that settles the
  order or changes its decision (the calls.signals.order_settled receiver; an agent's change,
  the store's policy): the rows commit with the decision or not at all. A Shopify or WooCommerce
  connection is told about the orders that came from it (they carry the shop's id); a webhook
  connection about every order of the store.
- **The current truth, once per change.** One row per (order, connection). A change of decision
  bumps the row's version and makes it due; the sender reads the row and the order together (one
  statement, one snapshot) and tells the order as it stands, so confirmed → cancelled →
  confirmed before anything went out is sent once: confirmed. What the shop last acknowledged is
  kept (`told_event`, `told_version`): a send of what it has already is skipped, and a change is
  told as one ("was confirmed"). A row bumped while it is being sent is not marked delivered by
  that send: it goes out again after it. One row is never sent twice at once (its lease), so an
  order's write-backs to a shop go out one at a time, in order.
- **Claim, commit, send.** A worker moves a due row to `sending` with a lease, under a row lock
  taken with SKIP LOCKED, and commits before the request leaves. A redelivered task finds the
  row no longer due and does nothing; a worker killed mid-request leaves a lease that runs out,
  and the sweep hands the row on again.
- **Never twice where it would show.** A Shopify tag added (or removed) again is a no-op and the
  note's robodash line is replaced, not added; a WooCommerce note carries a marker naming its
  row and version and is looked for before it is posted; a webhook carries its delivery id
  (`wb_<row>_<version>`) for the receiver to deduplicate (docs/webhooks.md).
- **Backoff, for a day.** A failure worth retrying (5xx, 429, a timeout) waits 30 s, 1, 2, 5, 10,
  30 minutes, then hourly — or the shop's Retry-After when longer — until a day after the
  version's first try; then, or at once on a failure no retry can mend (refused credentials, an
  unknown order), the row is failed, with the reason, on the order's page, where a person can
  retry it. The reason is kept as a code and the HTTP status (`WriteBack.problem` words it),
  never as the shop's reply; what a send did is kept as steps (`WriteBack.summary` words them).

Write-back never touches the calls: it runs on its own tasks, and a shop that is down delays
nothing but itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone, translation

from calls.formatting import verdict_reasons
from calls.models import Order
from robodash.celery import enqueue
from shops.models import DEFAULT_TAGS, ShopConnection, WriteBack
from shops.writeback import (
    ShopifyTarget,
    Step,
    WooCommerceTarget,
    WriteBackFailed,
    deliver_webhook,
    shopify_add_tags,
    shopify_remove_tags,
    shopify_write_note_line,
    woocommerce_add_note,
    woocommerce_set_status,
)

log = logging.getLogger(__name__)

# Like every fixed duration of the pipeline, divided by ROBODASH_TIME_SCALE (tests speed it up).
BACKOFF_SECONDS = (30, 60, 120, 300, 600, 1800, 3600)
GIVE_UP_AFTER = dt.timedelta(days=1)
LEASE_SECONDS = 90  # longer than four requests' (connect, read) timeouts: Shopify with its note


def _event_for(order: Order) -> str | None:
    if order.decision:
        return WriteBack.Event(order.decision)
    if order.status in Order.SETTLED_WITHOUT_ANSWER:
        return WriteBack.Event.NO_ANSWER
    if order.status == Order.Status.SKIPPED:
        return WriteBack.Event.SKIPPED
    return None


def _addresses(connection: ShopConnection, source: str, shop_ref: str) -> bool:
    """Whether `connection` can tell its shop about an order from `source`: only the shop an
    order came from knows its id; a merchant's own server hears of every order."""
    return connection.kind == ShopConnection.Kind.WEBHOOK or (
        source == connection.kind and bool(shop_ref)
    )


def queue_skipped_write_backs(order_ids: list[int]) -> list[WriteBack]:
    """The rows telling the shops about new orders the store's rules skipped: two queries
    whatever the batch (an import's thousands). The orders are new, so none has a row yet."""
    orders = list(
        Order.objects.filter(pk__in=order_ids, status=Order.Status.SKIPPED).values_list(
            "pk", "store_id", "source", "shop_ref"
        )
    )
    stores = {store_id for _pk, store_id, _source, _ref in orders}
    connections = list(ShopConnection.objects.filter(store_id__in=stores)) if stores else []
    rows = [
        WriteBack(order_id=pk, connection=connection, event=WriteBack.Event.SKIPPED)
        for pk, store_id, source, shop_ref in orders
        for connection in connections
        if connection.store_id == store_id and _addresses(connection, source, shop_ref)
    ]
    if rows:
        WriteBack.objects.bulk_create(rows, ignore_conflicts=True)
        transaction.on_commit(wake_outbox)
    return rows


def queue_write_backs(order_id: int) -> list[WriteBack]:
    """The rows telling the store's shops how `order` stands now (none it cannot address): new
    ones, or ones whose decision changed, bumped to a new version and due at once. Called in the
    transaction that settles the order or changes its decision."""
    order = Order.objects.get(pk=order_id)
    event = _event_for(order)
    if event is None:
        return []
    queued = []
    now = timezone.now()
    # Inside the caller's transaction (no savepoint); its own when called outside one.
    with transaction.atomic(savepoint=False):
        for connection in ShopConnection.objects.filter(store_id=order.store_id):
            if not _addresses(connection, order.source, order.shop_ref):
                continue
            # Locked: a claim committing between this read and the save below would be undone.
            pair = WriteBack.objects.filter(order=order, connection=connection)
            row = pair.select_for_update().first()
            if row is None:
                row, created = WriteBack.objects.get_or_create(
                    order=order, connection=connection, defaults={"event": event}
                )
                if created:
                    queued.append(row)
                continue
            if row.event == event:
                if row.state == WriteBack.State.DELIVERED and row.told_event != event:
                    # Delivered while the order was undecided for a while (a call again):
                    # nothing was told then, so this version goes out now.
                    row.state, row.next_try_at, row.last_error = WriteBack.State.PENDING, now, ""
                    row.attempts, row.give_up_at = 0, None
                    row.save(
                        update_fields=[
                            "state",
                            "next_try_at",
                            "last_error",
                            "attempts",
                            "give_up_at",
                        ]
                    )
                    queued.append(row)
                continue  # settled again the same way: nothing new to tell
            row.event, row.version = event, row.version + 1
            row.attempts, row.give_up_at = 0, None  # a new version has its own day of tries
            if row.state != WriteBack.State.SENDING:
                row.state, row.next_try_at, row.last_error = WriteBack.State.PENDING, now, ""
            # else: the send under way is of an older version; it will not mark this one delivered
            # (deliver compares versions) and hands the row back to be sent again.
            row.save(
                update_fields=[
                    "event",
                    "version",
                    "attempts",
                    "give_up_at",
                    "state",
                    "next_try_at",
                    "last_error",
                ]
            )
            queued.append(row)
    if queued:
        transaction.on_commit(wake_outbox)
    return queued


def wake_outbox() -> None:
    """Deliver now rather than at the next sweep; if the broker is down, the sweep will."""
    try:
        enqueue("shops.tasks.sweep_write_backs")
    except Exception as exc:
        log.warning("outbox: could not reach the broker (%s); the sweep will deliver", exc)


def _due(now: dt.datetime) -> Q:
    return Q(state=WriteBack.State.PENDING, next_try_at__lte=now) | Q(
        state=WriteBack.State.SENDING, lease_until__lt=now
    )


def claim(write_back_id: int | None = None, *, limit: int = 50) -> list[WriteBack]:
    """Due rows (or the one named), moved to sending with a lease and committed."""
    now = timezone.now()
    with transaction.atomic():
        due = WriteBack.objects.select_for_update(skip_locked=True).filter(_due(now))
        if write_back_id is not None:
            due = due.filter(pk=write_back_id)
        rows = list(due.order_by("next_try_at")[:limit])
        for row in rows:
            row.state = WriteBack.State.SENDING
            row.lease_until = now + dt.timedelta(
                seconds=LEASE_SECONDS / settings.ROBODASH_TIME_SCALE
            )
            row.attempts += 1
            row.give_up_at = row.give_up_at or now + GIVE_UP_AFTER
            row.save(update_fields=["state", "lease_until", "attempts", "give_up_at"])
    return rows


def deliver(claimed: WriteBack) -> None:
    """Send one claimed row as its order stands now, and record how it went."""
    # The row and its order in one statement: the version sent is never newer than the order
    # read, so a change committed after this read is always sent again.
    row = (
        WriteBack.objects.select_related("order", "order__decided_by", "connection")
        .filter(pk=claimed.pk, state=WriteBack.State.SENDING)
        .first()
    )
    if row is None:
        return  # delivered or failed meanwhile by a worker whose lease had run out
    event = _event_for(row.order)
    try:
        if event is None:
            told, steps = row.told_event, [{"code": "undecided"}]
        elif event == row.told_event:
            told, steps = event, [{"code": "already_told"}]
        else:
            told, steps = event, perform(row, event)
    except WriteBackFailed as failure:
        _failed(row, failure)
        return
    now = timezone.now()
    sent = WriteBack.objects.filter(pk=row.pk, state=WriteBack.State.SENDING)
    done = {
        "result": steps,
        "told_event": told,
        "told_version": row.version,
        "last_error": "",
        "lease_until": None,
    }
    if sent.filter(version=row.version).update(
        state=WriteBack.State.DELIVERED, delivered_at=now, **done
    ):
        return
    # The decision changed while this was sent: what was sent is what the shop has now, and the
    # row goes again with the new version.
    if sent.update(state=WriteBack.State.PENDING, next_try_at=now, **done):
        wake_outbox()


def _failed(row: WriteBack, failure: WriteBackFailed) -> None:
    now = timezone.now()
    sending = WriteBack.objects.filter(pk=row.pk, state=WriteBack.State.SENDING)
    this_version = sending.filter(version=row.version)
    give_up = not failure.retry or (row.give_up_at is not None and now >= row.give_up_at)
    if give_up:
        reason = failure.stored if not failure.retry else f"{WriteBack.GAVE_UP}:{failure.stored}"
        failed = this_version.update(
            state=WriteBack.State.FAILED, last_error=reason, lease_until=None
        )
        if failed:
            log.warning("write-back %s failed: %s", row.pk, reason)
    else:
        wait = BACKOFF_SECONDS[min(row.attempts, len(BACKOFF_SECONDS)) - 1]
        wait = max(wait, int(failure.retry_after or 0))
        failed = this_version.update(
            state=WriteBack.State.PENDING,
            next_try_at=now + dt.timedelta(seconds=wait / settings.ROBODASH_TIME_SCALE),
            last_error=failure.stored,
            lease_until=None,
        )
    if not failed:
        # Bumped while this was sent: the new version gets its own tries, starting now.
        sending.update(
            state=WriteBack.State.PENDING,
            next_try_at=now,
            last_error=failure.stored,
            lease_until=None,
        )


def retry(row: WriteBack) -> bool:
    """A person's Retry of a failed row: from now, a new day of tries."""
    return bool(
        WriteBack.objects.filter(pk=row.pk, state=WriteBack.State.FAILED).update(
            state=WriteBack.State.PENDING, next_try_at=timezone.now(), give_up_at=None
        )
    )


# --- What each shop is told ---------------------------------------------------------------------


def marker(row: WriteBack) -> str:
    """Names the row and version a WooCommerce note tells: looked for before it is posted. A
    first version's is the marker rows had before there were versions, so a row whose note was
    being sent across the upgrade finds it."""
    version = f"v{row.version}" if row.version > 1 else ""
    return f"[robodash:wb{row.pk}{version}]"


EVENT_WORDS = {
    "confirmed": "confirmed",
    "cancelled": "cancelled",
    "no_answer": "no answer",
    "skipped": "not called (the store's rules)",
}


def decided_by(order: Order) -> str:
    """Who made the order's decision, in the English the shops' notes are written in."""
    decider = order.decider
    if decider is None:
        return "no answer after every attempt"
    if decider == "customer":
        return "the customer, by key press"
    if decider == "policy":
        return "the store's rule: no answer after every attempt"
    return f"{decider}, by hand"


def decision_line(order: Order, event: str, was: str) -> str:
    """The note telling `event` (English: it is written into the shop, read there), as a
    change from what the shop was told before (`was`) when it was told anything."""
    if not was:
        if event == WriteBack.Event.NO_ANSWER:
            return "Robocall: No answer after every attempt"
        if event == WriteBack.Event.SKIPPED:
            with translation.override("en"):
                why = verdict_reasons(order.verdict_reasons)
            return f"Robocall: Not called, skipped by the store's rules ({why})"
        return f"Robocall: {WriteBack.Event(event).label} ({decided_by(order)})"
    decider = order.decider
    who = {"customer": "the customer", "policy": "the store's rule"}.get(decider or "", decider)
    by = f", by {who}" if who else ""
    return f"Robocall: decision changed: {EVENT_WORDS[event]} (was {EVENT_WORDS[was]}{by})"


def perform(row: WriteBack, event: str) -> list[Step]:
    """Tell `row`'s connection that its order now stands at `event`: what each request did."""
    connection, order = row.connection, row.order
    line = decision_line(order, event, row.told_event)
    if connection.kind == ShopConnection.Kind.SHOPIFY:
        shop = ShopifyTarget(connection.shopify_admin_api_url(), connection.secret("access_token"))
        # A tag the connection has never set (one for an event added since) is the default.
        named = {**DEFAULT_TAGS, **(connection.tags or {})}
        tags = {key: tag for key, tag in named.items() if tag}
        current = tags.get(event)
        others = sorted({tag for tag in tags.values() if tag != current})
        # Removed first: the order never carries two decisions at once (a shipping filter on
        # the confirmed tag must not pick up a cancelled order), at worst none for a moment.
        steps = [shopify_remove_tags(shop, order.shop_ref, others)] if others else []
        steps.append(
            shopify_add_tags(shop, order.shop_ref, [current]) if current else {"code": "no_tag"}
        )
        if connection.write_note:
            steps.append(shopify_write_note_line(shop, order.shop_ref, line))
        return steps
    if connection.kind == ShopConnection.Kind.WOOCOMMERCE:
        target = WooCommerceTarget(
            connection.site_url,
            connection.secret("consumer_key"),
            connection.secret("consumer_secret"),
        )
        note = f"{line}. {marker(row)}"
        steps = [woocommerce_add_note(target, order.shop_ref, note, marker(row))]
        status = (connection.status_mapping or {}).get(event)
        if status:
            steps.append(woocommerce_set_status(target, order.shop_ref, status))
        return steps
    return [
        deliver_webhook(
            connection.webhook_url,
            connection.secret("signing_secret"),
            webhook_payload(row, order, event),
            delivery_id=row.delivery_id,
        )
    ]


def webhook_payload(row: WriteBack, order: Order, event: str) -> dict[str, Any]:
    calls = order.calls.aggregate(charges=Sum("call_charges"), count=Count("id"))
    # What the receiver was told before, in the `decision` field's terms: null the first time,
    # "" when it was told the order went unanswered.
    previous = None if not row.told_event else _decision_of(row.told_event)
    return {
        "id": row.delivery_id,
        "event": f"order.{event}",
        "order": {
            "order_id": order.order_id,
            "status": order.status,
            "decision": order.decision,
            "previous_decision": previous,
            "decided_by": order.decider,
            "decided_at": order.decided_at.isoformat() if order.decided_at else None,
            "verdict": order.verdict,
            "verdict_reasons": order.verdict_reasons,
            "amount": str(order.amount),
            "charges_total": str(calls["charges"] or "0.00"),
            "calls": calls["count"],
        },
    }


def _decision_of(event: str) -> str:
    return "" if event in (WriteBack.Event.NO_ANSWER, WriteBack.Event.SKIPPED) else event
