"""Alerts and replies point at the outbox's model where it now lives. The database's foreign keys
already do: they follow the table renamed by outbox 0001."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0008_alert_sweep_down"),
        ("outbox", "0001_initial"),
    ]
    # Before billing forgets the model, so nothing points at it then.
    run_before = [("billing", "0017_outboundemail_moves_to_outbox")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="alert",
                    name="email",
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="alerts", to="outbox.outboundemail"),
                ),
                migrations.AlterField(
                    model_name="supportreply",
                    name="email",
                    field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name="+",
                                               to="outbox.outboundemail"),
                ),
            ],
            database_operations=[],
        ),
    ]
