"""Django admin for calls and orders: a back office for staff, and the baseline the pages bench
compares the Calls and Orders pages with (`make bench`), so it is configured as a careful
developer would: the relations of a row fetched in the same query, 50 rows a page like the
pages, searches that can use an index, and no second COUNT(*) of the whole table just to say
"of N"."""

from __future__ import annotations

from django.contrib import admin

from calls.models import Call, Order


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "order_id",
        "phone",
        "campaign",
        "store",
        "state",
        "outcome",
        "amount",
        "call_status",
        "dtmf",
        "retry",
        "call_charges",
    )
    list_display_links = ("id", "order_id")
    list_filter = ("state", "outcome", "store", "campaign")
    # "^" is a prefix search (istartswith): a clerk types the start of an order id or number.
    search_fields = ("^order_id", "^phone")
    list_select_related = ("store", "campaign")
    list_per_page = 50
    # The filtered count is already one COUNT(*); the "of N total" would be a second one.
    show_full_result_count = False
    ordering = ("-created_at", "-id")
    # A raw id box, not a <select> of every call, for the self-reference on the change form.
    raw_id_fields = ("parent", "shop_order", "campaign", "store")
    # The pipeline owns these fields: staff read them here, they change them on the pages.
    readonly_fields = (
        "state",
        "outcome",
        "provider_call_id",
        "call_status",
        "dtmf",
        "retry",
        "call_charges",
        "provider_updated_at",
        "claimed_at",
        "sent_at",
        "next_poll_at",
        "poll_count",
        "poll_errors",
        "finalized_at",
        "last_error",
        "review_reason",
        "created_at",
        "updated_at",
    )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "order_id",
        "store",
        "customer_name",
        "phone",
        "amount",
        "source",
        "status",
        "decision",
        "decided_via",
        "decided_by",
        "followup",
    )
    list_display_links = ("id", "order_id")
    list_filter = ("status", "decision", "decided_via", "followup", "source", "store")
    # Any part of the order id (icontains: UPPER(order_id) LIKE, which order_id_trgm_idx
    # serves, as on /orders/), or the start of a phone as stored (92300…).
    search_fields = ("order_id", "^phone")
    list_select_related = ("store", "decided_by")
    list_per_page = 50
    show_full_result_count = False
    ordering = ("-created_at", "-id")
    raw_id_fields = ("store", "campaign", "decided_by", "claimed_by")
    # Intake writes the message; calls/transitions.py the status, the decision and the
    # follow-up. Staff read them here; a decision is made (and changed) and a follow-up worked
    # on the order's page, where each is recorded as an OrderEvent.
    readonly_fields = (
        "status",
        "decision",
        "decided_via",
        "decided_by",
        "followup",
        "followup_at",
        "callback_set",
        "claimed_by",
        "claimed_at",
        "decided_at",
        "decision_note",
        "rejected_reason",
        "source",
        "shop_ref",
        "created_at",
        "updated_at",
    )
