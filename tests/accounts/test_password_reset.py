"""Password links go through Backstop's outbox (sent by the worker after commit, retried), are
limited per client and per address, and the page never says whether an address has an account."""

import re

import pytest
from django.db import IntegrityError
from django.test import Client
from django.urls import reverse

from outbox.models import OutboundEmail
from tests.factories import OrderFactory, UserFactory
from tests.ratelimits import counting_afresh

pytestmark = pytest.mark.django_db


def ask_for_a_link(client, email, **extra):
    return client.post(reverse("accounts:password_reset"), {"email": email}, **extra)


def password_links():
    return OutboundEmail.objects.filter(kind="password_reset")


def test_asking_for_a_password_link_sends_no_email_inside_the_request(client, mailoutbox,
                                                                      django_capture_on_commit_callbacks):
    UserFactory(email="ana@example.com")

    with django_capture_on_commit_callbacks(execute=False):
        ask_for_a_link(client, "ana@example.com")

    assert mailoutbox == []
    assert password_links().get().recipient == "ana@example.com"


def test_the_password_link_from_the_outbox_lets_the_customer_choose_a_password(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    user = UserFactory(email="ana@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        ask_for_a_link(client, "ana@example.com")
    (message,) = mailoutbox
    link = re.search(r"http://testserver(/account/password/reset/\S+/)", message.body).group(1)

    form = client.get(link, follow=True)
    client.post(form.redirect_chain[-1][0], {"new_password1": "a-new-long-passphrase-42",
                                             "new_password2": "a-new-long-passphrase-42"})

    user.refresh_from_db()
    assert user.check_password("a-new-long-passphrase-42")
    assert password_links().get().status == OutboundEmail.Status.SENT


def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(client):
    UserFactory(email="ana@example.com")

    known = ask_for_a_link(client, "ana@example.com")
    unknown = ask_for_a_link(client, "nobody@example.com")

    assert known.status_code == unknown.status_code == 302
    assert known.url == unknown.url
    assert client.get(known.url).content == client.get(unknown.url).content


def test_password_links_stop_after_three_an_hour_for_one_address_from_one_client():
    UserFactory(email="ana@example.com")
    counting_afresh(rate="3/h", value="10.0.3.1|ana@example.com")

    answers = [ask_for_a_link(Client(REMOTE_ADDR="10.0.3.1"), "ana@example.com") for i in range(4)]

    assert password_links().count() == 3
    assert answers[-1].status_code == 429  # and the page says nothing was sent, and when to try again
    assert "We haven't sent an email this time" in answers[-1].content.decode()


def test_password_links_stop_after_ten_an_hour_from_one_client(client):
    for i in range(11):
        UserFactory(email=f"customer{i}@example.com")
    counting_afresh(rate="10/h", value="127.0.0.1")

    for i in range(11):
        ask_for_a_link(client, f"customer{i}@example.com")

    assert password_links().count() == 10


def test_an_outbox_row_is_about_an_order_or_an_account_never_both():
    with pytest.raises(IntegrityError):
        OutboundEmail.objects.create(kind="password_reset", recipient="ana@example.com",
                                     about=OrderFactory(), user=UserFactory())
