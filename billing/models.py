from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

currency_validator = RegexValidator(r"^[a-z]{3}$", "Use a lowercase ISO 4217 code, e.g. usd.")


class Plan(models.Model):
    """What a customer can buy. Money is integer minor units (cents) with its currency."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    amount_cents = models.PositiveIntegerField(validators=[MinValueValidator(50)])
    currency = models.CharField(max_length=3, default="usd", validators=[currency_validator])
    duration_months = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Stripe's minimum charge in USD; below it the PaymentIntent is refused anyway.
            models.CheckConstraint(condition=models.Q(amount_cents__gte=50), name="plan_amount_min"),
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[a-z]{3}$"), name="plan_currency_iso"
            ),
            models.CheckConstraint(condition=models.Q(duration_months__gte=1), name="plan_duration_min"),
        ]

    def __str__(self):
        return f"{self.name} ({self.price_display})"

    @property
    def price_display(self):
        from billing.money import format_money

        return format_money(self.amount_cents, self.currency)
