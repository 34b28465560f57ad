import factory
from django.contrib.auth import get_user_model

from billing.models import Order, Plan


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["email"]

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password("correct horse battery staple")


class StaffFactory(UserFactory):
    email = factory.Sequence(lambda n: f"support{n}@backstop.localhost")
    is_staff = True


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ["code"]

    code = "annual"
    name = "Annual"
    amount_cents = 24900
    currency = "usd"
    duration_months = 12


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    plan = factory.SubFactory(PlanFactory)
    email = factory.Sequence(lambda n: f"buyer{n}@example.com")
    full_name = factory.Faker("name")
    amount_cents = factory.SelfAttribute("plan.amount_cents")
    currency = factory.SelfAttribute("plan.currency")
