"""The first password of an account is set only by a session that proved the address: it opened a
sign-in link or a password link sent there. The thank-you page's one-click sign-in proves nothing
(whoever typed the address could have paid), so it is offered a password link by email instead."""

import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from sesame.utils import get_query_string

from billing import services
from billing.models import Order
from billing.tokens import order_status_token
from outbox.models import OutboundEmail
from tests.billing.helpers import pay
from tests.factories import PlanFactory
from tests.ratelimits import counting_afresh

pytestmark = pytest.mark.django_db

NEW = {"new_password1": "a-long-Passphrase-41", "new_password2": "a-long-Passphrase-41"}


def one_click_signed_in(client, email="carol@example.com"):
    PlanFactory()
    client.post(reverse("billing:checkout"), {"email": email, "full_name": "Carol", "nonce": str(uuid.uuid4())})
    order = Order.objects.get(email=email)
    pay(order)
    order = services.order_settle(order_id=order.id, actor="webhook")
    client.post(reverse("billing:status-signin", kwargs={"token": order_status_token(order)}))
    assert "_auth_user_id" in client.session
    return order.user


def test_a_one_click_session_is_offered_a_link_instead_of_a_password_form(client, stripe_emulator):
    one_click_signed_in(client)

    text = client.get(reverse("accounts:password_change")).content.decode()

    assert 'id="password-link-button"' in text
    assert "new_password1" not in text


def test_a_one_click_session_cannot_set_the_first_password(client, stripe_emulator):
    user = one_click_signed_in(client)

    response = client.post(reverse("accounts:password_change"), NEW)

    assert response.status_code == 403
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_a_one_click_session_may_have_a_password_link_emailed_to_the_address(client, stripe_emulator):
    counting_afresh(rate="3/h", value="127.0.0.1|carol@example.com")
    user = one_click_signed_in(client)

    text = client.post(reverse("accounts:password_link")).content.decode()

    assert "We've emailed a link to choose your password" in text
    assert OutboundEmail.objects.filter(kind="password_reset", user=user).count() == 1


def test_a_session_signed_in_by_an_emailed_link_sets_the_first_password(client, django_user_model):
    user = django_user_model.objects.create_user(email="carol@example.com")
    client.get(reverse("accounts:signin") + get_query_string(user))

    response = client.post(reverse("accounts:password_change"), NEW)

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.has_usable_password()


def test_a_one_click_session_that_opens_an_emailed_link_may_then_set_the_password(client, stripe_emulator):
    user = one_click_signed_in(client)
    client.get(reverse("accounts:signin") + get_query_string(user))

    client.post(reverse("accounts:password_change"), NEW)

    user.refresh_from_db()
    assert user.has_usable_password()


def test_the_password_link_sets_the_first_password_and_proves_the_session(
    stripe_emulator, mailoutbox, django_capture_on_commit_callbacks
):
    counting_afresh(rate="3/h", value="127.0.0.1|carol@example.com")
    buyer = Client()
    user = one_click_signed_in(buyer)
    with django_capture_on_commit_callbacks(execute=True):
        buyer.post(reverse("accounts:password_link"))
    link = re.search(r"http://testserver(/account/password/reset/\S+/)", mailoutbox[-1].body).group(1)
    reader = Client()

    form_url = reader.get(link).url  # Django swaps the token for a session marker
    reader.post(form_url, NEW)

    user.refresh_from_db()
    assert user.has_usable_password()
    assert "carol@example.com" in reader.session["accounts:proved"]
