"""Celery tasks of the inbox and the outbox: thin, ids only (shops/inbox.py and shops/outbox.py
have the work)."""

from celery import shared_task

from shops import inbox, outbox


@shared_task(ignore_result=True, soft_time_limit=50, time_limit=60)
def sweep_write_backs() -> None:
    """Claim the due write-backs and hand each to a worker. Run by beat every few seconds."""
    for row in outbox.claim():
        deliver_write_back.delay(row.pk)


@shared_task(ignore_result=True, soft_time_limit=100, time_limit=120)
def deliver_write_back(write_back_id: int) -> None:
    """Send one claimed write-back. A redelivered task finds it delivered or leased again."""
    from shops.models import WriteBack

    row = WriteBack.objects.filter(pk=write_back_id, state=WriteBack.State.SENDING).first()
    if row is not None:
        outbox.deliver(row)


@shared_task(ignore_result=True, soft_time_limit=100, time_limit=120)
def take_in_webhooks() -> None:
    """Take in the shops' waiting deliveries (shops/inbox.py). Woken by each delivery stored,
    and run by beat every few seconds for any a lost wake left waiting."""
    inbox.take_in_waiting()
