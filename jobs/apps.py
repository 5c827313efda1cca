from django.apps import AppConfig
from django.db.models.signals import post_migrate


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import registry, signals  # noqa: F401  (signals: connects the revision receivers)

        registry.autodiscover()
        post_migrate.connect(_sync_actions_after_migrate, sender=self)


def _sync_actions_after_migrate(**kwargs) -> None:
    from .models import Action

    Action.objects.sync_with_registry(using=kwargs.get("using", "default"))
