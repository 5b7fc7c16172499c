"""One home for the state machine: in every app, calls/transitions.py alone writes a call's state
and outcome, an order's status and decision and a campaign's status (the outbox and an upload
write their own rows'), and the order follows its calls in the same transaction."""

from __future__ import annotations

import ast
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.utils import timezone

from calls import actions, transitions
from calls.intake.single import create_single_call
from calls.models import Call, CallEvent, Campaign, Order, OrderEvent, Store
from calls.pipeline import dispatch, polling, timing
from calls.transitions import TransitionRefused, decide_by_hand
from tests.support.pipeline import wait_for

ROOT = Path(__file__).resolve().parents[2]
# robodash's own code; the simulator and the shops' stand-ins keep the outside services' state.
APPS = ("calls", "shops", "robodash")
STATE_MODULE = "calls/transitions.py"
GUARDED = {
    "state",
    "status",
    "outcome",
    "decision",
    "decided_via",
    "hand_decision",
    "delivery",
    "delivery_at",
    "delivery_via",
    "called",
    "verdict",
    "verdict_reasons",
}
# Whose state a module other than the state module may write, by model. A call's, an order's and
# a campaign's never: only STATE_MODULE writes those.
ALLOWED = {
    # The outbox claims, delivers and fails its own rows (claim-commit-send, like calls).
    "WriteBack": {"shops/outbox.py"},
    # An upload's status is its batch's progress (read, previewed, launching), not an order's.
    "Upload": {"calls/intake/uploads.py"},
    # A bulk action's status is its own progress; the orders it changes go through transitions.
    "OrderBatch": {"calls/order_batches.py"},
    # A courier sheet's status is its own progress; its parcels go through transitions.
    "DeliverySheet": {"calls/intake/delivery_sheets.py"},
    # What became of a shop's delivery: said as it is answered, or once the inbox took it in;
    # the orders it makes or changes go through transitions.
    "ReceivedWebhook": {"shops/views.py", "shops/inbox.py"},
}
MODELS = {model.__name__ for model in apps.get_models()}
UNKNOWN = "?"  # a write whose model the code does not name: allowed nowhere but STATE_MODULE


def _root_name(node: ast.expr) -> str:
    while isinstance(node, ast.Call | ast.Attribute | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _model_named_in(value: ast.expr | None) -> str:
    """The model a written value names (`WriteBack.State.SENDING` -> WriteBack), else ""."""
    for node in ast.walk(value) if value is not None else ():
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id[:1].isupper()
            and node.attr in {"State", "Status", "Outcome", "Decision", "Delivery"}
        ):
            return node.value.id
    return ""


def writes_of_guarded_fields(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, model, what) for each assignment `x.state = …` and each `state=` keyword given to
    a create/update or a model's constructor (Q(state=…) reads, it does not write). The model is
    the one the code names: the queryset's or constructor's class, else the class of the value
    written (`x.state = WriteBack.State.…`), else UNKNOWN."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and target.attr in GUARDED:
                model = _model_named_in(node.value) or UNKNOWN
                found.append((node.lineno, model, f".{target.attr} ="))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        writes = (
            isinstance(func, ast.Attribute)
            and func.attr
            in {"update", "create", "get_or_create", "update_or_create", "bulk_update"}
        ) or (isinstance(func, ast.Name) and func.id in MODELS)
        if not writes:
            continue
        root = _root_name(func)
        for keyword in node.keywords:
            if keyword.arg in GUARDED:
                model = root if root in MODELS else _model_named_in(keyword.value)
                found.append((node.lineno, model or UNKNOWN, f"{keyword.arg}="))
    return sorted(found)


def test_no_module_but_transitions_writes_state_status_outcome_or_decision() -> None:
    offenders = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where == STATE_MODULE or "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            offenders += [
                f"{where}:{line} {model} {what}"
                for line, model, what in writes_of_guarded_fields(tree)
                if where not in ALLOWED.get(model, set())
            ]
    assert offenders == []


def test_the_check_finds_each_kind_of_write() -> None:
    code = (
        "call.state = 'final'\n"
        "Call.objects.filter(pk=1).update(outcome='x')\n"
        "Order(status='waiting')\n"
        "Campaign.objects.filter(pk=1).update(status='running')\n"
        "row.state = WriteBack.State.SENDING\n"
        "rows.update(state=Upload.Status.READ)\n"
    )
    assert [(line, model) for line, model, _ in writes_of_guarded_fields(ast.parse(code))] == [
        (1, UNKNOWN),
        (2, "Call"),
        (3, "Order"),
        (4, "Campaign"),
        (5, "WriteBack"),
        (6, "Upload"),
    ]


def test_the_docstring_lists_every_transition_function() -> None:
    doc = transitions.__doc__ or ""
    for name in (
        "queue_call",
        "queue_notice_call",
        "start_sending",
        "mark_sent",
        "requeue_unsent",
        "finish",
        "finish_if_sending",
        "withdraw",
        "decide_by_hand",
        "reopening",
        "draft_campaign",
        "run_campaign",
        "hold_in_draft",
        "pause_campaign",
        "resume_campaign",
    ):
        assert name in doc


