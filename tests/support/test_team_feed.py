"""The landing page's feed of the team's recent actions speaks of each person in the third person:
"Ana Ruiz took the case", never "You are on this case" under someone else's name."""

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from billing.models import Order
from tests.factories import OrderFactory, StaffFactory

pytestmark = pytest.mark.django_db


def feed(client) -> str:
    page = client.get(reverse("admin:index")).content.decode().replace("&#x27;", "'")
    return " ".join(page.split("id=\"team-actions\"", 1)[1].split("</ul>", 1)[0].split())


def test_taking_a_case_reads_in_the_feed_as_the_person_took_the_case(console):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(email="ana@backstop.localhost").update(full_name="Ana Ruiz")
    order = OrderFactory()

    console.post(reverse("admin:billing_order_claim", args=[order.pk]))

    assert "Ana Ruiz took the case" in feed(console)
    assert "You are on this case" not in feed(console)


def test_leaving_a_case_reads_as_the_person_left_the_case(console):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(email="ana@backstop.localhost").update(full_name="Ana Ruiz")
    order = OrderFactory()
    console.post(reverse("admin:billing_order_claim", args=[order.pk]))

    console.post(reverse("admin:billing_order_claim", args=[order.pk]), {"release": "1"})

    assert "Ana Ruiz left the case" in feed(console)


def test_entries_written_in_the_second_person_before_are_read_in_the_third(console):
    sam = StaffFactory(full_name="Sam Lee")
    order = OrderFactory()
    LogEntry.objects.create(user=sam, content_type=ContentType.objects.get_for_model(Order), object_id=str(order.pk),
                            object_repr=str(order), action_flag=CHANGE,
                            change_message="You are on this case (taken from Ana Ruiz).")

    assert "Sam Lee took the case over from Ana Ruiz" in feed(console)
