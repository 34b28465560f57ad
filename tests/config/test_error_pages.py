import re
from pathlib import Path

import pytest
from django.test import RequestFactory

from config.errors import server_error

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_the_500_page_reassures_a_customer_who_may_have_paid(settings):
    response = server_error(RequestFactory().get("/checkout/"))

    assert response.status_code == 500
    text = response.content.decode()
    assert "charged twice" in text
    assert settings.SUPPORT_EMAIL in text


@pytest.mark.django_db
def test_an_unknown_page_gets_the_friendly_404(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert b"can't find that page" in response.content or b"can&#x27;t find that page" in response.content


def test_the_proxy_fallback_page_is_plain_html_with_no_template_tags():
    text = (TEMPLATES / "50x.html").read_text()

    assert not re.search(r"{[{%#]", text)
    assert "<style>" in text
    assert "/orders/lookup/" in text
