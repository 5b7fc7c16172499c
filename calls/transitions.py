"""Every change of a call's `state` and `outcome`, of an order's `status` and decision, and of a
campaign's `status`.

No other module writes those fields (tests/calls/test_transitions.py reads the code to prove
it). Each function runs inside the caller's transaction, or opens its own, and writes a
CallEvent for the call's timeline; the order follows its latest call in the same transaction.

Calls
=====

======================  ==========================  ============================================
from                    to                          by (function: who)
======================  ==========================  ============================================
(new)                   queued                      queue_call: the single-order form, call
                                                    again; imports insert queued rows in bulk
                                                    (calls/intake/bulk.py)
(new)                   queued (a notice)           queue_notice_call: calls/notices.py, when
                                                    the order ships or the shop cancels it;
                                                    one per order and event
(new)                   queued                      finish, by the store's re-attempt policy
                                                    (off by default): after a call of the
                                                    order's latest ends unreachable or no
                                                    input, if the order is undecided, nothing
                                                    is in flight and fewer than N re-attempts
                                                    were made; at least M minutes later, at the
                                                    next calling time
queued                  sending                     start_sending: a worker's claim, under a row
                                                    lock, committed before the request leaves
queued                  final (withdrawn)           withdraw: a person, or the shop cancelling
                                                    the order, only while still queued
sending                 in_progress                 mark_sent: the provider gave a call id
sending                 queued                      requeue_unsent: nothing left (no connection,
                                                    a refused key); retried later
sending                 final (failed)              finish_if_sending: a definite rejection
sending                 final (needs_review)        finish_if_sending: an ambiguous answer;
                                                    finish: the sending lease ran out
in_progress             final (confirmed,           finish: polling saw the final status
                        cancelled,
                        callback_requested,
                        no_input, unreachable)
in_progress             final (needs_review)        finish: no final status within the call's
                                                    lifetime, or the provider keeps refusing
                                                    the status checks
final (needs_review)    in_progress                 mark_sent, a *reopening*: the request whose
                                                    lease ran out was accepted after all, and
                                                    nobody has acted on the review (no call
                                                    again, not handled): follow the real call
final (needs_review)    queued                      requeue_unsent, a *reopening*: that request
                                                    never reached the provider, so nothing was
                                                    placed; same conditions
======================  ==========================  ============================================

No other final call ever changes state: a late acceptance of a call someone already acted on is
recorded as an event only.

A notice call (purpose notice, calls/notices.py) moves through the same states, but only the call
itself: its order never follows it, and it opens or closes no follow-up, starts no re-attempt
and settles nothing for the shop. Every rule below that reads "the order's latest call", or a
call of the order in flight, reads verification calls alone (`Call.objects.verifying()`). A
notice call withdrawn (by a person, or with the order's other queued calls when the shop
cancels it) leaves the order as it is too.

Orders
======

Status follows the order's latest call: queued -> waiting; sending or in_progress -> calling;
final -> its outcome (failed -> rejected). A final confirmed or cancelled call also records the
decision, `decided_via` key (the customer's key press). Then:

======================  ==========================  ============================================
from                    to                          by
======================  ==========================  ============================================
(new)                   waiting                     intake: imports, the single-order form
(new)                   rejected, in the queue      reject_at_intake: a shop's order that cannot
                                                    be called (its phone is not a Pakistani
                                                    mobile), kept with the reason, no call
(new)                   skipped; held, in the       take_in_judged (one order), judged_state
                        queue ("held")              written by COPY (calls/intake/bulk.py): the
                                                    store's rules said skip or hold
                                                    (calls/rules.py), with the verdict and its
                                                    reasons; never called but by hand (Call
                                                    again keeps the verdict)
skipped, held, no call  withdrawn, out of the queue withdraw_uncalled: the shop cancelled it
any not decided by an   follows its latest call     every call transition above
agent
undecided, latest call  cancelled (decided_via      _after_outcome, by the store's rule
unreachable / no input, policy)                     after_last_attempt = cancel
no re-attempt to come
any, no call in flight  confirmed / cancelled       decide_by_hand: an admin or an agent, with a
                        (decided_via agent)         note; changing a decision the order has (the
                                                    customer's key press, the store's rule, a
                                                    colleague's) needs a note and the decision
                                                    the person saw. Refused once the order is
                                                    known to be shipped
======================  ==========================  ============================================

A verification call that reaches the provider marks its order `called` (mark_sent), for the
returns figures; a notice call does not.

Deliveries
==========

What became of the parcel: `delivery` none -> shipped -> delivered | returned, with when it got
there, where robodash learnt it and when (record_delivery, from a shop's webhook, the API, a
courier's sheet or by hand). delivery_update_wins is the one rule of which update wins:

======================  ==========================  ============================================
now                     an update saying            result
======================  ==========================  ============================================
any                     the same state              a repeat: nothing changes
none                    shipped, delivered,         applied (forward)
                        returned
shipped                 delivered, returned         applied (forward)
shipped, delivered,     none or shipped             ignored, and noted on the timeline
returned                                            (backwards)
delivered               returned, or the reverse    applied with a later time than the one
                                                    the order has (delivered, then sent back),
                                                    or by hand; else ignored and noted
======================  ==========================  ============================================

An update without a time of its own (a courier's sheet) is dated when it is received. An order
known to have shipped leaves the follow-up queue (there is nothing left to decide), and its
decision can no longer change. The update that first says shipped queues the store's shipped
notice call, if it has chosen a voice for one (calls/notices.py), in the same transaction.
record_deliveries applies a batch of such updates (a courier's sheet,
calls/intake/delivery_sheets.py) under the same rule, each with what record_delivery would have
written, in a few statements for the whole batch instead of several per order.

A decision by hand is also written on the order's latest final call alone (`Call.hand_decision`),
which the figures read in place of its key press (calls/figures/stats.py). A decision by the
store's rule is not: the figures count that call as the no answer it was.

The follow-up (the agents' queue) is the order's: `followup` names why a person is needed.

======================  ==========================  ============================================
from                    to                          by
======================  ==========================  ============================================
not in the queue        in the queue (the reason)   _after_outcome: the latest call ended
                                                    callback requested, needs review, failed
                                                    (rejected), or unreachable / no input with
                                                    no re-attempt to come and the rule `queue`;
                                                    reject_at_intake
in the queue            out of it                   a key press or a withdrawal of the latest
                                                    call; a decision (by hand or the rule); the
                                                    reopening of a call sent to review; an
                                                    agent's Mark handled (calls/actions.py)
======================  ==========================  ============================================

An order already decided by key press or by hand is not queued again by a later unanswered call.
Claims, releases, take-overs, callback times and Mark handled are calls/actions.py's; every change
of the follow-up is an OrderEvent on the order's timeline.

Campaigns
=========

A campaign's status says whether the dispatcher sends its queued calls: only a running
campaign's. Each change is a conditional update whose row count says whether it happened, so two
people pressing at once cannot flip it twice. Waking the dispatcher is the caller's (the rules
of a launch are in calls/launches.py).

======================  ==========================  ============================================
from                    to                          by
======================  ==========================  ============================================
(new)                   running                     the model's default: the single-order form,
                                                    a shop's or the API's orders
(new)                   draft                       draft_campaign: an upload, import_calls;
                                                    nothing is sent until it is launched
draft                   running                     run_campaign: a launch (the page, its
                                                    worker, import_calls) the balance allows
running                 draft                       hold_in_draft: import_calls while it adds
                                                    calls, until its balance check says yes
running                 paused                      pause_campaign: a person
paused                  running                     resume_campaign: a person
======================  ==========================  ============================================

The figures themselves are not written here: PostgreSQL's triggers count every change to the
calls, in the same transaction, whoever makes it (calls/figures/counters.py).

An order that settles — decided, by key press, by hand or by the store's rule, or ended
unreachable or without input with no re-attempt to come — and an order whose decision changes
send `calls.signals.order_settled` in the same transaction: the shops app queues the write-back
to the shop there (the order as it stands when it is sent), so a decision and its outbox row
commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import IntegrityError, connection, models, transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from calls.models import Call, CallEvent, Campaign, Order, OrderEvent, Store, User
from calls.redaction import redact
from calls.rules import Verdict
from calls.signals import order_settled, order_shipped, orders_skipped

# Calls in these states may still reach the customer: never start a second one beside them.
ACTIVE_STATES = (Call.State.QUEUED, Call.State.SENDING, Call.State.IN_PROGRESS)

ORDER_STATUS_OF_STATE = {
    Call.State.QUEUED: Order.Status.WAITING,
    Call.State.SENDING: Order.Status.CALLING,
    Call.State.IN_PROGRESS: Order.Status.CALLING,
}
ORDER_STATUS_OF_OUTCOME = {
    Call.Outcome.CONFIRMED: Order.Status.CONFIRMED,
    Call.Outcome.CANCELLED: Order.Status.CANCELLED,
    Call.Outcome.CALLBACK_REQUESTED: Order.Status.CALLBACK_REQUESTED,
    Call.Outcome.NO_INPUT: Order.Status.NO_INPUT,
    Call.Outcome.UNREACHABLE: Order.Status.UNREACHABLE,
    Call.Outcome.FAILED: Order.Status.REJECTED,
    Call.Outcome.NEEDS_REVIEW: Order.Status.NEEDS_REVIEW,
    Call.Outcome.WITHDRAWN: Order.Status.WITHDRAWN,
}
# A customer's key press that decides the order.
DECIDING_OUTCOMES = {
    Call.Outcome.CONFIRMED: Order.Decision.CONFIRMED,
    Call.Outcome.CANCELLED: Order.Decision.CANCELLED,
}
# The store's re-attempt policy calls an order again after these (the provider's free retries
# are used up, or the customer answered without pressing a key).
REATTEMPT_OUTCOMES = (Call.Outcome.UNREACHABLE, Call.Outcome.NO_INPUT)
# Why an order is in front of a person, by the outcome of the call that put it there.
FOLLOW_UP_OF_OUTCOME = {
    Call.Outcome.CALLBACK_REQUESTED: Order.FollowUp.CALLBACK_REQUESTED,
    Call.Outcome.UNREACHABLE: Order.FollowUp.UNREACHABLE,
    Call.Outcome.NO_INPUT: Order.FollowUp.NO_INPUT,
    Call.Outcome.NEEDS_REVIEW: Order.FollowUp.NEEDS_REVIEW,
    Call.Outcome.FAILED: Order.FollowUp.REJECTED,
}
# The parcel's states in the order they happen; delivered and returned are both ends.
DELIVERY_RANK = {
    Order.Delivery.NONE: 0,
    Order.Delivery.SHIPPED: 1,
    Order.Delivery.DELIVERED: 2,
    Order.Delivery.RETURNED: 2,
}
# A writer of many orders at once counts their figures itself, by batch: inside its transaction
# it sets this setting for its UPDATE, which the orders' update trigger then skips, and runs
# calls_count_orders(ids, -1) before it and calls_count_orders(ids, 1) after it
# (calls/figures/counters.py order_batch_function_sql), then unsets it (record_deliveries).
BATCH_COUNTING_SETTING = "robodash.count_orders"
BATCH_COUNTING = "by_batch"
# A decision note is shown on the order page and in the timeline; a short paragraph is plenty.
MAX_NOTE_LENGTH = 2000


class TransitionRefused(Exception):
    """The change cannot be made now; the message says why, in words for the person who asked."""


def order_status_for(state: str, outcome: str) -> str:
    if state == Call.State.FINAL:
        return ORDER_STATUS_OF_OUTCOME[Call.Outcome(outcome)]
    return ORDER_STATUS_OF_STATE[Call.State(state)]


def order_status_sql(alias: str) -> str:
    """order_status_for as SQL over a calls_call row named `alias`, for writers of many orders
    at once (the bench's demo data)."""
    whens = [
        f"WHEN {alias}.state = '{s.value}' THEN '{o.value}'"
        for s, o in ORDER_STATUS_OF_STATE.items()
    ]
    whens += [
        f"WHEN {alias}.outcome = '{c.value}' THEN '{o.value}'"
        for c, o in ORDER_STATUS_OF_OUTCOME.items()
    ]
    return f"CASE {' '.join(whens)} END"


def _present(data: dict[str, object]) -> dict[str, object]:
    """An event's values without the empty ones."""
    return {k: v for k, v in data.items() if v not in ("", None)}


def record_event(
    call: Call | int,
    kind: str,
    *,
    actor: User | None = None,
    at: dt.datetime | None = None,
    **data: object,
) -> CallEvent:
    """One line of a call's timeline; empty values are left out of its data."""
    return CallEvent.objects.create(
        call_id=call if isinstance(call, int) else call.pk,
        kind=kind,
        actor=actor,
        at=at or timezone.now(),
        data=_present(data),
    )


def record_order_event(
    order: Order | int,
    kind: str,
    *,
    actor: User | None = None,
    at: dt.datetime | None = None,
    **data: object,
) -> OrderEvent:
    """One line of an order's own history; empty values are left out of its data."""
    return OrderEvent.objects.create(
        order_id=order if isinstance(order, int) else order.pk,
        kind=kind,
        actor=actor,
        at=at or timezone.now(),
        data=_present(data),
    )


def _order_follows_sql(*, decision: bool = False, reached: bool = False) -> str:
    """The UPDATE by which the order of the call row `c` (id, shop_order_id, purpose: a CTE of
    the statement it ends) takes the status %(status)s, at %(now)s, if it follows that call: the
    call is the order's latest verification call and no agent has decided the order. With
    `decision`, also the decision %(decision)s of the customer's key press; with `reached` (the
    call reached the provider), the order is marked called whether it follows or not. A notice
    call never moves its order, and an order it would leave as it is is not written."""
    verify = Call.Purpose.VERIFY.value
    follows = (
        f"o.decided_via <> '{Order.DecidedVia.AGENT.value}' AND NOT EXISTS ("
        "SELECT 1 FROM calls_call later WHERE later.shop_order_id = o.id "
        f"AND later.purpose = '{verify}' AND later.id > c.id)"
    )
    if decision:
        changes = (
            "status = %(status)s, decision = %(decision)s, "
            f"decided_via = '{Order.DecidedVia.KEY.value}', decided_by_id = NULL, "
            "decided_at = %(now)s, decision_note = ''"
        )
        which = follows
    elif reached:
        moves = f"o.status <> %(status)s AND {follows}"
        changes = f"status = CASE WHEN {moves} THEN %(status)s ELSE o.status END, called = TRUE"
        which = f"(NOT o.called OR ({moves}))"
    else:
        changes, which = "status = %(status)s", f"o.status <> %(status)s AND {follows}"
    return (
        f"UPDATE calls_order o SET {changes}, updated_at = %(now)s FROM c "
        f"WHERE o.id = c.shop_order_id AND c.purpose = '{verify}' AND {which}"
    )


def _order_follows(call: Call, state: str, outcome: str, *, reached: bool = False) -> None:
    """The order takes the status of `call` (_order_follows_sql says when). The caller's
    transaction holds the call."""
    if call.purpose != Call.Purpose.VERIFY:
        return
    decision = DECIDING_OUTCOMES.get(Call.Outcome(outcome)) if outcome else None
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH c (id, shop_order_id, purpose) AS ("
            "  VALUES (%(call)s::bigint, %(order)s::bigint, %(purpose)s)) "
            + _order_follows_sql(decision=decision is not None, reached=reached),
            {
                "call": call.pk,
                "order": call.shop_order_id,
                "purpose": call.purpose,
                "status": order_status_for(state, outcome),
                "decision": decision,
                "now": timezone.now(),
            },
        )


# The CallEvent of the call row `c` of a statement (%(kind)s, at %(now)s, its values %(data)s),
# as record_event writes it: a CTE beside the change it records.
_CALL_EVENT_SQL = (
    "e AS (INSERT INTO calls_callevent (call_id, kind, at, data, actor_id) "
    "SELECT c.id, %(kind)s, %(now)s, %(data)s::jsonb, NULL FROM c)"
)


# --- Calls ------------------------------------------------------------------------------------


def queue_call(
    order: Order,
    *,
    campaign_id: int,
    scheduled_for: dt.datetime,
    parent: Call | None = None,
    actor: User | None = None,
    reattempt: int = 0,
    **event_data: object,
) -> Call:
    """(new) -> queued: a call of `order`, saying what the order says."""
    now = timezone.now()
    call = Call.objects.create(
        store_id=order.store_id,
        campaign_id=campaign_id,
        shop_order=order,
        parent=parent,
        scheduled_for=scheduled_for,
        created_at=now,
        reattempt=reattempt,
        **order.message_values(),
    )
    record_event(
        call,
        CallEvent.Kind.CREATED,
        actor=actor,
        at=now,
        scheduled_for=scheduled_for.isoformat(),
        parent=parent.pk if parent is not None else None,
        reattempt=reattempt or None,
        **event_data,
    )
    _order_follows(call, Call.State.QUEUED, "")
    return call


# The constraint that keeps one notice call per order and event (calls/models.py).
NOTICE_CONSTRAINT = "call_one_notice_per_order_event"


def _constraint_of(error: IntegrityError) -> str:
    """The name of the constraint PostgreSQL says `error` broke ("" if it names none)."""
    diag = getattr(error.__cause__, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


def queue_notice_call(
    order: Order,
    notice_of: str,
    *,
    voice_id: int,
    scheduled_for: dt.datetime,
) -> Call | None:
    """(new) -> queued: a notice call telling the customer of `notice_of` (Call.NoticeOf), in
    the order's campaign, saying what the order says in the voice `voice_id`; None when the
    order has its notice of that event already. The order is left as it is (calls/notices.py
    decides whether a notice is due). At most one per order and event, whoever else is adding
    it at the same moment: the insert runs in a savepoint, and the unique constraint
    call_one_notice_per_order_event makes a second one (a webhook sent twice at once) wait for
    the first to commit, then fail, and it is dropped here."""
    notices = Call.objects.filter(shop_order=order, purpose=Call.Purpose.NOTICE)
    if notices.filter(notice_of=notice_of).exists():  # the usual resend, without an error
        return None
    now = timezone.now()
    try:
        with transaction.atomic():
            call = Call.objects.create(
                store_id=order.store_id,
                campaign_id=order.campaign_id,
                shop_order=order,
                purpose=Call.Purpose.NOTICE,
                notice_of=notice_of,
                scheduled_for=scheduled_for,
                created_at=now,
                **{**order.message_values(), "voice_id": voice_id},
            )
    except IntegrityError as error:
        if _constraint_of(error) != NOTICE_CONSTRAINT:
            raise
        return None
    record_event(
        call,
        CallEvent.Kind.CREATED,
        at=now,
        scheduled_for=scheduled_for.isoformat(),
        purpose=Call.Purpose.NOTICE.value,
        notice_of=notice_of,
    )
    return call


def start_sending(call: Call, now: dt.datetime) -> None:
    """queued -> sending. The caller holds the row lock and commits before sending. The call,
    its event and its order in one statement: a worker claims every call it sends."""
    call.state = Call.State.SENDING
    call.claimed_at = now
    call.send_attempts += 1
    call.updated_at = now
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH c AS (UPDATE calls_call SET state = %(state)s, claimed_at = %(now)s, "
            "  send_attempts = %(attempts)s, updated_at = %(now)s WHERE id = %(call)s "
            "  RETURNING id, shop_order_id, purpose), "
            f"{_CALL_EVENT_SQL} {_order_follows_sql()}",
            {
                "call": call.pk,
                "state": call.state,
                "attempts": call.send_attempts,
                "now": now,
                "kind": CallEvent.Kind.CLAIMED.value,
                "data": json.dumps(_present({"attempt": call.send_attempts})),
                "status": order_status_for(Call.State.SENDING, ""),
            },
        )


def _lease_lost_to_review(call: Call) -> QuerySet[Call]:
    """This very claim of `call`, if the sweep sent it to review when its lease ran out while the
    request was still under way, and nobody has acted on it since: the only final calls that
    may reopen (see the table above)."""
    # Untouched: the review still waits in the queue, or (a decided order's call) none was
    # opened; never once an agent decided or someone marked the review handled.
    untouched_order = Order.objects.filter(
        Q(followup=Order.FollowUp.NEEDS_REVIEW)
        | Q(followup="", decided_via__in=[Order.DecidedVia.KEY, Order.DecidedVia.POLICY]),
        pk=OuterRef("shop_order_id"),
    ).exclude(decided_via=Order.DecidedVia.AGENT)
    # A notice call opens no review and nobody acts on its order for it: nothing to protect.
    acted_on = Q() if call.purpose == Call.Purpose.NOTICE else Exists(untouched_order)
    return Call.objects.filter(
        ~Exists(Call.objects.filter(parent=OuterRef("pk"))),
        acted_on,
        id=call.id,
        claimed_at=call.claimed_at,
        state=Call.State.FINAL,
        outcome=Call.Outcome.NEEDS_REVIEW,
        provider_call_id__isnull=True,
    )


_REOPENED = {"outcome": "", "finalized_at": None, "review_reason": ""}


def mark_sent(call: Call, provider_call_id: str, first_poll_at: dt.datetime) -> bool:
    """sending -> in_progress, or the reopening final (needs_review) -> in_progress. False when
    someone had already acted on the review: their work is kept, the provider's id recorded."""
    now = timezone.now()
    sent = {
        "state": Call.State.IN_PROGRESS,
        "provider_call_id": provider_call_id,
        "sent_at": now,
        "next_poll_at": first_poll_at,
        "last_error": "",
        "updated_at": now,
    }
    with transaction.atomic():
        if _sent_while_sending(call, sent):
            return True
        if _lease_lost_to_review(call).update(**sent, **_REOPENED):
            kind = CallEvent.Kind.SENT
            record_event(call, kind, provider_call_id=provider_call_id, reopened=True)
            _order_follows(call, Call.State.IN_PROGRESS, "", reached=True)
            if call.purpose == Call.Purpose.VERIFY:
                _close_followup(call.shop_order_id, now, call=call.pk, why="reopened")
            return True
        record_event(call, CallEvent.Kind.SENT, provider_call_id=provider_call_id, late=True)
        return False


def _sent_while_sending(call: Call, sent: dict[str, Any]) -> bool:
    """mark_sent's usual case, sending -> in_progress, as one statement (the call, its event and
    its order, marked called): every call placed takes it. False when the call is no longer
    sending."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH c AS (UPDATE calls_call SET state = %(state)s, "
            "  provider_call_id = %(provider_call_id)s, sent_at = %(now)s, "
            "  next_poll_at = %(next_poll_at)s, last_error = '', updated_at = %(now)s "
            "  WHERE id = %(call)s AND state = %(sending)s RETURNING id, shop_order_id, purpose), "
            f"{_CALL_EVENT_SQL}, o AS ({_order_follows_sql(reached=True)}) "
            "SELECT count(*) FROM c",
            {
                **sent,
                "call": call.pk,
                "sending": Call.State.SENDING.value,
                "now": sent["sent_at"],
                "kind": CallEvent.Kind.SENT.value,
                "data": json.dumps(_present({"provider_call_id": sent["provider_call_id"]})),
                "status": order_status_for(Call.State.IN_PROGRESS, ""),
            },
        )
        (changed,) = cursor.fetchone()
    return bool(changed)


def requeue_unsent(call: Call, error: str, retry_at: dt.datetime) -> None:
    """sending -> queued, or the reopening final (needs_review) -> queued: the request never
    reached the provider (or the key was refused), so nothing was placed."""
    now = timezone.now()
    queued = {
        "state": Call.State.QUEUED,
        "scheduled_for": retry_at,
        "enqueued_at": None,
        "claimed_at": None,
        "last_error": redact(error),
        "updated_at": now,
    }
    with transaction.atomic():
        updated = Call.objects.filter(id=call.id, state=Call.State.SENDING).update(**queued)
        reopened = False
        if not updated:
            updated = _lease_lost_to_review(call).update(**queued, **_REOPENED)
            reopened = bool(updated)
        if updated:
            record_event(
                call,
                CallEvent.Kind.SEND_RETRY,
                error=redact(error),
                retry_at=retry_at.isoformat(),
                reopened=reopened or None,
            )
            _order_follows(call, Call.State.QUEUED, "")
            if reopened and call.purpose == Call.Purpose.VERIFY:
                _close_followup(call.shop_order_id, now, call=call.pk, why="reopened")


def finish_if_sending(call: Call, outcome: str, *, error: str = "", reason: str = "") -> None:
    """sending -> final (failed or needs_review), unless the lease already ended the claim."""
    with transaction.atomic():
        locked = (
            Call.objects.select_for_update().filter(id=call.id, state=Call.State.SENDING).first()
        )
        if locked is not None:
            locked.last_error = redact(error)
            finish(locked, outcome, timezone.now(), reason=reason)


# A call ending so settles its order (unless a re-attempt follows): the shop can be told.
SETTLING_OUTCOMES = (
    Call.Outcome.CONFIRMED,
    Call.Outcome.CANCELLED,
    Call.Outcome.UNREACHABLE,
    Call.Outcome.NO_INPUT,
)


def finish(call: Call, outcome: str, now: dt.datetime, *, reason: str = "") -> None:
    """sending or in_progress -> final. The caller holds the row (lock or conditional update);
    the provider's fields already set on `call` are saved with it."""
    call.state = Call.State.FINAL
    call.outcome = outcome
    call.finalized_at = now
    call.next_poll_at = None
    call.review_reason = redact(reason)
    call.save(
        update_fields=[
            "state",
            "outcome",
            "finalized_at",
            "next_poll_at",
            "review_reason",
            "last_error",
            "call_status",
            "dtmf",
            "retry",
            "call_charges",
            "provider_updated_at",
            "updated_at",
        ]
    )
    record_event(
        call,
        CallEvent.Kind.FINAL,
        outcome=outcome,
        reason=call.review_reason,
        error=call.last_error,
        call_status=call.call_status,
        dtmf=call.dtmf,
        retry=call.retry,
        call_charges=str(call.call_charges) if call.call_charges is not None else None,
    )
    if call.purpose != Call.Purpose.VERIFY:
        return  # a notice call ends alone: its order, follow-up and shop are not its business
    _order_follows(call, Call.State.FINAL, outcome)
    reattempt = queue_reattempt(call, now) if outcome in REATTEMPT_OUTCOMES else None
    if reattempt is None:
        _after_outcome(call, outcome, now)
    if outcome in SETTLING_OUTCOMES and reattempt is None:
        order_settled.send(sender=Order, order_id=call.shop_order_id)


def queue_reattempt(call: Call, now: dt.datetime) -> Call | None:
    """(new) -> queued by the store's re-attempt policy, after `call` (just final, unreachable
    or no input) — or None when the policy says no: off, used up, the order decided or
    withdrawn, a later call of the order exists, or one is still in flight. The order's row is
    locked, as call again locks it, so the two never both add a call."""
    store = Store.objects.get(pk=call.store_id)
    if store.reattempts == 0:
        return None
    order = Order.objects.select_for_update().get(pk=call.shop_order_id)
    if order.decision or order.status not in Order.SETTLED_WITHOUT_ANSWER:
        return None
    calls = order.calls.verifying()
    if calls.filter(pk__gt=call.pk).exists() or calls.filter(state__in=ACTIVE_STATES).exists():
        return None
    made = calls.aggregate(made=Max("reattempt"))["made"] or 0
    if made >= store.reattempts:
        return None
    due = store.next_calling_time(now + dt.timedelta(minutes=store.reattempt_gap_minutes))
    return queue_call(
        order,
        campaign_id=call.campaign_id,
        scheduled_for=due,
        parent=call,
        reattempt=made + 1,
        of=store.reattempts,
    )


def held_by_another(order: Order, user: User) -> bool:
    """The order is in the queue and another agent holds it: theirs to work until taken over
    (the take-over is recorded), whoever else decides, handles or changes it."""
    return bool(order.followup) and order.claimed_by_id not in (None, user.pk)


def held_refusal(order: Order) -> str:
    """Why a person may not act on an order another agent holds, naming the agent."""
    name = order.claimed_by.username if order.claimed_by else ""
    return _("%(name)s holds this follow-up; take it over first.") % {"name": name}


def call_in_flight(order: Order) -> Call | None:
    """The order's first verification call still queued, sending or with the provider: while
    there is one, nothing may be done that its key press could contradict (decide, call again, a
    new phone). A notice call asks nothing, so it holds nothing up."""
    in_flight = order.calls.verifying().filter(state__in=ACTIVE_STATES)
    return in_flight.order_by("created_at", "id").first()


def _after_outcome(call: Call, outcome: str, now: dt.datetime) -> None:
    """Where the order goes once `call`, its latest, has ended with `outcome` and no re-attempt
    follows: decided by the key press (out of the queue), cancelled by the store's rule, or in
    front of a person. A final call that is no longer the order's latest changes nothing."""
    order = Order.objects.select_for_update().select_related("store").get(pk=call.shop_order_id)
    if order.calls.verifying().filter(pk__gt=call.pk).exists():
        return
    if outcome in DECIDING_OUTCOMES or outcome == Call.Outcome.WITHDRAWN:
        _close_followup(order.pk, now, call=call.pk, why=outcome)
        return
    if order.decided_via in (Order.DecidedVia.KEY, Order.DecidedVia.AGENT):
        return  # a later unanswered call does not undo the decision the order has
    if order.decided_via == Order.DecidedVia.POLICY and outcome in REATTEMPT_OUTCOMES:
        return  # unanswered again: the store's rule has already cancelled it
    if (
        outcome in REATTEMPT_OUTCOMES
        and order.store.after_last_attempt == Store.AfterLastAttempt.CANCEL
        and not order.decision
    ):
        _decide_by_policy(order, now, attempts=order.calls.verifying().count())
        return
    reason = FOLLOW_UP_OF_OUTCOME.get(Call.Outcome(outcome))
    if reason is not None:
        open_followup(order, reason, now, call=call.pk)


def open_followup(order: Order, reason: str, now: dt.datetime, *, call: int | None = None) -> None:
    """Put `order` (its row locked, or just made) in front of a person, for `reason`. An order
    already in the queue keeps its agent's claim and takes the new reason."""
    Order.objects.filter(pk=order.pk).update(
        followup=reason, followup_at=now, callback_set=False, updated_at=now
    )
    order.followup, order.followup_at, order.callback_set = reason, now, False
    record_order_event(order, OrderEvent.Kind.FOLLOWUP_OPENED, at=now, reason=reason, call=call)


def _close_followup(
    order_id: int, now: dt.datetime, *, actor: User | None = None, **data: object
) -> bool:
    """Take the order out of the queue (claim and all) because a call or a decision settled
    it; False when it was not in the queue."""
    closed = (
        Order.objects.filter(pk=order_id)
        .exclude(followup="")
        .update(
            followup="",
            followup_at=None,
            callback_set=False,
            claimed_by=None,
            claimed_at=None,
            updated_at=now,
        )
    )
    if closed:
        record_order_event(order_id, OrderEvent.Kind.FOLLOWUP_CLOSED, actor=actor, at=now, **data)
    return bool(closed)


def _decide_by_policy(order: Order, now: dt.datetime, *, attempts: int) -> None:
    """undecided -> cancelled by the store's after-the-last-attempt rule: no answer after
    `attempts` calls. A person may still change it, or call again."""
    Order.objects.filter(pk=order.pk).update(
        status=Order.Status.CANCELLED,
        decision=Order.Decision.CANCELLED,
        decided_via=Order.DecidedVia.POLICY,
        decided_by=None,
        decided_at=now,
        decision_note="",
        updated_at=now,
    )
    record_order_event(
        order,
        OrderEvent.Kind.DECIDED,
        at=now,
        decision=Order.Decision.CANCELLED,
        via=Order.DecidedVia.POLICY,
        attempts=attempts,
        previous=order.decision or None,
    )
    _close_followup(order.pk, now, why="policy")


def withdraw(call: Call, user: User | None) -> bool:
    """queued -> final (withdrawn): stop a call before it is sent (by a person, or with no user
    when the shop cancelled the order). False when it was no longer queued (the dispatcher
    claimed it first, or it was already final). A notice call withdrawn leaves its order as it
    is."""
    with transaction.atomic():
        now = timezone.now()
        won = Call.objects.filter(pk=call.pk, state=Call.State.QUEUED).update(
            state=Call.State.FINAL,
            outcome=Call.Outcome.WITHDRAWN,
            finalized_at=now,
            next_poll_at=None,
            updated_at=now,
        )
        if won:
            record_event(call, CallEvent.Kind.WITHDRAWN, actor=user, at=now)
            _order_follows(call, Call.State.FINAL, Call.Outcome.WITHDRAWN)
            # The shop cancelled the order: nobody is to ring it any more.
            if user is None and call.purpose == Call.Purpose.VERIFY:
                _close_followup(call.shop_order_id, now, call=call.pk, why="withdrawn")
    return bool(won)


# --- Orders -----------------------------------------------------------------------------------


def reject_at_intake(order: Order, reason: str) -> Order:
    """(new) -> rejected: a shop sent an order robodash cannot call. It is stored, never called,
    with the reason shown on its page, and put in front of a person (who may correct the phone
    and call it), rather than silently dropped."""
    now = timezone.now()
    order.status = Order.Status.REJECTED
    order.rejected_reason = reason[:500]
    order.followup = Order.FollowUp.REJECTED
    order.followup_at = now
    order.save(force_insert=True)
    record_order_event(order, OrderEvent.Kind.FOLLOWUP_OPENED, at=now, reason=order.followup)
    return order


# The status and follow-up an order is born with, by its verdict at intake (calls/rules.py).
STATUS_OF_VERDICT = {
    Order.Verdict.CALL: Order.Status.WAITING,
    Order.Verdict.SKIP: Order.Status.SKIPPED,
    Order.Verdict.HOLD: Order.Status.HELD,
}


def judged_state(verdict: Verdict, now: dt.datetime) -> dict[str, Any]:
    """The fields a new order judged `verdict` is stored with: its verdict and reasons, status
    skipped or held (waiting until its call is queued), and a held one in the follow-up queue.
    calls/intake/bulk.py writes them by COPY; take_in_judged saves one order with them."""
    held = verdict.kind == Order.Verdict.HOLD
    return {
        "verdict": verdict.kind,
        "verdict_reasons": verdict.reasons,
        "status": STATUS_OF_VERDICT[Order.Verdict(verdict.kind)],
        "followup": Order.FollowUp.HELD if held else Order.FollowUp.NONE,
        "followup_at": now if held else None,
    }


def take_in_judged(order: Order, verdict: Verdict, now: dt.datetime) -> Order:
    """(new) -> waiting, skipped or held: store a new order with the verdict of the store's
    rules (an IntegrityError if the store has its id already). A call verdict leaves queueing
    its call to the caller; skipped and held ones are never called but by hand."""
    for name, value in judged_state(verdict, now).items():
        setattr(order, name, value)
    order.save(force_insert=True)
    record_judged([(order.pk, verdict)], now)
    return order


def record_judged(judged: Sequence[tuple[int, Verdict]], now: dt.datetime) -> None:
    """The timeline of new orders a rule matched: a `judged` event with the reasons, and a held
    one's entry into the follow-up queue. One INSERT for a batch; nothing for plain calls.
    Sends orders_skipped for the skipped ones (the shops app queues their write-backs)."""
    events = []
    for order_id, verdict in judged:
        if not verdict.reasons:
            continue
        events.append(
            OrderEvent(
                order_id=order_id,
                kind=OrderEvent.Kind.JUDGED,
                at=now,
                data={"verdict": verdict.kind, "reasons": verdict.reasons},
            )
        )
        if verdict.kind == Order.Verdict.HOLD:
            events.append(
                OrderEvent(
                    order_id=order_id,
                    kind=OrderEvent.Kind.FOLLOWUP_OPENED,
                    at=now,
                    data={"reason": Order.FollowUp.HELD.value},
                )
            )
    if events:
        OrderEvent.objects.bulk_create(events)
    skipped = [order_id for order_id, verdict in judged if verdict.kind == Order.Verdict.SKIP]
    if skipped:
        orders_skipped.send(sender=Order, order_ids=skipped)  # the shops are told


def withdraw_uncalled(order: Order) -> bool:
    """skipped or held, no call -> withdrawn: the shop cancelled an order the store's rules kept
    from its call; a held one leaves the follow-up queue. False for any other order (one called
    by hand follows its call, which the shop's cancel withdraws while it is queued)."""
    now = timezone.now()
    with transaction.atomic():
        won = Order.objects.filter(
            pk=order.pk, status__in=[Order.Status.SKIPPED, Order.Status.HELD]
        ).update(status=Order.Status.WITHDRAWN, updated_at=now)
        if won:
            _close_followup(order.pk, now, why="withdrawn")
    return bool(won)


def decide_by_hand(
    order: Order, user: User, decision: str, note: str, *, replaces: str | None = None
) -> Order:
    """Any status -> confirmed or cancelled, decided by `user` (an admin or an agent). An order
    that already has a decision — the customer's key press, the store's rule or a colleague's —
    may be changed, with a note saying why; `replaces` is the decision the person saw (refused
    if the order was decided otherwise meanwhile). Refused while a call of the order is queued
    or in flight (its key press could contradict the agent). The shop is told the new decision
    (order_settled: the outbox sends the order as it stands)."""
    note = note.strip()
    if decision not in (Order.Decision.CONFIRMED, Order.Decision.CANCELLED):
        raise TransitionRefused(_("Decide an order as confirmed or cancelled."))
    if len(note) > MAX_NOTE_LENGTH:
        raise TransitionRefused(
            _("The note is %(length)s characters long; keep it under %(limit)s.")
            % {"length": len(note), "limit": MAX_NOTE_LENGTH}
        )
    with transaction.atomic():
        locked = (
            Order.objects.select_for_update(of=("self",))
            .select_related("decided_by")
            .get(pk=order.pk)
        )
        if replaces is not None and replaces != locked.decision:
            raise TransitionRefused(
                _(
                    "Order %(order)s was decided meanwhile (%(decision)s): look again before "
                    "changing it."
                )
                % {"order": locked.order_id, "decision": _decision_words(locked.decision)}
            )
        if locked.decision == decision and locked.decided_via == Order.DecidedVia.AGENT:
            raise TransitionRefused(
                _("Order %(order)s is already %(decision)s.")
                % {"order": locked.order_id, "decision": _decision_words(decision)}
            )
        if locked.decision and not note:
            raise TransitionRefused(
                _("Say in the note why the decision changes: it overrides %(whose)s.")
                % {"whose": whose_decision(locked)}
            )
        if held_by_another(locked, user):
            raise TransitionRefused(held_refusal(locked))
        if locked.delivery:
            raise TransitionRefused(
                _("Order %(order)s is known to be %(delivery)s: its decision can no longer change.")
                % {"order": locked.order_id, "delivery": locked.get_delivery_display().lower()}
            )
        busy = call_in_flight(locked)
        if busy is not None:
            raise TransitionRefused(
                _(
                    "Call #%(pk)s for this order is still %(state)s; wait for its outcome "
                    "before deciding by hand."
                )
                % {"pk": busy.pk, "state": busy.get_state_display().lower()}
            )
        now = timezone.now()
        previous = {
            "previous": locked.decision or None,
            "previous_via": locked.decided_via or None,
            "previous_by": locked.decided_by.username if locked.decided_by else None,
        }
        locked.status = Order.Status(decision)
        locked.decision = decision
        locked.decided_via = Order.DecidedVia.AGENT
        locked.decided_by = user
        locked.decision_note = note
        locked.decided_at = now
        locked.save(
            update_fields=[
                "status",
                "decision",
                "decided_via",
                "decided_by",
                "decision_note",
                "decided_at",
                "updated_at",
            ]
        )
        record_order_event(
            locked,
            OrderEvent.Kind.DECIDED,
            actor=user,
            at=now,
            decision=decision,
            note=note,
            **previous,
        )
        # The order needs nobody any more: it leaves the queue with the decision.
        _close_followup(locked.pk, now, actor=user, why="decided")
        # The figures count the decision on the order's latest final call, and on it alone.
        followed_up = (
            locked.calls.verifying().filter(state=Call.State.FINAL).order_by("-id").first()
        )
        earlier = locked.calls.verifying().exclude(hand_decision="")
        if followed_up is not None:
            earlier = earlier.exclude(pk=followed_up.pk)
            Call.objects.filter(pk=followed_up.pk).update(hand_decision=decision, updated_at=now)
        earlier.update(hand_decision="", updated_at=now)
        order_settled.send(sender=Order, order_id=locked.pk)
    return locked


def _decision_words(decision: str) -> str:
    return str(Order.Decision(decision).label).lower() if decision else _("undecided")


def whose_decision(order: Order) -> str:
    """Whose decision `order` holds, in words for the person about to override it."""
    if order.decided_via == Order.DecidedVia.KEY:
        return _("the customer's key press (%(decision)s)") % {
            "decision": _decision_words(order.decision)
        }
    if order.decided_via == Order.DecidedVia.POLICY:
        return _("the store's rule after the last attempt (%(decision)s)") % {
            "decision": _decision_words(order.decision)
        }
    return _("%(name)s's decision (%(decision)s)") % {
        "name": order.decided_by.username if order.decided_by else _("an agent"),
        "decision": _decision_words(order.decision),
    }


# --- Deliveries -------------------------------------------------------------------------------


class DeliveryVerdict(models.TextChoices):
    """What became of a delivery update (record_delivery): a code, worded where it is shown
    (lazy labels: worded in the reader's language when shown, not in the one at import)."""

    APPLIED = "applied", _lazy("Recorded")
    REPEAT = "repeat", _lazy("Already known")
    BACKWARDS = "backwards", _lazy("Ignored: the parcel is further along")
    NOT_LATER = "not_later", _lazy("Ignored: not later than what is known")


def delivery_update_wins(
    current: str,
    current_at: dt.datetime | None,
    update: str,
    update_at: dt.datetime,
    *,
    by_hand: bool = False,
) -> DeliveryVerdict:
    """Which update wins (the table in this module's docstring): whether an update saying
    `update` at `update_at` replaces what the order has, `current` since `current_at`."""
    if update == current:
        return DeliveryVerdict.REPEAT
    rank, now_rank = DELIVERY_RANK[Order.Delivery(update)], DELIVERY_RANK[Order.Delivery(current)]
    if rank < now_rank or update == Order.Delivery.NONE:
        return DeliveryVerdict.BACKWARDS
    if rank > now_rank:
        return DeliveryVerdict.APPLIED
    # delivered <-> returned: a parcel delivered and then sent back, or the reverse.
    if by_hand or (current_at is not None and update_at > current_at):
        return DeliveryVerdict.APPLIED
    return DeliveryVerdict.NOT_LATER


def record_delivery(
    order: Order | int,
    delivery: str,
    *,
    via: str,
    at: dt.datetime | None = None,
    tracking: str = "",
    actor: User | None = None,
) -> DeliveryVerdict:
    """What became of the order's parcel, learnt `via` a source (Order.DeliveryVia): recorded
    if delivery_update_wins says so, with its time (`at`; None: now, when it was received).
    A repeat changes nothing; an update that lost is noted on the timeline, once per state and
    source. The first news of shipping takes the order out of the follow-up queue and queues
    the store's shipped notice call (calls/notices.py)."""
    if delivery not in (Order.Delivery.SHIPPED, Order.Delivery.DELIVERED, Order.Delivery.RETURNED):
        raise ValueError(f"not a delivery state: {delivery!r}")
    now = timezone.now()
    at = at or now
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).get(
            pk=order if isinstance(order, int) else order.pk
        )
        verdict = delivery_update_wins(
            locked.delivery,
            locked.delivery_at,
            delivery,
            at,
            by_hand=via == Order.DeliveryVia.HAND,
        )
        if verdict == DeliveryVerdict.REPEAT:
            return verdict
        if verdict != DeliveryVerdict.APPLIED:
            noted = locked.events.filter(
                kind=OrderEvent.Kind.DELIVERY_IGNORED, data__delivery=delivery, data__via=via
            ).exists()
            if not noted:
                record_order_event(
                    locked,
                    OrderEvent.Kind.DELIVERY_IGNORED,
                    actor=actor,
                    at=now,
                    delivery=delivery,
                    via=via,
                    delivery_at=at.isoformat(),
                    why=verdict.value,
                    current=locked.delivery,
                )
            return verdict
        previous = locked.delivery
        changes: dict[str, Any] = {
            "delivery": delivery,
            "delivery_at": at,
            "delivery_via": via,
            "delivery_learnt_at": now,
            "updated_at": now,
        }
        if tracking:
            changes["tracking"] = tracking[: Order._meta.get_field("tracking").max_length]
        Order.objects.filter(pk=locked.pk).update(**changes)
        record_order_event(
            locked,
            OrderEvent.Kind.DELIVERY,
            actor=actor,
            at=now,
            delivery=delivery,
            via=via,
            delivery_at=at.isoformat(),
            tracking=tracking,
            previous=previous,
        )
        if not previous:  # it left: nobody is to decide it any more
            _close_followup(locked.pk, now, actor=actor, why="shipped")
        if delivery == Order.Delivery.SHIPPED and not previous:
            order_shipped.send(sender=Order, order_ids=[locked.pk])
    return verdict


def _ids_param(ids: Iterable[int]) -> str:
    """`ids` as one bigint[] literal ("{1,2,3}"): a parameter of thousands of ids, bound as one
    string rather than quoted one element at a time."""
    return "{" + ",".join(str(int(pk)) for pk in ids) + "}"


ParcelState = tuple[str, dt.datetime | None]  # an order's delivery and its time


def _verdicts(
    now_is: dict[int, ParcelState],
    updates: Sequence[tuple[int, str, str]],
    now: dt.datetime,
    via: str,
) -> list[tuple[DeliveryVerdict, str] | None]:
    """Each update's verdict, applied in turn at `now` to the orders as `now_is` has them, with
    the delivery its order had before it; None for an order not in `now_is`."""
    state = dict(now_is)
    by_hand = via == Order.DeliveryVia.HAND
    applied = DeliveryVerdict.APPLIED
    verdicts: list[tuple[DeliveryVerdict, str] | None] = []
    for pk, delivery, _tracking in updates:
        if pk not in state:
            verdicts.append(None)
            continue
        current, current_at = state[pk]
        verdict = delivery_update_wins(current, current_at, delivery, now, by_hand=by_hand)
        verdicts.append((verdict, current))
        if verdict == applied:
            state[pk] = (delivery, now)
    return verdicts


def record_deliveries(
    store: Store,
    updates: Sequence[tuple[int, str, str]],
    *,
    via: str,
    actor: User | None = None,
) -> list[DeliveryVerdict | None]:
    """record_delivery for many of `store`'s orders at once, each update (order pk, delivery,
    tracking) without a time of its own (dated now, when received), in the order given: the
    verdict of each, None for an order that is not the store's (any more). The same rule
    (delivery_update_wins, an order's later update meeting what its earlier one left), the same
    fields, events and follow-ups as one record_delivery per update, in one transaction and a
    few statements for the whole batch: one SELECT ... FOR UPDATE of the orders it changes, one
    UPDATE of them (their figures counted by batch: BATCH_COUNTING_SETTING), one INSERT of
    their events. A courier's sheet of 100,000 rows would otherwise take half an hour."""
    states = {Order.Delivery.SHIPPED, Order.Delivery.DELIVERED, Order.Delivery.RETURNED}
    for _pk, delivery, _tracking in updates:
        if delivery not in states:
            raise ValueError(f"not a delivery state: {delivery!r}")
    # Looked up once, not per row (an enum member's attribute is a slow lookup).
    repeat, applied = DeliveryVerdict.REPEAT, DeliveryVerdict.APPLIED
    delivered_kind = OrderEvent.Kind.DELIVERY.value
    now = timezone.now()
    when = now.isoformat()
    tracking_chars = Order._meta.get_field("tracking").max_length or 100
    read = "SELECT id, delivery, delivery_at, followup <> '' FROM calls_order "
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            read + "WHERE store_id = %s AND id = ANY(%s::bigint[])",
            [store.pk, _ids_param({pk for pk, _delivery, _tracking in updates})],
        )
        rows = cursor.fetchall()
        now_is: dict[int, ParcelState] = {pk: (delivery, at) for pk, delivery, at, _queued in rows}
        queued = {pk for pk, _delivery, _at, in_queue in rows if in_queue}
        verdicts = _verdicts(now_is, updates, now, via)
        # Only the orders the batch changes (or notes) are locked, and read again under the
        # lock: a sheet read again, all repeats, locks and writes nothing (a repeat is one as of
        # the first read). Locked in id order, as every batch locks them: two batches never
        # wait on each other.
        touched = {
            pk
            for (pk, _delivery, _tracking), verdict in zip(updates, verdicts, strict=True)
            if verdict is not None and verdict[0] != repeat
        }
        if touched:
            cursor.execute(
                read + "WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
                [_ids_param(sorted(touched))],
            )
            locked = {
                pk: ((delivery, at), in_queue) for pk, delivery, at, in_queue in cursor.fetchall()
            }
            moved = False
            for pk in touched:
                if pk not in locked:
                    del now_is[pk]  # deleted meanwhile
                    moved = True
                    continue
                moved = moved or locked[pk][0] != now_is[pk]
                now_is[pk] = locked[pk][0]
                queued.discard(pk)
                if locked[pk][1]:
                    queued.add(pk)
            if moved:  # another writer got there first: the verdicts as of the lock
                verdicts = _verdicts(now_is, updates, now, via)
        changed: dict[int, tuple[str, str]] = {}  # pk -> (delivery, tracking) it ends with
        first_news: set[int] = set()  # orders not known to have shipped before this batch
        events: list[tuple[int, str, dict[str, str]]] = []  # (order, kind, data)
        lost: dict[tuple[int, str], dict[str, str]] = {}  # (pk, delivery) -> ignored event
        for (pk, delivery, tracking), verdict in zip(updates, verdicts, strict=True):
            if verdict is None or verdict[0] == repeat:
                continue
            outcome, current = verdict
            if outcome != applied:
                # Only a parcel already somewhere loses: `current` is never blank here.
                data = {"delivery": delivery, "via": via, "delivery_at": when}
                data |= {"why": outcome.value, "current": current}
                lost.setdefault((pk, delivery), data)
                continue
            tracking = tracking[:tracking_chars]
            changed[pk] = (delivery, tracking or changed.get(pk, ("", ""))[1])
            if not current:
                first_news.add(pk)
            data = {"delivery": delivery, "via": via, "delivery_at": when}
            data |= {"tracking": tracking} if tracking else {}
            data |= {"previous": current} if current else {}
            events.append((pk, delivered_kind, data))
        if lost:
            # An update that lost is noted once per order, state and source (record_delivery).
            cursor.execute(
                "SELECT order_id, data->>'delivery' FROM calls_orderevent "
                "WHERE order_id = ANY(%s::bigint[]) AND kind = %s AND data->>'via' = %s",
                [
                    _ids_param(sorted({pk for pk, _delivery in lost})),
                    OrderEvent.Kind.DELIVERY_IGNORED.value,
                    via,
                ],
            )
            for noted in cursor.fetchall():
                lost.pop(noted, None)
            kind = OrderEvent.Kind.DELIVERY_IGNORED.value
            events += [(pk, kind, data) for (pk, _delivery), data in lost.items()]
        if changed:
            # The first news of shipping takes the order out of the follow-up queue (nobody is
            # to decide it any more), in the same UPDATE: a second would write every index of
            # the order again.
            leaving = first_news & queued
            pks = _ids_param(changed)
            # Counted out as they were and in as they are, in a statement each, not by the
            # update trigger once per order (BATCH_COUNTING_SETTING).
            cursor.execute(
                "SELECT set_config(%s, %s, true)", [BATCH_COUNTING_SETTING, BATCH_COUNTING]
            )
            cursor.execute("SELECT calls_count_orders(%s::bigint[], -1)", [pks])
            cursor.execute(
                "UPDATE calls_order o SET delivery = v.delivery, delivery_at = %(now)s, "
                "  delivery_via = %(via)s, delivery_learnt_at = %(now)s, updated_at = %(now)s, "
                "  tracking = CASE WHEN v.tracking = '' THEN o.tracking ELSE v.tracking END, "
                "  followup = CASE WHEN v.leaves THEN '' ELSE o.followup END, "
                "  followup_at = CASE WHEN v.leaves THEN NULL ELSE o.followup_at END, "
                "  callback_set = CASE WHEN v.leaves THEN false ELSE o.callback_set END, "
                "  claimed_by_id = CASE WHEN v.leaves THEN NULL ELSE o.claimed_by_id END, "
                "  claimed_at = CASE WHEN v.leaves THEN NULL ELSE o.claimed_at END "
                "FROM jsonb_to_recordset(%(rows)s::jsonb) "
                "  AS v (id bigint, delivery text, tracking text, leaves boolean) "
                "WHERE o.id = v.id",
                {
                    "now": now,
                    "via": via,
                    "rows": json.dumps(
                        [
                            {"id": pk, "delivery": d, "tracking": t, "leaves": pk in leaving}
                            for pk, (d, t) in changed.items()
                        ]
                    ),
                },
            )
            cursor.execute("SELECT calls_count_orders(%s::bigint[], 1)", [pks])
            cursor.execute("SELECT set_config(%s, '', true)", [BATCH_COUNTING_SETTING])
            kind = OrderEvent.Kind.FOLLOWUP_CLOSED.value
            events += [(pk, kind, {"why": "shipped"}) for pk in changed if pk in leaving]
            shipped = [pk for pk in first_news if changed[pk][0] == Order.Delivery.SHIPPED]
            if shipped:  # as record_delivery
                order_shipped.send(sender=Order, order_ids=sorted(shipped))
        if events:
            # The events as record_order_event writes them, in one statement (a model instance
            # per event would cost more than the rest of the batch).
            cursor.execute(
                "INSERT INTO calls_orderevent (order_id, kind, at, data, actor_id) "
                "SELECT e.order_id, e.kind, %s, e.data, %s "
                "FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) "
                "  AS (order_id bigint, kind text, data jsonb)) WITH ORDINALITY "
                "  AS e (order_id, kind, data, n) ORDER BY e.n",
                [
                    now,
                    actor.pk if actor else None,
                    json.dumps(
                        [{"order_id": pk, "kind": kind, "data": data} for pk, kind, data in events]
                    ),
                ],
            )
    return [verdict[0] if verdict else None for verdict in verdicts]


