"""The benchmarks' and screenshots' demo data (bench/demo_data.py) writes rows straight into the
tables with SQL; a small run of it here catches a column it does not fill yet, and parcels,
`called` flags and notice calls that do not hang together. (The figures it counts at the end
are checked against a direct count after the test, as after every test.)"""

import datetime as dt

import pytest
from django.db.models import F, Q
from django.utils import timezone

from bench import demo_data
from calls.figures import stats
from calls.figures.stats import figures_of
from calls.models import Call, Order

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_data_writes_calls_orders_parcels_and_notices_that_hang_together():
    demo_data.generate(calls=600, campaigns=3, days=12, events=20, verbose=False)
    now = timezone.now()

    verify = Call.objects.filter(purpose=Call.Purpose.VERIFY)
    assert verify.count() == Order.objects.count() == 600
    assert not Call.objects.filter(shop_order__isnull=True).exists()
    figures = figures_of(Call.objects.all())
    assert figures.calls == 600 and figures.decided_confirmed == figures.confirmed
    # An order is `called` exactly when its call reached the provider.
    assert not Order.objects.filter(called=True, calls__sent_at__isnull=True).exists()
    assert not Order.objects.filter(called=False, calls__in=verify.exclude(sent_at=None)).exists()

    shipped = Order.objects.exclude(delivery="")
    for delivery in (Order.Delivery.SHIPPED, Order.Delivery.DELIVERED, Order.Delivery.RETURNED):
        assert shipped.filter(delivery=delivery).exists(), delivery
    # Left after it arrived, never in the future, never while waiting for a person or a call.
    assert not shipped.filter(Q(delivery_at__lte=F("created_at")) | Q(delivery_at__gt=now))
    assert not shipped.exclude(followup="").exists()
    assert not shipped.filter(status__in=(Order.Status.WAITING, Order.Status.CALLING)).exists()
    assert not shipped.filter(delivery_via="").exists()
    # Notices: for shipped orders of the store that asked for them alone, one each, recent.
    notices = Call.objects.filter(purpose=Call.Purpose.NOTICE)
    assert notices.exists()
    assert not notices.exclude(shop_order__in=shipped).exists()
    assert set(notices.values_list("store__notify_on_shipped", flat=True)) == {110}
    assert notices.values("shop_order").distinct().count() == notices.count()
    since = now - dt.timedelta(days=demo_data.NOTICES_SINCE_DAYS)
    assert not notices.filter(created_at__lt=since).exists()

    total = stats.figures_total()
    assert (total.notice_calls, total.shipped) == (notices.count(), shipped.count())
    assert total.returns_avoided > 0
    assert total.net_saved == total.returns_avoided - total.charges - total.notice_charges
    # Confirming cuts returns, as the demo is meant to show.
    confirmed = stats.rate(
        total.returned_confirmed, total.delivered_confirmed + total.returned_confirmed
    )
    undecided = stats.rate(
        total.returned_undecided, total.delivered_undecided + total.returned_undecided
    )
    assert confirmed is not None and undecided is not None and confirmed < undecided
