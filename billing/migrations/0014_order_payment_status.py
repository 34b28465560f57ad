from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0013_order_buyer_details'),
    ]

    operations = [
        migrations.AddField(
            model_name='order',
            name='payment_status',
            field=models.CharField(blank=True, max_length=30),
        ),
        migrations.AddField(
            model_name='order',
            name='payment_status_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
