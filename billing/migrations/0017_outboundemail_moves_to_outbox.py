"""The outbox's model now lives in the outbox app (outbox 0001 renamed its table, rows and all):
billing forgets it, in the state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0016_orderevent_kinds_from_history"),
        ("outbox", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="OutboundEmail")],
            database_operations=[],
        ),
    ]
