"""The provider balance, remembered on the store and checked before a launch (simulator)."""

import datetime as dt
import socket
from decimal import Decimal

from django.utils import timezone

from calls.models import Store
from calls.pipeline.balances import (
    PULSES_PER_VERIFICATION_CALL,
    check_launch,
    estimate_cost,
    refresh_balance,
)
from tests.conftest import TEST_API_KEY


def closed_port_url() -> str:
    """A local URL nothing listens on: connection refused, the provider is unreachable."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v1/"


def set_account(simulator, balance: str, call_rate: str = "5.50") -> None:
    simulator.add_account(
        api_key=TEST_API_KEY, username="teststore", balance=balance, call_rate=call_rate
    )


def test_a_verification_call_is_estimated_at_two_pulses():
    assert PULSES_PER_VERIFICATION_CALL == 2
    assert estimate_cost(100, Decimal("5.50")) == Decimal("1100.00")
    assert estimate_cost(3, Decimal("0.333")) == Decimal("2.00")
    assert estimate_cost(0, Decimal("5.50")) == Decimal("0.00")


def test_refreshing_remembers_the_providers_answer_on_the_store(store, provider_url):
    answer = refresh_balance(store)

    assert answer is not None
    assert answer.balance == Decimal("5000.00")
    store.refresh_from_db()
    assert store.balance == Decimal("5000.00")
    assert store.balance_username == "teststore"
    assert store.call_rate == Decimal("5.50")
    assert timezone.now() - store.balance_checked_at < dt.timedelta(seconds=30)


def test_an_unreachable_provider_keeps_the_last_known_balance(store, settings):
    checked = timezone.now() - dt.timedelta(hours=2)
    Store.objects.filter(pk=store.pk).update(
        balance=Decimal("1234.00"), call_rate=Decimal("5.50"), balance_checked_at=checked
    )
    store.refresh_from_db()
    settings.ROBOCALL_BASE_URL = closed_port_url()

    assert refresh_balance(store) is None

    store.refresh_from_db()
    assert (store.balance, store.balance_checked_at) == (Decimal("1234.00"), checked)


def test_a_launch_the_balance_covers_is_allowed(store, provider_url):
    check = check_launch(store, 100)

    assert check.ok
    assert (check.balance, check.estimated_cost) == (Decimal("5000.00"), Decimal("1100.00"))
    assert "Rs 5,000.00" in check.message and "Rs 1,100.00" in check.message


def test_a_balance_below_the_stores_threshold_blocks_the_launch(store, simulator, provider_url):
    set_account(simulator, balance="300.00")

    check = check_launch(store, 1)

    assert not check.ok
    assert check.balance == Decimal("300.00")
    assert "balance Rs 300.00" in check.message
    assert "low-balance threshold of Rs 500.00" in check.message


def test_a_balance_below_the_estimated_cost_blocks_the_launch(store, simulator, provider_url):
    set_account(simulator, balance="1000.00")

    check = check_launch(store, 100)

    assert not check.ok
    assert check.estimated_cost == Decimal("1100.00")
    assert "balance Rs 1,000.00" in check.message
    assert "estimated cost Rs 1,100.00 of 100 calls" in check.message
    assert "threshold" not in check.message


def test_an_unreachable_provider_with_no_known_balance_allows_the_launch_with_a_warning(
    store, settings
):
    settings.ROBOCALL_BASE_URL = closed_port_url()

    check = check_launch(store, 100)

    assert check.ok
    assert check.message.startswith("Warning: the provider could not be asked")
    assert check.balance is None


def test_an_unreachable_provider_judges_by_the_last_known_balance(store, settings):
    Store.objects.filter(pk=store.pk).update(
        balance=Decimal("100.00"), call_rate=Decimal("5.50"), balance_checked_at=timezone.now()
    )
    store.refresh_from_db()
    settings.ROBOCALL_BASE_URL = closed_port_url()

    check = check_launch(store, 10)

    assert not check.ok
    assert "Rs 100.00 (last known" in check.message


def test_a_key_the_provider_refuses_blocks_the_launch(store, simulator, provider_url):
    store.api_key = "sk-wrong-key-000000000000"
    store.save()

    check = check_launch(store, 1)

    assert not check.ok
    assert "the provider rejected this key" in check.message
    assert "status 422" not in check.message and "check_balance" not in check.message
    assert "sk-wrong-key" not in check.message


def test_beat_refreshes_every_stores_balance_every_minute():
    from robodash.celery import app

    app.loader.import_default_modules()
    app.finalize()
    entry = app.conf.beat_schedule["refresh provider balances"]
    assert entry["task"] == "calls.tasks.refresh_balances"
    assert entry["schedule"] == 60
