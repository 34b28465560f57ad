from django.db import migrations, models


class Migration(migrations.Migration):
    """Receipts print the buyer details frozen on their own order. Existing orders start empty
    rather than copying today's account details: an order paid by someone else with the account's
    address must never print the account's company (docs/decisions/0013-access-is-proved.md)."""

    dependencies = [
        ("billing", "0012_stripe_customer_and_renewal"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="buyer_company_name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="order",
            name="buyer_vat_number",
            field=models.CharField(blank=True, max_length=50),
        ),
    ]
