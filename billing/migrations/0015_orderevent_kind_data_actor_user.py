from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('billing', '0014_order_payment_status'),
    ]

    operations = [
        migrations.AddField(
            model_name='orderevent',
            name='kind',
            field=models.CharField(choices=[('created', 'Order created'), ('recreated', 'Order recreated from Stripe'), ('payment_set_up', 'Payment set up'), ('payment_linked', 'Linked to its Stripe payment'), ('state_changed', 'State changed'), ('access_granted', 'Access granted'), ('refund_recorded', 'Refund seen at Stripe'), ('money_held', 'Money held'), ('refund_requested', 'Refund requested'), ('refund_accepted', 'Refund accepted by Stripe'), ('refund_failed', 'Refund not confirmed'), ('accepted_amount', 'Amount accepted'), ('payment_canceled', 'Payment canceled'), ('time_moved', 'Time moved'), ('access_extended', 'Access extended'), ('email_sent', 'Email sent'), ('email_bounced', 'Email not delivered'), ('email_already_sent', 'Email already sent'), ('resend_asked', 'Resend asked'), ('signin_link_sent', 'Sign-in link sent'), ('replied', 'Replied to the customer'), ('case_taken', 'Took the case'), ('team_alerted', 'Team alerted'), ('signed_in', 'Signed in'), ('reminders_off', 'Renewal reminders off'), ('legacy', 'Earlier event')], db_index=True, default='legacy', max_length=30),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='orderevent',
            name='actor_user',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='orderevent',
            name='data',
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
