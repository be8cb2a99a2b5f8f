from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Identity"

    def ready(self):
        from identity import revocation  # noqa: F401  (connects the revocation rule to the models' signals)
        from identity import summaries  # noqa: F401  (drops the cached token-body names when identity data changes)