# --- a campaign's status -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_campaigns_status_moves_only_from_the_status_each_step_expects(store: Store) -> None:
    campaign, created = transitions.draft_campaign(store, "May", voice_id=7)
    assert created and (campaign.status, campaign.voice_id) == (Campaign.Status.DRAFT, 7)

    def status() -> str:
        campaign.refresh_from_db(fields=["status"])
        return campaign.status

    assert not transitions.pause_campaign(campaign.pk) and status() == Campaign.Status.DRAFT
    assert not transitions.resume_campaign(campaign.pk) and status() == Campaign.Status.DRAFT
    assert transitions.run_campaign(campaign.pk) and status() == Campaign.Status.RUNNING
    assert not transitions.run_campaign(campaign.pk)  # a second press changes nothing
    assert transitions.hold_in_draft(campaign.pk) and status() == Campaign.Status.DRAFT
    assert transitions.run_campaign(campaign.pk)
    assert transitions.pause_campaign(campaign.pk) and status() == Campaign.Status.PAUSED
    assert not transitions.run_campaign(campaign.pk) and status() == Campaign.Status.PAUSED
    assert not transitions.hold_in_draft(campaign.pk) and status() == Campaign.Status.PAUSED
    assert transitions.resume_campaign(campaign.pk) and status() == Campaign.Status.RUNNING
    # Found again by name, it keeps its status.
    found, created = transitions.draft_campaign(store, "May")
    assert (found.pk, created, found.status) == (campaign.pk, False, Campaign.Status.RUNNING)


# --- the order follows its calls ----------------------------------------------------------------

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Launch week")


def single(campaign: Campaign, order_id: str = "KK-1") -> Call:
    order = create_single_call(
        campaign, phone="03001234567", amount=Decimal(1500), order_id=order_id, store_name="S"
    )
    return order.calls.get()


def status_of(call: Call) -> str:
    return Order.objects.get(pk=call.shop_order_id).status


def test_an_order_is_waiting_then_calling_then_takes_its_calls_outcome(
    campaign, provider_url, simulator
):
    call = single(campaign)
    assert status_of(call) == Order.Status.WAITING
    dispatch.send_call(call.id)
    assert status_of(call) == Order.Status.CALLING

    def polled_final() -> bool:
        Call.objects.filter(pk=call.pk).update(next_poll_at=timezone.now())
        polling.poll_call(call.id)
        return Call.objects.get(pk=call.pk).is_final

    wait_for(polled_final, timeout=30, what="the call to be final")
    call.refresh_from_db()
    order = Order.objects.get(pk=call.shop_order_id)
    assert order.status == transitions.order_status_for(call.state, call.outcome)
    if call.outcome in (Call.Outcome.CONFIRMED, Call.Outcome.CANCELLED):
        assert order.decision == call.outcome and order.decided_via == Order.DecidedVia.KEY
        assert order.decided_at is not None


def test_withdrawing_the_call_withdraws_the_order(campaign, agent_user):
    call = single(campaign)
    assert actions.withdraw(call, agent_user)
    assert status_of(call) == Order.Status.WITHDRAWN


def test_a_lease_lost_to_review_that_is_accepted_late_reopens_call_and_order(campaign):
    call = single(campaign)
    claimed = dispatch._claim_for_sending(call.id, timezone.now())
    assert claimed is not None
    dispatch.expire_sending_leases(
        timezone.now() + timing.sending_lease() + dt.timedelta(seconds=1)
    )
    assert status_of(call) == Order.Status.NEEDS_REVIEW
    dispatch._mark_sent(claimed, "888001")
    call.refresh_from_db()
    assert call.state == Call.State.IN_PROGRESS and status_of(call) == Order.Status.CALLING
    assert call.events.filter(kind=CallEvent.Kind.SENT, data__reopened=True).exists()


def test_an_agent_decides_an_order_by_hand_and_may_change_it_with_a_note(campaign, agent_user):
    call = single(campaign)
    with pytest.raises(TransitionRefused, match="still queued"):
        decide_by_hand(call.shop_order, agent_user, Order.Decision.CONFIRMED, "on WhatsApp")
    actions.withdraw(call, agent_user)

    order = decide_by_hand(call.shop_order, agent_user, Order.Decision.CANCELLED, " by phone ")

    order.refresh_from_db()
    assert (order.status, order.decision, order.decided_via, order.decided_by) == (
        Order.Status.CANCELLED,
        Order.Decision.CANCELLED,
        Order.DecidedVia.AGENT,
        agent_user,
    )
    assert order.decision_note == "by phone"
    assert order.events.filter(kind=OrderEvent.Kind.DECIDED, actor=agent_user).exists()
    with pytest.raises(TransitionRefused, match="already cancelled"):
        decide_by_hand(order, agent_user, Order.Decision.CANCELLED, "again")
    with pytest.raises(TransitionRefused, match="Say in the note why"):
        decide_by_hand(order, agent_user, Order.Decision.CONFIRMED, "")
    with pytest.raises(actions.ActionRefused, match="decided by hand"):
        actions.call_again(order, agent_user)
