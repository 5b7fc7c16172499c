"""The rules' preview (calls/rule_preview.py): its counts are what calls/rules.judge gives when
applied order by order to the same orders, each with its phone's history as it stood when the
order arrived; and the settings page shows it, with htmx as a rule changes and without
JavaScript by the Preview button, saving nothing."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calls.block_list import block_phone
from calls.models import BlockedPhone, Campaign, Order, Store
from calls.rule_preview import WINDOW, RulePreview, Tally, preview
from calls.rules import OrderFacts, PhoneHistory, StoreRules, judge

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
NOW = timezone.now().replace(microsecond=0)
DAY = dt.timedelta(days=1)
TRUSTED, RETURNER, MIXED, BLOCKED = "923001110001", "923001110002", "923001110003", "923001110004"


class Orders:
    """Orders of a store written as intake and record_delivery leave them, numbered."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.campaign = Campaign.objects.create(store=store, name="Preview")
        self.n = 0

    def add(
        self,
        phone: str,
        arrived: dt.datetime,
        *,
        amount: str = "1500",
        end: str = "",
        learnt: dt.datetime | None = None,
        placed: dt.datetime | None = None,
        arrived_at_kept: bool = True,
        rejected: bool = False,
    ) -> Order:
        self.n += 1
        order_id = f"P-{self.n:04d}"
        return Order.objects.create(
            store=self.store,
            campaign=self.campaign,
            order_id=order_id,
            phone=phone,
            amount=Decimal(amount),
            voice_id=102,
            text1=self.store.name,
            text2=order_id,
            created_at=arrived,
            arrived_at=arrived if arrived_at_kept else None,
            placed_at=placed,
            delivery=end,
            delivery_at=learnt if end else None,
            delivery_via="sheet" if end else "",
            delivery_learnt_at=learnt if end else None,
            status=Order.Status.REJECTED if rejected else Order.Status.CONFIRMED,
            rejected_reason="phone is a landline" if rejected else "",
        )


def varied_orders(store: Store, seed: int = 5) -> None:
    """A trusted customer, a returner, one who was trusted until a return, a blocked phone,
    amounts on and around the limits, parcels learnt exactly when a later order arrived, orders
    older than the window (history, not judged), one rejected at intake, one with no arrival
    time kept, the same phone at another store; then random phones and ends."""
    orders = Orders(store)
    # Trusted: delivered every 3 days from 40 days ago, each learnt 2 days after it arrived.
    for k in range(12):
        arrived = NOW - (40 - 3 * k) * DAY
        orders.add(TRUSTED, arrived, end="delivered", learnt=arrived + 2 * DAY)
    # The returner: every other parcel returned.
    for k in range(10):
        arrived = NOW - (35 - 3 * k) * DAY
        end = "returned" if k % 2 else "delivered"
        orders.add(RETURNER, arrived, amount="999.99", end=end, learnt=arrived + DAY)
    # Trusted until a return, learnt 20 days ago; an order arrives at that very second.
    for k in range(5):
        arrived = NOW - (45 - 4 * k) * DAY
        orders.add(MIXED, arrived, end="delivered", learnt=arrived + DAY)
    returned = orders.add(MIXED, NOW - 22 * DAY, end="returned", learnt=NOW - 20 * DAY)
    orders.add(MIXED, returned.delivery_learnt_at, amount="50000.01")
    orders.add(MIXED, NOW - 5 * DAY, amount="50000.00", arrived_at_kept=False)
    # Blocked, with orders in and out of the window.
    for k in range(4):
        orders.add(
            BLOCKED,
            NOW - (33 - 9 * k) * DAY,
            amount="1000.00",
            end="returned",
            learnt=NOW - (31 - 9 * k) * DAY,
        )
    block_phone(store, BLOCKED, "fake orders")
    orders.add("923001110005", NOW - DAY, amount="1000.01", rejected=True)
    orders.add("923001110006", NOW - 2 * DAY, placed=NOW - 5 * DAY)
    # The trusted phone's orders elsewhere count nowhere here.
    elsewhere = Store(name="Lahore Linens")
    elsewhere.api_key = "sk-another-store-key-0001"
    elsewhere.save()
    other = Orders(elsewhere)
    for k in range(3):
        other.add(RETURNER, NOW - (20 - k) * DAY, end="returned", learnt=NOW - (19 - k) * DAY)
    # Random phones sharing a few numbers, random amounts around the limits and random ends.
    rng = random.Random(seed)
    for _ in range(120):
        phone = f"9230022{rng.randint(0, 14):05d}"
        arrived = NOW - dt.timedelta(minutes=rng.randint(0, 55 * 24 * 60))
        amount = rng.choice(["300", "999.99", "1000", "1000.01", "4000", "50000", "50000.01"])
        learnt = arrived + dt.timedelta(hours=rng.randint(1, 6 * 24))
        end = rng.choice(["", "shipped", "delivered", "delivered", "returned"])
        if end in ("delivered", "returned") and learnt > NOW:
            end = "shipped"
        placed = (
            arrived - dt.timedelta(hours=rng.choice([0, 1, 50, 80])) if rng.random() < 0.5 else None
        )
        orders.add(phone, arrived, amount=amount, end=end, learnt=learnt, placed=placed)


