import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import RequestFactory

from config import errors
from config.errors import server_error, unavailable_page

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
WHAT_WE_KNOW = ["may or may not have been charged", "you never lose that money", "we refund it automatically"]


def test_the_500_page_tells_a_customer_who_may_have_paid_what_we_know():
    response = server_error(RequestFactory().get("/checkout/"))

    assert response.status_code == 500
    text = response.content.decode().replace("\n      ", " ").replace("&#x27;", "'")
    for words in WHAT_WE_KNOW:
        assert words in text


def test_the_500_page_links_find_my_order_and_names_the_support_address(settings):
    settings.SUPPORT_EMAIL = "help@shop.example"

    text = server_error(RequestFactory().get("/checkout/")).content.decode()

    assert 'href="/orders/lookup/"' in text
    assert 'href="mailto:help@shop.example"' in text


def test_the_500_page_no_longer_points_to_an_email_the_customer_may_not_have():
    text = server_error(RequestFactory().get("/")).content.decode()

    assert "link in the email we sent you" not in text
    assert "its link is in the email" not in text.lower()


def test_when_even_the_500_template_fails_the_plain_answer_says_the_same(settings, monkeypatch):
    settings.SUPPORT_EMAIL = "help@shop.example"

    def broken(*args, **kwargs):
        raise RuntimeError("template engine down")

    monkeypatch.setattr(errors.loader, "render_to_string", broken)
    response = server_error(RequestFactory().get("/"))

    assert response.status_code == 500
    text = response.content.decode().replace("&#x27;", "'")
    for words in WHAT_WE_KNOW:
        assert words in text
    assert "/orders/lookup/" in text
    assert "help@shop.example" in text


@pytest.mark.django_db
def test_an_unknown_page_gets_the_friendly_404_with_find_my_order(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    text = response.content.decode().replace("&#x27;", "'")
    assert "can't find that page" in text
    assert 'href="/orders/lookup/"' in text


def test_the_proxy_page_template_needs_nothing_but_the_support_address_and_the_site_name():
    source = (TEMPLATES / "50x.html").read_text()
    told = (TEMPLATES / "includes" / "stripe_told_the_browser.html").read_text()

    tags = set(re.findall(r"{[{%].*?[}%]}", source))
    assert tags == {"{{ SUPPORT_EMAIL }}", "{{ SITE_NAME }}", '{% include "includes/stripe_told_the_browser.html" %}'}
    assert set(re.findall(r"{[{%].*?[}%]}", told)) == {"{% if nonce %}", '{{ nonce }}', "{% endif %}"}
    assert "<style>" in source
    for page in (source, told):
        assert "<link" not in page  # nothing to fetch from an app that is down
        assert "<script src" not in page


@pytest.mark.django_db
def test_the_500_pages_script_may_run_under_the_responses_content_security_policy(client, settings):
    settings.ROOT_URLCONF = "tests.config.raising_urls"
    client.raise_request_exception = False

    response = client.get("/orders/status/broken/?payment_intent=pi_1&redirect_status=succeeded")

    assert response.status_code == 500
    nonce = re.search(r'<script nonce="([^"]+)">', response.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"]


def test_the_500_pages_script_carries_the_responses_csp_nonce():
    request = RequestFactory().get("/orders/status/abc/?payment_intent=pi_1&redirect_status=succeeded")
    request.csp_nonce = "n0nce"

    text = server_error(request).content.decode()

    assert '<script nonce="n0nce">' in text
    assert "Stripe told your browser the payment succeeded" in text  # shown by the script when Stripe said so


def test_the_rendered_proxy_page_is_plain_html_with_the_configured_support_address(settings):
    settings.SUPPORT_EMAIL = "help@shop.example"

    page = unavailable_page()

    assert not re.search(r"{[{%#]", page)
    assert 'href="mailto:help@shop.example"' in page
    assert 'href="/orders/lookup/"' in page


def test_the_proxy_page_tells_a_customer_who_may_have_paid_what_we_know():
    page = unavailable_page().replace("\n          ", " ").replace("&#x27;", "'")

    assert "briefly unavailable" in page
    for words in WHAT_WE_KNOW:
        assert words in page
    assert "email we sent you" not in page


def test_render_50x_writes_the_proxy_page_where_the_deploy_asks(settings, tmp_path):
    settings.SUPPORT_EMAIL = "help@shop.example"
    target = tmp_path / "www" / "50x.html"

    call_command("render_50x", str(target), verbosity=0)

    assert target.read_text() == unavailable_page()
    assert list(target.parent.iterdir()) == [target]  # no partial file left behind
