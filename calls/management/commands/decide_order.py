"""python manage.py decide_order STORE ORDER_ID confirmed|cancelled --note TEXT --as USERNAME

An order decided by hand from a script, as an agent decides it on the order's page: the same
transition (calls.transitions.decide_by_hand), so the same checks (no call of the order in
flight; a decision the order already has is changed only with a note saying why) and the same
consequence (the shop is told the new decision). The decision is recorded as USERNAME's, an
admin or an agent.

Exit 0: decided, or already so decided by hand (nothing changed); 1: no such store, order or
user, a user who may not decide, or a decision the order refused (the reason is printed).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.models import Order, Store, User
from calls.permissions import CALL_ACTIONS
from calls.transitions import TransitionRefused, decide_by_hand, whose_decision

DECISIONS = [Order.Decision.CONFIRMED.value, Order.Decision.CANCELLED.value]


class Command(BaseCommand):
    help = "Decide an order by hand (confirmed or cancelled) as USERNAME; the shop is told."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("store", help="the store's name")
        parser.add_argument("order_id", help="the shop's order id")
        parser.add_argument("decision", choices=DECISIONS)
        parser.add_argument(
            "--note",
            default="",
            help="why (required to change a decision the order already has)",
        )
        parser.add_argument(
            "--as", dest="username", required=True, help="the admin or agent who decides"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        store = Store.objects.filter(name=options["store"].strip()).first()
        if store is None:
            raise CommandError(f"no store named {options['store']!r}")
        order = (
            Order.objects.select_related("decided_by")
            .filter(store=store, order_id=options["order_id"].strip())
            .first()
        )
        if order is None:
            raise CommandError(f"store {store.name!r} has no order {options['order_id']!r}")
        user = User.objects.filter(username=options["username"].strip()).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        if user.role not in CALL_ACTIONS or not user.is_active:
            raise CommandError(
                f"{user.username!r} is {'an inactive ' if not user.is_active else 'a '}"
                f"{user.role}: only an active admin or agent decides orders"
            )
        decision = options["decision"]
        if order.decided_via == Order.DecidedVia.AGENT and order.decision == decision:
            self.stdout.write(
                f"Order {order.order_id} is already {decision} by hand "
                f"({order.decider}); nothing changed."
            )
            return
        overrides = whose_decision(order) if order.decision else ""
        try:
            # The decision this command read is the one it replaces: a change made meanwhile
            # is refused rather than overwritten unseen.
            decide_by_hand(order, user, decision, options["note"], replaces=order.decision)
        except TransitionRefused as refusal:
            raise CommandError(f"order {order.order_id} not decided: {refusal}") from None
        told = "to ship it" if decision == Order.Decision.CONFIRMED else "not to ship it"
        replaced = f", overriding {overrides}" if overrides else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Order {order.order_id} {decision} by {user.username}{replaced}; "
                f"the shop is told {told}."
            )
        )
