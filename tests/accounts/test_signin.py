import pytest
from django.urls import reverse
from sesame.utils import get_query_string

pytestmark = pytest.mark.django_db


def test_the_emailed_sign_in_link_signs_the_customer_in(client, django_user_model):
    user = django_user_model.objects.create_user(email="buyer@example.com")  # no password: links work

    response = client.get(reverse("accounts:signin") + get_query_string(user))

    assert response.status_code == 302
    assert client.get(reverse("accounts:home")).context["user"] == user


def test_a_broken_sign_in_link_explains_how_to_get_a_new_one(client):
    response = client.get(reverse("accounts:signin") + "?sesame=not-a-token")

    assert response.status_code == 400
    assert b"/orders/lookup/" in response.content


def test_the_account_page_needs_a_signed_in_customer(client):
    response = client.get(reverse("accounts:home"))

    assert response.status_code == 302
    assert reverse("accounts:login") in response.url


def test_a_customer_without_a_password_can_ask_for_one_by_email(
    client, mailoutbox, django_user_model, django_capture_on_commit_callbacks
):
    django_user_model.objects.create_user(email="buyer@example.com")

    with django_capture_on_commit_callbacks(execute=True):  # sent by the worker, after commit
        client.post(reverse("accounts:password_reset"), {"email": "Buyer@example.com"})

    assert [m.to for m in mailoutbox] == [["buyer@example.com"]]
