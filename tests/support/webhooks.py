"""What became of a shop's webhook: answered at once (refused, a duplicate, ignored), or
accepted and then taken in by the inbox (shops/inbox.py), whose function the tests run in
their own process where no worker is what they test."""

from __future__ import annotations

from typing import Any

from shops.inbox import take_in_waiting
from shops.models import ReceivedWebhook


def taken_in(answer: dict[str, Any]) -> tuple[str, str]:
    """(outcome, message) of the delivery whose answer this is, once the inbox has taken in
    every waiting delivery: the answer's own for one answered at once."""
    take_in_waiting()
    if answer.get("result") != "accepted":
        return answer["result"], answer["message"]
    row = ReceivedWebhook.objects.filter(delivery_id=answer["delivery"]).latest("id")
    return row.outcome, row.result
