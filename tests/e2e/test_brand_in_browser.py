"""The product's name (SITE_NAME) from the web server's environment, in what the browser shows
through a purchase."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_checkout_in_browser import CARD_OK, expect_status, fill_card, pay, start_checkout

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def acme_env(monkeypatch):
    """The web server starts with SITE_NAME set (app_server passes the environment on)."""
    monkeypatch.setenv("SITE_NAME", "Acme Notes")


def test_a_purchase_shows_the_configured_name_from_checkout_to_the_active_status_page(acme_env, page, app_server):
    start_checkout(page, app_server)
    expect(page).to_have_title("Pay $249.00 · Acme Notes")
    fill_card(page, CARD_OK)

    pay(page)

    page.wait_for_url("**/orders/**")
    expect_status(page, "active")
    expect(page).to_have_title(re.compile(r" · Acme Notes$"))
    assert "Backstop" not in page.content()
