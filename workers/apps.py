from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self):
        from workers.celery import app  # noqa: F401  (so @shared_task binds to it)
