"""What the calls app tells other apps, inside the transaction that makes it true."""

from django.dispatch import Signal

# An order has settled: decided (by key press or by hand), or ended without an answer after
# every attempt (unreachable or no input, no re-attempt to come). Sent by calls/transitions.py
# inside the transaction that settles it, with `order_id`; a receiver's writes commit or roll
# back with it (the shops app queues the write-back to the shop here).
order_settled = Signal()

# Orders first known to have shipped (their parcel went from nothing to shipped). Sent by
# calls/transitions.py (record_delivery, record_deliveries) inside the transaction that records
# it, with `order_ids`; calls/notices.py queues the store's shipped notice here.
order_shipped = Signal()

# New orders the store's rules skipped at intake (calls/rules.py): never called, but the shop is
# told. Sent by calls/transitions.py (record_judged) inside the intake's transaction, with
# `order_ids`, once for a batch; the shops app queues their write-backs here.
orders_skipped = Signal()
