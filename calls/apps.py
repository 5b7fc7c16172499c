from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CallsConfig(AppConfig):
    name = "calls"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls.figures.counters import recount_after_migrate
        from calls.notices import queue_shipped_notices
        from calls.signals import order_shipped

        # The reporting zone is read at start, and every start migrates: the figures follow a
        # changed zone there, before any page is drawn (calls/figures/counters.py).
        post_migrate.connect(recount_after_migrate, sender=self)
        # An order's first news of shipping queues the store's notice call, in its transaction.
        order_shipped.connect(queue_shipped_notices, dispatch_uid="calls.queue_shipped_notices")
