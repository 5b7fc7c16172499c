"""Writing decisions back to the shop, from the outbox (WriteBack rows), exactly as the call
pipeline sends calls: claim, commit, then send.

- **Queued with the decision.** `queue_write_backs` runs inside the transaction that settles the
  order (the calls.signals.order_settled receiver): the rows commit with the decision or not at
  all. A Shopify or WooCommerce connection is told about the orders that came from it (they
  carry the shop's id); a webhook connection about every order of the store.
- **Claim, commit, send.** A worker moves a due row to `sending` with a lease, under a row lock
  taken with SKIP LOCKED, and commits before the request leaves. A redelivered task finds the
  row no longer due and does nothing; a worker killed mid-request leaves a lease that runs out,
  and the sweep hands the row on again.
- **Never twice where it would show.** A Shopify tag added again is a no-op; a WooCommerce note
  carries a marker naming its row and is looked for before it is posted; a webhook carries its
  delivery id (`wb_<row>`) for the receiver to deduplicate (docs/webhooks.md).
- **Backoff, for a day.** A failure worth retrying (5xx, 429, a timeout) waits 30 s, 1, 2, 5, 10,
  30 minutes, then hourly — or the shop's Retry-After when longer — until a day after the first
  try; then, or at once on a failure no retry can mend (refused credentials, an unknown order),
  the row is failed, with the reason, on the order's page, where a person can retry it. The
  reason is kept as a code and the HTTP status (`WriteBack.problem` words it), never as the
  shop's reply.

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
from django.utils import timezone

from calls.models import Order
from robodash.celery import enqueue
from shops.models import ShopConnection, WriteBack
from shops.writeback import (
    ShopifyTarget,
    WooCommerceTarget,
    WriteBackFailed,
    deliver_webhook,
    shopify_add_tags,
    shopify_set_note,
    woocommerce_add_note,
    woocommerce_set_status,
)

log = logging.getLogger(__name__)

# Like every fixed duration of the pipeline, divided by ROBODASH_TIME_SCALE (tests speed it up).
BACKOFF_SECONDS = (30, 60, 120, 300, 600, 1800, 3600)
GIVE_UP_AFTER = dt.timedelta(days=1)
LEASE_SECONDS = 90  # longer than two requests' (connect, read) timeouts


def _event_for(order: Order) -> str | None:
    if order.decision:
        return WriteBack.Event(order.decision)
    if order.status in Order.SETTLED_WITHOUT_ANSWER:
        return WriteBack.Event.NO_ANSWER
    return None


def queue_write_backs(order_id: int) -> list[WriteBack]:
    """The rows telling the store's shops how `order` settled (none it cannot address)."""
    order = Order.objects.get(pk=order_id)
    event = _event_for(order)
    if event is None:
        return []
    queued = []
    for connection in ShopConnection.objects.filter(store_id=order.store_id):
        if connection.kind != ShopConnection.Kind.WEBHOOK and (
            order.source != connection.kind or not order.shop_ref
        ):
            continue  # only the shop an order came from knows its id
        row, created = WriteBack.objects.get_or_create(
            order=order, connection=connection, event=event
        )
        if created:
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


def deliver(row: WriteBack) -> None:
    """Send one claimed row and record how it went."""
    try:
        result = perform(row)
    except WriteBackFailed as failure:
        _failed(row, failure)
        return
    WriteBack.objects.filter(pk=row.pk, state=WriteBack.State.SENDING).update(
        state=WriteBack.State.DELIVERED,
        delivered_at=timezone.now(),
        result=result[:300],
        last_error="",
        lease_until=None,
    )


def _failed(row: WriteBack, failure: WriteBackFailed) -> None:
    now = timezone.now()
    done = WriteBack.objects.filter(pk=row.pk, state=WriteBack.State.SENDING)
    give_up = not failure.retry or (row.give_up_at is not None and now >= row.give_up_at)
    if give_up:
        reason = failure.stored if not failure.retry else f"{WriteBack.GAVE_UP}:{failure.stored}"
        done.update(state=WriteBack.State.FAILED, last_error=reason, lease_until=None)
        log.warning("write-back %s failed: %s", row.pk, reason)
        return
    wait = BACKOFF_SECONDS[min(row.attempts, len(BACKOFF_SECONDS)) - 1]
    wait = max(wait, int(failure.retry_after or 0))
    done.update(
        state=WriteBack.State.PENDING,
        next_try_at=now + dt.timedelta(seconds=wait / settings.ROBODASH_TIME_SCALE),
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
    return f"[robodash:wb{row.pk}]"


def decided_by(order: Order) -> str:
    if not order.decision:
        return "no answer after every attempt"
    if order.decided_via == Order.DecidedVia.KEY:
        return "the customer, by key press"
    if order.decided_via == Order.DecidedVia.POLICY:
        return "no answer after every attempt (the store's rule)"
    return f"{order.decided_by.username}, by hand" if order.decided_by else "an agent, by hand"


def perform(row: WriteBack) -> str:
    connection = ShopConnection.objects.get(pk=row.connection_id)
    order = Order.objects.select_related("decided_by").get(pk=row.order_id)
    label = WriteBack.Event(row.event).label
    if connection.kind == ShopConnection.Kind.SHOPIFY:
        shop = ShopifyTarget(connection.shopify_admin_api_url(), connection.secret("access_token"))
        tag = (connection.tags or {}).get(row.event)
        done = shopify_add_tags(shop, order.shop_ref, [tag]) if tag else "no tag set"
        if connection.write_note:
            shopify_set_note(shop, order.shop_ref, f"Robocall: {label} ({decided_by(order)})")
        return done
    if connection.kind == ShopConnection.Kind.WOOCOMMERCE:
        target = WooCommerceTarget(
            connection.site_url,
            connection.secret("consumer_key"),
            connection.secret("consumer_secret"),
        )
        note = f"Robocall: {label} ({decided_by(order)}). {marker(row)}"
        done = woocommerce_add_note(target, order.shop_ref, note, marker(row))
        status = (connection.status_mapping or {}).get(row.event)
        if status:
            done += "; " + woocommerce_set_status(target, order.shop_ref, status)
        return done
    return deliver_webhook(
        connection.webhook_url,
        connection.secret("signing_secret"),
        webhook_payload(row, order),
        delivery_id=f"wb_{row.pk}",
    )


def webhook_payload(row: WriteBack, order: Order) -> dict[str, Any]:
    calls = order.calls.aggregate(charges=Sum("call_charges"), count=Count("id"))
    return {
        "id": f"wb_{row.pk}",
        "event": f"order.{row.event}",
        "order": {
            "order_id": order.order_id,
            "status": order.status,
            "decision": order.decision,
            "decided_by": order.decider,
            "decided_at": order.decided_at.isoformat() if order.decided_at else None,
            "amount": str(order.amount),
            "charges_total": str(calls["charges"] or "0.00"),
            "calls": calls["count"],
        },
    }