def judged_one_by_one(store: Store) -> tuple[RulePreview, dict[str, Tally]]:
    """calls/rules.judge applied to each order of the window, with its phone's history at the
    store as it stood when it arrived (ends learnt at or before then) and the block list as it is
    now, counted as the preview counts: each rule's matches, the skipped and the held."""
    since = NOW - WINDOW
    rules = StoreRules.of(store)
    everything = list(Order.objects.filter(store=store))
    blocked = {row.phone: row.reason for row in BlockedPhone.objects.filter(store=store)}
    per_rule: dict[str, Counter[str]] = {}
    verdicts: dict[str, Counter[str]] = {"skip": Counter(), "hold": Counter()}
    judged = 0
    for order in everything:
        if not since <= order.created_at < NOW or order.rejected_reason:
            continue
        judged += 1
        arrived = order.arrived_at or order.created_at
        earlier = [
            o.delivery
            for o in everything
            if o.pk != order.pk
            and o.phone == order.phone
            and o.delivery in ("delivered", "returned")
            and o.delivery_learnt_at <= arrived
        ]
        history = PhoneHistory(
            delivered=earlier.count("delivered"),
            returned=earlier.count("returned"),
            blocked=order.phone in blocked,
            block_reason=blocked.get(order.phone, ""),
        )
        verdict = judge(OrderFacts(order.phone, order.amount), rules, history)
        for reason in verdict.reasons:
            tally = per_rule.setdefault(reason["rule"], Counter())
            tally["orders"] += 1
            tally[order.delivery] += 1
        if verdict.kind in verdicts:
            verdicts[verdict.kind]["orders"] += 1
            verdicts[verdict.kind][order.delivery] += 1

    def tally(counts: Counter[str]) -> Tally:
        return Tally(counts["orders"], counts["delivered"], counts["returned"])

    expected = RulePreview(
        since=since,
        until=NOW,
        orders=judged,
        lines=[],
        skipped=tally(verdicts["skip"]),
        held=tally(verdicts["hold"]),
    )
    return expected, {rule: tally(counts) for rule, counts in per_rule.items()}


RULE_SETTINGS = [
    {
        "call_min_amount": Decimal(1000),
        "call_max_amount": Decimal(50000),
        "trust_after": 3,
        "hold_after_returns": 2,
    },
    {"trust_after": 1},
    {"trust_after": 4, "hold_after_returns": 1},
    {"hold_after_returns": 3, "call_min_amount": Decimal("999.99")},
    {},  # the block list alone
]


@pytest.mark.parametrize("rules", RULE_SETTINGS, ids=lambda s: ",".join(s) or "block-list")
def test_the_preview_counts_what_judge_gives_order_by_order_with_the_history_as_it_stood(
    store, rules
):
    varied_orders(store)
    for name, value in rules.items():
        setattr(store, name, value)  # typed, not saved

    previewed = preview(store, now=NOW)
    expected, per_rule = judged_one_by_one(store)

    assert previewed.orders == expected.orders > 80
    assert {line.rule: line.tally for line in previewed.lines if line.tally.orders} == per_rule
    assert (previewed.skipped, previewed.held) == (expected.skipped, expected.held)
    # Every rule that is on has its line, in judging order, and none that is off.
    on = ["blocked", "returns", "below_min", "above_max", "trusted"]
    assert [line.rule for line in previewed.lines] == [
        rule for rule in on if rule == "blocked" or _setting_of(rule) in rules
    ]
    Store.objects.filter(pk=store.pk, trust_after=None, call_min_amount=None).get()  # unsaved


def _setting_of(rule: str) -> str:
    return {
        "returns": "hold_after_returns",
        "below_min": "call_min_amount",
        "above_max": "call_max_amount",
        "trusted": "trust_after",
    }[rule]


def test_a_customers_later_deliveries_do_not_make_their_first_orders_trusted(store):
    orders = Orders(store)
    for k in range(5):
        arrived = NOW - (25 - 5 * k) * DAY
        orders.add(TRUSTED, arrived, end="delivered", learnt=arrived + 2 * DAY)
    store.trust_after = 2

    previewed = preview(store, now=NOW)

    # The first two arrived with fewer than two deliveries learnt; the other three after.
    assert [(line.rule, line.tally) for line in previewed.lines] == [
        ("blocked", Tally()),
        ("trusted", Tally(orders=3, delivered=3, returned=0)),
    ]
    assert previewed.skipped == Tally(3, 3, 0) and previewed.called == 2