# --- Campaigns --------------------------------------------------------------------------------


def draft_campaign(store: Store, name: str, **defaults: Any) -> tuple[Campaign, bool]:
    """(new) -> draft: the store's campaign named `name`, created a draft if there is none (an
    existing one keeps its status); (campaign, created)."""
    return Campaign.objects.get_or_create(
        store=store, name=name, defaults={**defaults, "status": Campaign.Status.DRAFT}
    )


def _move_campaign(campaign_id: int, before: str, after: str) -> bool:
    return bool(Campaign.objects.filter(pk=campaign_id, status=before).update(status=after))


def run_campaign(campaign_id: int) -> bool:
    """draft -> running; False when it was not a draft (running already, or paused: a paused
    campaign stays paused, its new calls wait until it is resumed)."""
    return _move_campaign(campaign_id, Campaign.Status.DRAFT, Campaign.Status.RUNNING)


def hold_in_draft(campaign_id: int) -> bool:
    """running -> draft, so the dispatcher leaves the calls being added until a launch runs it."""
    return _move_campaign(campaign_id, Campaign.Status.RUNNING, Campaign.Status.DRAFT)


def pause_campaign(campaign_id: int) -> bool:
    """running -> paused; False when it was not running."""
    return _move_campaign(campaign_id, Campaign.Status.RUNNING, Campaign.Status.PAUSED)


def resume_campaign(campaign_id: int) -> bool:
    """paused -> running; False when it was not paused."""
    return _move_campaign(campaign_id, Campaign.Status.PAUSED, Campaign.Status.RUNNING)
