"""The outbox moves out of billing (decision 0019): its table becomes outbox_outboundemail with every
row as it was. In the state, the model is created here as billing had it (billing 0017 deletes it
there); the next migration makes it about any object instead of an order."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

OLD_DUE_INDEX = models.Index(fields=["status", "next_attempt_at"], name="billing_out_status_bab225_idx")
NEW_DUE_INDEX = models.Index(fields=["status", "next_attempt_at"], name="outbound_email_due_idx")


def _move_content_type(apps, schema_editor, old_app: str, new_app: str):
    # The content type moves with the model, so its permissions (support's group can view outbox rows)
    # and the admin's log entries stay attached to it.
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    if not ContentType.objects.using(db).filter(app_label=new_app, model="outboundemail").exists():
        ContentType.objects.using(db).filter(app_label=old_app, model="outboundemail").update(app_label=new_app)


def move_table(apps, schema_editor):
    model = apps.get_model("billing", "OutboundEmail")
    schema_editor.rename_index(model, OLD_DUE_INDEX, NEW_DUE_INDEX)
    schema_editor.alter_db_table(model, "billing_outboundemail", "outbox_outboundemail")
    _move_content_type(apps, schema_editor, "billing", "outbox")


def move_table_back(apps, schema_editor):
    model = apps.get_model("billing", "OutboundEmail")
    schema_editor.alter_db_table(model, "outbox_outboundemail", "billing_outboundemail")
    schema_editor.rename_index(model, NEW_DUE_INDEX, OLD_DUE_INDEX)
    _move_content_type(apps, schema_editor, "outbox", "billing")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("billing", "0016_orderevent_kinds_from_history"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(move_table, move_table_back)],
            state_operations=[
                migrations.CreateModel(
                    name="OutboundEmail",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("kind", models.CharField(choices=[
                            ("confirmation", "Order confirmation"),
                            ("payment_received", "We have your payment, we're on it"),
                            ("status_link", "Order status link"), ("refund", "Refund confirmation"),
                            ("password_reset", "Password link"), ("signin_link", "Sign-in link"),
                            ("already_yours", "Checkout with an address that has the plan"),
                            ("renewal_reminder", "Plan ends soon"), ("plan_ended", "Plan has ended"),
                            ("support_reply", "Reply from support"),
                            ("access_extended", "Access extended by support")], max_length=30)),
                        ("recipient", models.EmailField(max_length=254)),
                        ("status", models.CharField(choices=[
                            ("pending", "Waiting to send"), ("sending", "Sending"), ("sent", "Sent"),
                            ("uncertain", "Unknown: sending was interrupted"), ("failed", "Gave up")],
                            default="pending", max_length=20)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("next_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("claimed_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.CharField(blank=True, max_length=500)),
                        ("dedupe_key", models.CharField(blank=True, max_length=100, null=True, unique=True)),
                        ("subject", models.CharField(blank=True, max_length=300)),
                        ("body", models.TextField(blank=True)),
                        ("in_reply_to", models.CharField(blank=True, max_length=998)),
                        ("sent_by", models.CharField(blank=True, max_length=200)),
                        ("send_reason", models.CharField(blank=True, max_length=500)),
                        ("facts", models.JSONField(blank=True, default=dict)),
                        ("esp_message_id", models.CharField(blank=True, max_length=255)),
                        ("esp_status", models.CharField(blank=True, max_length=50)),
                        ("sent_at", models.DateTimeField(blank=True, null=True)),
                        ("stripe_noted_at", models.DateTimeField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("order", models.ForeignKey(blank=True, null=True,
                                                    on_delete=django.db.models.deletion.CASCADE,
                                                    related_name="emails", to="billing.order")),
                        ("user", models.ForeignKey(blank=True, null=True,
                                                   on_delete=django.db.models.deletion.CASCADE,
                                                   related_name="outbound_emails", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "ordering": ["created_at", "id"],
                        "indexes": [
                            NEW_DUE_INDEX,
                            models.Index(condition=models.Q(("status", "sent"), ("stripe_noted_at__isnull", True)),
                                         fields=["sent_at"], name="outbound_email_unnoted_idx"),
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("kind__in", ["confirmation", "payment_received", "refund"])),
                                fields=("order", "kind"), name="outbound_email_once_per_order"),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("kind", "password_reset"), ("order__isnull", True),
                                             ("user__isnull", False)),
                                    models.Q(("kind", "support_reply"), ("user__isnull", True)),
                                    models.Q(models.Q(("kind__in", ["password_reset", "support_reply"]),
                                                      _negated=True),
                                             ("order__isnull", False), ("user__isnull", True)),
                                    _connector="OR"),
                                name="outbound_email_about_an_order_or_an_account"),
                        ],
                    },
                ),
            ],
        ),
    ]
