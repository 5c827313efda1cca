"""The table of the database cache (settings.CACHES, the default): created by ``migrate``, so it is never forgotten."""
from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # Does nothing for other cache backends (CACHE_URL=redis://...) or when the table exists.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0011_secrets_store")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop, elidable=True)]
