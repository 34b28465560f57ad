"""An outbox row is about any object (a generic link) instead of an order, so the outbox imports no
app above it (decision 0019). Every row about an order now names it through about_type/about_id;
"exactly one confirmation, payment-received and refund email per order" moves from a partial unique
index on (order, kind) to the unique dedupe_key "billing.order:<id>:<kind>", filled here for the rows
there are. The kind list leaves the table's constraints: the apps register their kinds."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models.functions import Cast, Concat

ONCE_PER_ORDER = ["confirmation", "payment_received", "refund"]
ORDER_KEY_PREFIX = "billing.order:"


def _check_now(schema_editor):
    # Rows just written carry deferred foreign-key checks; PostgreSQL refuses to alter the table
    # later in this migration while they are pending.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def link_orders(apps, schema_editor):
    OutboundEmail = apps.get_model("outbox", "OutboundEmail")
    ContentType = apps.get_model("contenttypes", "ContentType")
    about_orders = OutboundEmail.objects.filter(order__isnull=False)
    if not about_orders.exists():
        return
    order_type, _ = ContentType.objects.get_or_create(app_label="billing", model="order")
    about_orders.update(about_type=order_type, about_id=models.F("order_id"))
    OutboundEmail.objects.filter(kind__in=ONCE_PER_ORDER, order__isnull=False, dedupe_key__isnull=True).update(
        dedupe_key=Concat(models.Value(ORDER_KEY_PREFIX), Cast("order_id", models.CharField()), models.Value(":"),
                          "kind", output_field=models.CharField()))
    _check_now(schema_editor)


def unlink_orders(apps, schema_editor):
    OutboundEmail = apps.get_model("outbox", "OutboundEmail")
    about_orders = OutboundEmail.objects.filter(about_type__app_label="billing", about_type__model="order")
    about_orders.update(order_id=models.F("about_id"))
    OutboundEmail.objects.filter(dedupe_key__startswith=ORDER_KEY_PREFIX).update(dedupe_key=None)
    _check_now(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0001_initial"),
        ("billing", "0017_outboundemail_moves_to_outbox"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="outboundemail", name="outbound_email_once_per_order"),
        migrations.RemoveConstraint(model_name="outboundemail", name="outbound_email_about_an_order_or_an_account"),
        migrations.AddField(
            model_name="outboundemail",
            name="about_type",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="contenttypes.contenttype"),
        ),
        migrations.AddField(
            model_name="outboundemail",
            name="about_id",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(link_orders, unlink_orders),
        migrations.RemoveField(model_name="outboundemail", name="order"),
        migrations.RemoveIndex(model_name="outboundemail", name="outbound_email_unnoted_idx"),
        migrations.RenameField(model_name="outboundemail", old_name="stripe_noted_at", new_name="followed_up_at"),
        migrations.AlterField(model_name="outboundemail", name="kind", field=models.CharField(max_length=30)),
        migrations.AddIndex(
            model_name="outboundemail",
            index=models.Index(fields=["about_type", "about_id"], name="outbound_email_about_idx"),
        ),
        migrations.AddIndex(
            model_name="outboundemail",
            index=models.Index(condition=models.Q(("followed_up_at__isnull", True), ("status", "sent")),
                               fields=["sent_at"], name="outbound_email_follow_up_idx"),
        ),
        migrations.AddConstraint(
            model_name="outboundemail",
            constraint=models.CheckConstraint(
                condition=models.Q(models.Q(("about_id__isnull", True), ("about_type__isnull", True)),
                                   models.Q(("about_id__isnull", False), ("about_type__isnull", False),
                                            ("user__isnull", True)), _connector="OR"),
                name="outbound_email_about_a_thing_or_an_account"),
        ),
    ]
