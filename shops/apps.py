from django.apps import AppConfig


class ShopsConfig(AppConfig):
    name = "shops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls.signals import order_settled, orders_skipped
        from shops.outbox import queue_skipped_write_backs, queue_write_backs

        def queue(sender: object, order_id: int, **kwargs: object) -> None:
            queue_write_backs(order_id)

        def queue_skipped(sender: object, order_ids: list[int], **kwargs: object) -> None:
            queue_skipped_write_backs(order_ids)

        order_settled.connect(queue, weak=False, dispatch_uid="shops.queue_write_backs")
        orders_skipped.connect(
            queue_skipped, weak=False, dispatch_uid="shops.queue_skipped_write_backs"
        )
