"""Passwords while signed in (no trip to the inbox), signed in after choosing one, and the rule
every email states: once an account has a password, one-click sign-in links stop."""

import re

import pytest
from django.urls import reverse
from sesame.utils import get_query_string

from billing import services
from billing.emails import build_message
from outbox.services import outbound_email_queue
from tests.billing.helpers import paid_order
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-long-passphrase-42"


def link_only_customer(django_user_model):
    """A customer as checkout makes them: no password, signed in by emailed link."""
    return django_user_model.objects.create_user(email="buyer@example.com")


def signed_in_user(client):
    response = client.get(reverse("accounts:home"))
    return response.context["user"] if response.status_code == 200 else None


def choose_password_by_email(client, mailoutbox, django_capture_on_commit_callbacks, email):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("accounts:password_reset"), {"email": email})
    link = re.search(r"http://testserver(/account/password/reset/\S+/)", mailoutbox[-1].body).group(1)
    form = client.get(link, follow=True)
    return client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})


def test_a_customer_with_a_password_changes_it_with_the_old_one(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("accounts:password_change"), {
        "old_password": "correct horse battery staple", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    user.refresh_from_db()
    assert response.url == reverse("accounts:home")
    assert user.check_password(NEW_PASSWORD)
    assert signed_in_user(client) == user


def test_a_wrong_old_password_changes_nothing(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("accounts:password_change"), {
        "old_password": "not my password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})

    user.refresh_from_db()
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert user.check_password("correct horse battery staple")


def test_a_link_only_customer_sets_a_first_password_without_an_old_one(client, django_user_model):
    from sesame.utils import get_query_string

    user = link_only_customer(django_user_model)
    client.get(reverse("accounts:signin") + get_query_string(user))  # the emailed link proves the address
    form = client.get(reverse("accounts:password_change"))

    response = client.post(reverse("accounts:password_change"),
                           {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)

    user.refresh_from_db()
    assert "old_password" not in form.content.decode()
    assert user.check_password(NEW_PASSWORD)
    assert response.context["user"] == user  # still signed in, on the account page
    assert "Your password is saved." in response.content.decode()


def test_the_account_page_offers_to_set_a_password_to_a_link_only_customer(client, django_user_model):
    client.force_login(link_only_customer(django_user_model))

    page = client.get(reverse("accounts:home")).content.decode()

    assert ">Set a password</a>" in page
    assert f'href="{reverse("accounts:password_change")}"' in page


def test_the_account_page_offers_to_change_the_password_to_a_customer_who_has_one(client):
    client.force_login(UserFactory())

    page = client.get(reverse("accounts:home")).content.decode()

    assert ">Change password</a>" in page


def test_choosing_a_password_from_the_emailed_link_signs_the_customer_in(
    client, mailoutbox, django_user_model, django_capture_on_commit_callbacks
):
    user = link_only_customer(django_user_model)

    response = choose_password_by_email(client, mailoutbox, django_capture_on_commit_callbacks, user.email)

    page = client.get(response.url)
    assert response.url == reverse("accounts:home")
    assert page.context["user"] == user
    assert "Your password is saved." in page.content.decode()


def test_staff_choosing_a_password_by_email_are_not_signed_in_by_it(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    staff = StaffFactory()

    response = choose_password_by_email(client, mailoutbox, django_capture_on_commit_callbacks, staff.email)

    assert response.url == reverse("accounts:password_reset_complete")
    assert signed_in_user(client) is None


def test_a_sign_in_link_made_after_a_password_was_set_does_not_sign_in(client):
    user = UserFactory()  # has a password

    response = client.get(reverse("accounts:signin") + get_query_string(user))

    assert response.status_code == 200
    assert "You've set a password" in response.content.decode()
    assert reverse("accounts:login") in response.content.decode()
    assert reverse("accounts:password_reset") in response.content.decode()
    assert signed_in_user(client) is None


def test_a_sign_in_link_made_before_the_password_was_set_no_longer_works(client, django_user_model):
    user = link_only_customer(django_user_model)
    link = reverse("accounts:signin") + get_query_string(user)
    user.set_password(NEW_PASSWORD)
    user.save()

    response = client.get(link)

    assert response.status_code == 400
    assert signed_in_user(client) is None


def test_the_confirmation_email_carries_a_sign_in_link_while_the_customer_has_no_password(stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="customer")

    message = build_message(order.emails.get(kind="confirmation"))

    assert reverse("accounts:signin") + "?sesame=" in message.body


def test_emails_carry_no_sign_in_link_once_the_customer_has_a_password(stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="customer")
    order.user.set_password(NEW_PASSWORD)
    order.user.save()

    message = build_message(order.emails.get(kind="confirmation"))

    assert "sesame=" not in message.body
    assert "sesame=" not in message.alternatives[0][0]


def test_a_sign_in_link_email_to_a_customer_with_a_password_says_to_use_it(stripe_emulator):
    order = services.order_settle(order_id=paid_order().id, actor="customer")
    order.user.set_password(NEW_PASSWORD)
    order.user.save()
    email = outbound_email_queue(about=order, kind="signin_link",
                                          recipient=order.user.email)

    message = build_message(email)

    assert "sesame=" not in message.body
    assert "Your account has a password" in message.body
    assert reverse("accounts:login") in message.body
    assert message.subject == "How to sign in to Backstop"
