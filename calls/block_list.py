"""A store's block list: phones whose new orders the store's rules hold for a person
(calls/rules.py). Blocked and unblocked here, whoever asks: `block_phone` / `unblock_phone`
(the commands), and the pages that list and block a phone.

A phone is stored as orders store it (923XXXXXXXXX), so a number typed in any shape blocks the
orders it places; the reason is kept as typed (checked for characters only) and shown with the
order it holds ("blocked: fake orders").
"""

from __future__ import annotations

from django.db import transaction

from calls.intake.storable_text import refused_character
from calls.models import BlockedPhone, Store, User
from calls.phones import normalize_pk_mobile

MAX_REASON_LENGTH = 500


class BlockRefused(ValueError):
    """The phone or the reason cannot be taken; str() says why, in words for the person."""


def _phone(raw: str) -> str:
    return normalize_pk_mobile(raw)  # InvalidPhone (a ValueError) says why it is not one


def block_phone(
    store: Store, raw_phone: str, reason: str, *, by: User | None = None
) -> tuple[BlockedPhone, bool]:
    """Block `raw_phone` at `store`, or give an already blocked one the new reason: (the row,
    whether it was newly blocked). InvalidPhone or BlockRefused saying what is wrong."""
    phone = _phone(raw_phone)
    reason = reason.strip()
    refused = refused_character("reason", reason)
    if refused is not None:
        raise BlockRefused(str(refused))
    if len(reason) > MAX_REASON_LENGTH:
        raise BlockRefused(
            f"the reason is {len(reason)} characters long; keep it under {MAX_REASON_LENGTH}"
        )
    with transaction.atomic():
        row, created = BlockedPhone.objects.get_or_create(
            store=store, phone=phone, defaults={"reason": reason, "created_by": by}
        )
        if not created and row.reason != reason:
            row.reason = reason
            row.save(update_fields=["reason"])
    return row, created


def unblock_phone(store: Store, raw_phone: str) -> bool:
    """Take `raw_phone` off `store`'s block list; False when it was not on it. Orders already
    held stay held: a person decides each."""
    deleted, _ = BlockedPhone.objects.filter(store=store, phone=_phone(raw_phone)).delete()
    return bool(deleted)
