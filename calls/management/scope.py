"""The --store NAME / --campaign NAME options the export commands share."""

from __future__ import annotations

from django.core.management.base import CommandError

from calls.models import Campaign, Store


def store_and_campaign(
    store_name: str | None, campaign_name: str | None
) -> tuple[Store | None, Campaign | None]:
    """The store and campaign the options name (None when not given); CommandError saying what
    is wrong when a name matches nothing, or a campaign name several stores use."""
    store = None
    if store_name is not None:
        store = Store.objects.filter(name=store_name.strip()).first()
        if store is None:
            raise CommandError(f"no store named {store_name!r}")
    campaign = None
    if campaign_name is not None:
        campaigns = Campaign.objects.filter(name=campaign_name.strip())
        if store is not None:
            campaigns = campaigns.filter(store=store)
        found = list(campaigns.select_related("store")[:10])
        if not found:
            where = f" in store {store.name!r}" if store else ""
            raise CommandError(f"no campaign named {campaign_name!r}{where}")
        if len(found) > 1:
            stores = ", ".join(c.store.name for c in found)
            raise CommandError(
                f"campaign {campaign_name!r} exists in several stores ({stores}): add --store NAME"
            )
        campaign = found[0]
    return store, campaign
