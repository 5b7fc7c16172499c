from django.apps import AppConfig


class ShopsConfig(AppConfig):
    name = "shops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from calls.signals import order_settled
        from shops.outbox import queue_write_backs

        def queue(sender: object, order_id: int, **kwargs: object) -> None:
            queue_write_backs(order_id)

        order_settled.connect(queue, weak=False, dispatch_uid="shops.queue_write_backs")
