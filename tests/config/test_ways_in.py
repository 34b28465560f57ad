"""Buy, Sign in and Find my order: reachable from the front page and from the header of every page."""

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from billing.tokens import order_status_token
from tests.factories import OrderFactory, PlanFactory, UserFactory

pytestmark = pytest.mark.django_db


class Links(HTMLParser):
    """Every link as (href, text): those in the page's <header>, and the others."""

    def __init__(self, html):
        super().__init__()
        self.header, self.elsewhere = [], []
        self._in_header, self._href, self._text = False, None, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "header":
            self._in_header = True
        elif tag == "a":
            self._href, self._text = dict(attrs).get("href"), []

    def handle_endtag(self, tag):
        if tag == "header":
            self._in_header = False
        elif tag == "a" and self._href is not None:
            link = (self._href, " ".join("".join(self._text).split()))
            (self.header if self._in_header else self.elsewhere).append(link)
            self._href = None

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)


def links(client, url):
    response = client.get(url)
    assert response.status_code == 200
    return Links(response.content.decode())


WAYS_IN = [("/checkout/", "Buy"), ("/account/login/", "Sign in"), ("/orders/lookup/", "Find my order")]


def test_the_front_page_header_offers_buy_sign_in_and_find_my_order(client):
    PlanFactory()

    header = links(client, "/").header

    for link in WAYS_IN:
        assert link in header


def test_the_front_page_has_a_buy_button_for_the_plan_on_sale(client):
    PlanFactory(name="Annual")

    page = client.get("/").content.decode()

    assert '<a class="button" href="/checkout/" id="home-buy">Buy the Annual plan</a>' in page


def test_the_front_page_itself_offers_sign_in_and_find_my_order(client):
    PlanFactory()

    body = links(client, "/").elsewhere

    assert ("/account/login/", "Sign in") in body
    assert ("/orders/lookup/", "Find my order") in body


def test_with_nothing_on_sale_the_front_page_has_no_buy_button(client):
    page = client.get("/").content.decode()

    assert "Nothing on sale" in page
    assert 'id="home-buy"' not in page


def test_a_signed_in_customer_is_offered_their_account_instead_of_sign_in(client):
    PlanFactory()
    client.force_login(UserFactory())

    header = links(client, "/").header

    assert ("/account/", "Your account") in header
    assert ("/account/login/", "Sign in") not in header


def test_the_checkout_page_header_offers_the_ways_in(client):
    PlanFactory()

    header = links(client, reverse("billing:checkout")).header

    for link in WAYS_IN:
        assert link in header


def test_the_order_status_page_header_offers_the_ways_in(client):
    order = OrderFactory()

    header = links(client, reverse("billing:status", kwargs={"token": order_status_token(order)})).header

    for link in WAYS_IN:
        assert link in header


def test_the_find_my_order_page_header_offers_the_ways_in(client):
    header = links(client, reverse("billing:lookup")).header

    for link in WAYS_IN:
        assert link in header

