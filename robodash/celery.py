import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "robodash.settings")

app = Celery("robodash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_django_logging(**kwargs: object) -> None:
    """Log through Django's LOGGING, so the worker's lines pass the secret-redacting filter."""
    import logging.config

    from django.conf import settings

    config = dict(settings.LOGGING)
    loglevel = kwargs.get("loglevel")
    if isinstance(loglevel, str | int) and loglevel:
        config["root"] = {**config["root"], "level": loglevel}
    logging.config.dictConfig(config)
