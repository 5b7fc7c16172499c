"""The benchmarks' and screenshots' demo data (bench/demo_data.py) writes rows straight into the
tables with SQL; a small run of it here catches a column it does not fill yet."""

import pytest

from bench import demo_data
from calls.figures.stats import figures_of
from calls.models import Call, Order

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_demo_data_writes_calls_each_with_its_order_on_todays_schema():
    demo_data.generate(calls=300, campaigns=3, days=5, events=20, verbose=False)

    assert Call.objects.count() == 300
    assert Order.objects.count() == 300
    assert not Call.objects.filter(shop_order__isnull=True).exists()
    figures = figures_of(Call.objects.all())
    assert figures.calls == 300 and figures.decided_confirmed == figures.confirmed
