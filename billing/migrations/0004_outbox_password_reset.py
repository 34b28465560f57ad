"""The password link goes through the outbox too: an outbox row is about an order or, for that one
kind, about an account (exactly one of the two)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0003_mirror_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='outboundemail',
            name='user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='outbound_emails', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='outboundemail',
            name='kind',
            field=models.CharField(choices=[('confirmation', 'Order confirmation'), ('payment_received', "We have your payment, we're on it"), ('status_link', 'Order status link'), ('refund', 'Refund confirmation'), ('password_reset', 'Password link')], max_length=30),
        ),
        migrations.AlterField(
            model_name='outboundemail',
            name='order',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='emails', to='billing.order'),
        ),
        migrations.AddConstraint(
            model_name='outboundemail',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'password_reset'), ('order__isnull', True), ('user__isnull', False)), models.Q(models.Q(('kind', 'password_reset'), _negated=True), ('order__isnull', False), ('user__isnull', True)), _connector='OR'), name='outbound_email_about_an_order_or_an_account'),
        ),
    ]
