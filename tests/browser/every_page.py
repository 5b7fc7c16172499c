"""Every page of every role, with a little of everything on it, for the tests that walk them all
(the phone layout, axe-core).

The pages are the URL names of tests/calls/test_permissions.py's EXPECTED_ROLES that answer a
GET with a whole page; `test_every_url_is_a_page_or_named_here` keeps the two lists in step, so
a new page cannot be left out of these walks.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from decimal import Decimal

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from calls.intake.uploads import stage_upload
from calls.models import Call, Campaign, Order, OrderBatch, Store, User
from calls.transitions import record_delivery
from shops.models import ApiToken, ReceivedWebhook, ShopConnection, WriteBack
from tests.browser.conftest import make_campaign, make_final_call
from tests.calls.test_permissions import EXPECTED_ROLES
from tests.support.orders import create_call

# Injected by the browser itself (an init script is not subject to the page's CSP): the
# Content-Security-Policy violations of a page, as Chromium reports them.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""

# URL names of EXPECTED_ROLES that are not pages: fragments htmx asks for, downloads, and
# actions that only take a POST.
NOT_PAGES = {
    *("overview_balances", "call_row", "campaign_progress"),
    *("call_export", "report_export", "campaign_upload_rejected"),
    *("call_export_xlsx", "report_export_xlsx", "order_export", "order_export_xlsx"),
    *("call_again", "call_withdraw", "order_decide", "order_call_again", "order_phone"),
    *("order_delivery", "order_block", "order_unblock"),
    *("followup_claim", "followup_release", "followup_take_over", "followup_handled"),
    *("followup_callback", "followup_next", "order_bulk"),
    *("campaign_single_order", "campaign_upload", "campaign_pause", "campaign_resume"),
    *("store_verify", "store_delivery_sheet", "store_delivery_sheet_status"),
    *("store_rules_preview", "store_block_phone", "store_unblock_phone"),
}
PAGES = [name for name in EXPECTED_ROLES if name not in NOT_PAGES]
# Pages outside calls/urls.py (shops/urls.py), with the roles that open them.
OTHER_PAGES = {"store_integrations": ("admin",)}
# The sections of the main navigation, in its order.
NAV_PAGES = (
    *("overview", "call_list", "order_list", "campaign_list", "followup_list", "reports"),
    "settings",
)

PHONES = {"in_flight": "923001110001", "follow_up": "923001110002"}


@dataclass
class World:
    store: Store
    campaign: Campaign  # running, with a call of every state and outcome
    draft: Campaign  # an upload waiting for its launch
    follow_up: Call  # a callback request in the queue, its order told to the shop
    users: dict[str, User]
    batch: OrderBatch  # a bulk action half done by a worker

    def url(self, name: str) -> str:
        objects = {
            "batch": self.batch,
            "call": self.follow_up,
            "order": self.follow_up.shop_order,
            "campaign": self.draft if name == "campaign_launch" else self.campaign,
            "store": self.store,
            "user": self.users["agent"],
        }
        try:
            return reverse(name)
        except NoReverseMatch:  # a page of one object: the one its name's first word says
            target = objects["batch" if name == "order_batch" else name.split("_")[0]]
            return reverse(name, kwargs={"pk": target.pk})  # type: ignore[attr-defined]


def pages_of(role: str, world: World) -> list[str]:
    """The paths of every page `role` may open."""
    roles = {**{name: EXPECTED_ROLES[name] for name in PAGES}, **OTHER_PAGES}
    return [world.url(name) for name, allowed in roles.items() if role in allowed]


def nav_of(role: str) -> list[str]:
    """The paths the main navigation offers `role`, in order."""
    return [reverse(name) for name in NAV_PAGES if role in EXPECTED_ROLES[name]]


def make_world(store: Store, users: dict[str, User]) -> World:
    """A running campaign with a call in every state and outcome (parcels shipped, delivered
    and returned among their orders), an order in the follow-up queue that went to a connected
    shop, and a draft campaign whose upload awaits its launch."""
    campaign = make_campaign(store, "Eid sale", status=Campaign.Status.RUNNING)
    outcomes = [outcome for outcome in Call.Outcome if outcome != Call.Outcome.CALLBACK_REQUESTED]
    finals = [
        make_final_call(campaign, f"KK-20{n:02d}", outcome, phone=f"9230012340{n:02d}")
        for n, outcome in enumerate(outcomes)
    ]
    # Parcels in each state heard of, so /orders/ draws each badge.
    for final, delivery in zip(finals, Order.Delivery.values[1:], strict=False):
        record_delivery(final.shop_order_id, delivery, via=Order.DeliveryVia.SHEET)
    # A return cost, so the overview and the reports say what the calls saved.
    Store.objects.filter(pk=store.pk).update(return_cost=Decimal("450.00"))
    for n, state in enumerate((Call.State.QUEUED, Call.State.SENDING, Call.State.IN_PROGRESS)):
        create_call(
            store=store,
            campaign=campaign,
            order_id=f"KK-30{n}",
            phone=PHONES["in_flight"][:-1] + str(n),
            amount=Decimal("990.00"),
            voice_id=store.default_voice_id,
            state=state,
            scheduled_for=timezone.now() + dt.timedelta(hours=n),
        )
    follow_up = make_final_call(
        campaign, "KK-4001", Call.Outcome.CALLBACK_REQUESTED, phone=PHONES["follow_up"]
    )
    claimed = make_final_call(
        campaign, "KK-4002", Call.Outcome.UNREACHABLE, phone="923001110003", minutes_ago=20
    )
    Order.objects.filter(pk=claimed.shop_order_id).update(
        claimed_by=users["admin"], claimed_at=timezone.now()
    )

    shop = ShopConnection.objects.create(store=store, kind=ShopConnection.Kind.SHOPIFY)
    shop.shop_domain = "kitchenware.myshopify.com"
    shop.set_secrets(webhook_secret="shhh", admin_token="shpat_x")
    shop.save()
    ReceivedWebhook.objects.create(connection=shop, delivery_id="d-1", topic="orders/create")
    ApiToken.issue(store, "Checkout")
    WriteBack.objects.create(
        order=follow_up.shop_order,
        connection=shop,
        event=WriteBack.Event.choices[0][0],
        state=WriteBack.State.FAILED,
        last_error="credentials:401",
    )

    draft = make_campaign(store, "Draft", status=Campaign.Status.DRAFT)
    rows = ["phone,amount,order_id,store_name", "03001234599,1500,U-1,Shop", "12,x,U-2,Shop"]
    stage_upload(io.BytesIO("\n".join(rows).encode()), campaign=draft, filename="may.csv")
    batch = OrderBatch.objects.create(
        action=OrderBatch.Action.CONFIRM,
        created_by=users["agent"],
        order_ids=[follow_up.shop_order_id, claimed.shop_order_id],
        position=1,
        changed=1,
    )
    return World(store, campaign, draft, follow_up, users, batch)
