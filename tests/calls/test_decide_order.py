"""`manage.py decide_order`: an order decided by hand from a script, through the transition the
order page uses, with its checks, its exit codes and the README's block run as written."""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from calls.models import Call, Campaign, Order, OrderEvent, Store, User
from calls.transitions import record_delivery
from shops.models import WriteBack
from tests.support.orders import create_call
from tests.support.pipeline import child_database_url
from tests.test_readme import README, run_as_written

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(store: Store) -> Campaign:
    return Campaign.objects.create(store=store, name="Eid sale")


def an_order(campaign: Campaign, order_id: str, outcome: str, **fields: object) -> Order:
    call = create_call(
        store=campaign.store,
        campaign=campaign,
        order_id=order_id,
        phone="923001234567",
        amount=Decimal("1500.00"),
        voice_id=102,
        text1=campaign.store.name,
        text2=order_id,
        state=Call.State.FINAL if outcome else Call.State.QUEUED,
        outcome=outcome,
        finalized_at=timezone.now() if outcome else None,
        **fields,
    )
    return Order.objects.get(pk=call.shop_order_id)


def decide(*args: str) -> str:
    out = StringIO()
    call_command("decide_order", *args, stdout=out)
    return out.getvalue()


def test_an_order_is_decided_by_the_named_agent_and_leaves_the_queue(
    campaign: Campaign, agent_user: User
) -> None:
    order = an_order(campaign, "KK-1", Call.Outcome.UNREACHABLE)

    said = decide("Karachi Kitchenware", "KK-1", "confirmed", "--as", "bilal", "--note", "WhatsApp")

    assert said == "Order KK-1 confirmed by bilal; the shop is told to ship it.\n"
    order.refresh_from_db()
    assert (order.decision, order.decided_via, order.decided_by, order.decision_note) == (
        "confirmed",
        "agent",
        agent_user,
        "WhatsApp",
    )
    assert order.followup == ""
    assert OrderEvent.objects.filter(order=order, kind="decided", actor=agent_user).exists()


def test_changing_a_decision_needs_a_note_and_says_whose_it_overrides(
    campaign: Campaign, agent_user: User
) -> None:
    order = an_order(campaign, "KK-2", Call.Outcome.CANCELLED)

    with pytest.raises(CommandError) as refused:
        decide("Karachi Kitchenware", "KK-2", "confirmed", "--as", "bilal")
    said = decide(
        "Karachi Kitchenware",
        "KK-2",
        "confirmed",
        "--as",
        "bilal",
        "--note",
        "Pressed 2 by mistake",
    )

    assert str(refused.value) == (
        "order KK-2 not decided: Say in the note why the decision changes: it overrides the "
        "customer's key press (cancelled)."
    )
    assert said == (
        "Order KK-2 confirmed by bilal, overriding the customer's key press (cancelled); "
        "the shop is told to ship it.\n"
    )
    assert Order.objects.get(pk=order.pk).decided_via == "agent"


def test_the_same_decision_again_changes_nothing_and_succeeds(
    campaign: Campaign, agent_user: User
) -> None:
    an_order(campaign, "KK-3", Call.Outcome.UNREACHABLE)
    decide("Karachi Kitchenware", "KK-3", "cancelled", "--as", "bilal")

    said = decide("Karachi Kitchenware", "KK-3", "cancelled", "--as", "bilal")

    assert said == "Order KK-3 is already cancelled by hand (bilal); nothing changed.\n"
    assert OrderEvent.objects.filter(kind="decided").count() == 1


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("Lahore Linens", "KK-4", "confirmed", "--as", "bilal"), "no store named 'Lahore Linens'"),
        (
            ("Karachi Kitchenware", "KK-404", "confirmed", "--as", "bilal"),
            "store 'Karachi Kitchenware' has no order 'KK-404'",
        ),
        (("Karachi Kitchenware", "KK-4", "confirmed", "--as", "nobody"), "no user named 'nobody'"),
        (
            ("Karachi Kitchenware", "KK-4", "confirmed", "--as", "sana"),
            "'sana' is a manager: only an active admin or agent decides orders",
        ),
    ],
)
def test_what_it_cannot_find_or_who_may_not_decide_is_said_plainly(
    campaign: Campaign, agent_user: User, manager_user: User, args: tuple[str, ...], said: str
) -> None:
    an_order(campaign, "KK-4", Call.Outcome.UNREACHABLE)

    with pytest.raises(CommandError) as refused:
        decide(*args)

    assert str(refused.value) == said
    assert refused.value.returncode == 1
    assert Order.objects.get(order_id="KK-4").decision == ""


def test_an_order_with_a_call_in_flight_is_not_decided(
    campaign: Campaign, agent_user: User
) -> None:
    order = an_order(campaign, "KK-5", "")
    call = order.calls.get()

    with pytest.raises(CommandError) as refused:
        decide("Karachi Kitchenware", "KK-5", "confirmed", "--as", "bilal")

    assert str(refused.value) == (
        f"order KK-5 not decided: Call #{call.pk} for this order is still queued; wait for its "
        "outcome before deciding by hand."
    )


def test_an_order_whose_parcel_has_left_is_not_decided(
    campaign: Campaign, agent_user: User
) -> None:
    order = an_order(campaign, "KK-6", Call.Outcome.UNREACHABLE)
    record_delivery(order, "delivered", via=Order.DeliveryVia.SHEET)

    with pytest.raises(CommandError) as refused:
        decide("Karachi Kitchenware", "KK-6", "cancelled", "--as", "bilal")

    assert str(refused.value) == (
        "order KK-6 not decided: Order KK-6 is known to be delivered: its decision can no "
        "longer change."
    )
    assert Order.objects.get(pk=order.pk).decision == ""


def readme_decide_block() -> str:
    """The README's sh block that runs decide_order (after the scripted interface's first)."""
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    [block] = [b for b in blocks if "manage.py decide_order" in b]
    return block


@pytest.mark.django_db(transaction=True)
def test_the_readme_decides_orders_as_it_writes_it(
    campaign: Campaign, agent_user: User, tmp_path
) -> None:
    an_order(campaign, "KK-1001", Call.Outcome.UNREACHABLE)
    an_order(campaign, "KK-1002", Call.Outcome.CONFIRMED)

    result = run_as_written(
        readme_decide_block(), tmp_path, stdin="", DATABASE_URL=child_database_url()
    )

    assert result.returncode == 0, result.stdout + result.stderr
    decided = dict(Order.objects.values_list("order_id", "decision"))
    assert decided == {"KK-1001": "confirmed", "KK-1002": "cancelled"}
    assert "Order KK-1002 cancelled by bilal, overriding the customer's key press" in result.stdout
    assert not WriteBack.objects.exists()  # no shop connected: nothing to tell