def test_an_order_placed_long_before_it_arrived_is_held_by_the_stale_rule(store):
    orders = Orders(store)
    orders.add(TRUSTED, NOW - DAY, placed=NOW - 4 * DAY, end="returned", learnt=NOW)
    orders.add(TRUSTED, NOW - DAY, placed=NOW - DAY - dt.timedelta(hours=47))
    orders.add(TRUSTED, NOW - DAY, placed=NOW)  # the shop's clock ahead: never stale
    orders.add(TRUSTED, NOW - DAY)  # no placed time: never stale
    store.stale_after_hours = 48

    previewed = preview(store, now=NOW)

    assert [(line.rule, line.tally) for line in previewed.lines] == [
        ("blocked", Tally()),
        ("stale", Tally(orders=1, delivered=0, returned=1)),
    ]
    assert previewed.held == Tally(1, 0, 1) and previewed.skipped == Tally()


def test_the_preview_is_one_query_whatever_the_rules(store):
    varied_orders(store)
    store.trust_after, store.call_min_amount = 3, Decimal(1000)
    with CaptureQueriesContext(connection) as queries:
        preview(store, now=NOW)
    assert len([q for q in queries if q["sql"].lstrip().upper().startswith("WITH")]) == 1


# --- the settings page ---------------------------------------------------------------------------


def typed_rules(**rules: str) -> dict[str, str]:
    """The store's settings form as the page would post it: its saved values, rules as typed."""
    return {
        "name": "Karachi Kitchenware",
        "default_voice_id": "102",
        "timezone": "Asia/Karachi",
        "calling_start": "00:00",
        "calling_end": "00:00",
        "provider_retries": "3",
        "retry_delays": "1, 1, 1",
        "call_min_amount": "",
        "call_max_amount": "",
        "trust_after": "",
        "hold_after_returns": "",
        **rules,
    }


def test_the_settings_page_offers_the_preview_beside_the_rules(admin, store):
    page = admin.get(reverse("store_edit", args=[store.pk])).content.decode()
    preview_url = reverse("store_rules_preview", args=[store.pk])
    assert f'hx-post="{preview_url}"' in page and f'formaction="{preview_url}"' in page
    assert 'id="rule-preview"' in page
    # Enter in a field presses the form's first submit button: it saves, it does not preview.
    form = page[page.index('<form method="post" novalidate>') :]
    first_button = form[form.index("<button") : form.index(">", form.index("<button"))]
    assert 'type="submit"' in first_button and "formaction" not in first_button
    assert reverse("store_blocked_phones", args=[store.pk]) in page


def test_changing_a_rule_shows_its_preview_with_htmx_and_saves_nothing(admin, store):
    varied_orders(store)

    response = admin.post(
        reverse("store_rules_preview", args=[store.pk]),
        typed_rules(call_min_amount="1000", trust_after="3"),
        **HTMX,
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="rule-preview"')
    expected = preview(Store(pk=store.pk, call_min_amount=Decimal(1000), trust_after=3), now=NOW)
    below = next(line for line in expected.lines if line.rule == "below_min").tally.orders
    assert "Below Rs 1,000.00" in html and f">{below}<" in html
    assert "Trusted: 3 or more delivered orders, none returned" in html
    store.refresh_from_db()
    assert store.call_min_amount is None and store.trust_after is None


def test_rules_that_cannot_be_saved_are_not_previewed(admin, store):
    response = admin.post(
        reverse("store_rules_preview", args=[store.pk]),
        typed_rules(call_min_amount="5000", call_max_amount="1000"),
        **HTMX,
    )
    html = response.content.decode()
    assert "No preview until the rules are corrected" in html
    assert "The most to call is below the least to call." in html
    assert "<table" not in html


def test_the_preview_button_without_javascript_shows_the_page_as_typed_with_the_preview(
    admin, store
):
    varied_orders(store)

    response = admin.post(
        reverse("store_rules_preview", args=[store.pk]),
        typed_rules(hold_after_returns="2", api_key="sk-typed-but-not-saved-0001", name="New"),
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and "From a phone with 2 or more returned orders" in html
    assert 'value="2"' in html and 'value="New"' in html  # as typed
    assert "sk-typed-but-not-saved" not in html  # the key is write-only
    assert "type it again before saving" in html
    store.refresh_from_db()
    assert (store.name, store.hold_after_returns) == ("Karachi Kitchenware", None)
