"""Every payment has a receipt, as a page and as a PDF, saying what Stripe took and gave back."""

import io

import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing import services
from billing.receipts import pdf_text
from billing.tokens import order_status_token
from tests.billing.helpers import order_with_payment_intent, paid_order
from tests.factories import PlanFactory

pytestmark = pytest.mark.django_db


def settled_order(**order_fields):
    """A customer paid and the order was settled from Stripe's word, as after their return."""
    return services.order_settle(order_id=paid_order(**order_fields).id, actor="customer")


def receipt_page(client, order) -> str:
    response = client.get(reverse("billing:receipt", kwargs={"token": order_status_token(order)}))
    assert response.status_code == 200
    return response.content.decode()


def receipt_pdf(client, order):
    return client.get(reverse("billing:receipt-pdf", kwargs={"token": order_status_token(order)}))


def pdf_words(response) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)


def euro_plan():
    return PlanFactory(code="annual-eur", name="Annual", amount_cents=23900, currency="eur")


def test_the_receipt_names_the_seller_from_the_settings(client, stripe_emulator, settings):
    settings.SELLER_NAME = "Backstop Software GmbH"
    settings.SELLER_ADDRESS = ["Hauptstraße 1", "10115 Berlin", "Germany"]

    page = receipt_page(client, settled_order())

    assert "Backstop Software GmbH" in page
    assert "Hauptstraße 1" in page
    assert "10115 Berlin" in page


def test_the_receipt_names_the_buyer_and_their_email(client, stripe_emulator):
    order = settled_order(full_name="Ada Lovelace", email="ada@example.com")

    page = receipt_page(client, order)

    assert "Ada Lovelace" in page
    assert "ada@example.com" in page


def test_the_receipt_shows_the_company_and_vat_number_frozen_on_its_order(client, stripe_emulator):
    order = settled_order()
    order.buyer_company_name, order.buyer_vat_number = "Analytical Engines Ltd", "GB123456789"
    order.save()

    page = receipt_page(client, order)

    assert "Analytical Engines Ltd" in page
    assert "VAT number GB123456789" in page


def test_the_receipt_has_no_company_or_vat_line_when_none_was_added(client, stripe_emulator):
    page = receipt_page(client, settled_order())

    assert 'id="receipt-company"' not in page
    assert "VAT number" not in page


def test_the_receipt_shows_the_amount_stripe_took_in_stripes_currency(client, stripe_emulator):
    order = settled_order(plan=euro_plan())

    page = receipt_page(client, order)

    assert (order.amount_received_cents, order.received_currency) == (23900, "eur")
    assert "€239.00" in page


def test_the_receipt_shows_the_line_on_the_bank_statement(client, stripe_emulator):
    order = settled_order()

    page = receipt_page(client, order)

    assert order.statement_descriptor  # Stripe's calculated_statement_descriptor, copied by settle
    assert f"On your bank statement: <span class=\"statement\">{order.statement_descriptor}</span>" in page


def test_the_receipt_shows_the_card_the_date_and_the_reference(client, stripe_emulator):
    order = settled_order()

    page = receipt_page(client, order)

    assert "Visa ending in 4242" in page
    assert f"Paid {order.paid_at:%B} {order.paid_at.day}, {order.paid_at:%Y}" in page
    assert order.reference in page


def test_a_partial_refund_is_its_own_line_and_the_net_amount_follows(client, stripe_emulator):
    order = settled_order()
    services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="Goodwill",
                          amount_cents=5000)
    order = services.order_settle(order_id=order.id, actor="customer")

    page = receipt_page(client, order)

    (refund,) = order.refunds.all()
    assert f"Refund on {refund.created_at:%B} {refund.created_at.day}, {refund.created_at:%Y}" in page
    assert "−$50.00" in page
    assert '<td class="amount" id="receipt-net">$199.00</td>' in page


def test_a_full_refund_leaves_a_net_of_nothing(client, stripe_emulator):
    order = settled_order()
    services.order_refund(order_id=order.id, actor="customer", reason="Changed my mind")
    order = services.order_settle(order_id=order.id, actor="customer")

    page = receipt_page(client, order)

    assert "−$249.00" in page
    assert '<td class="amount" id="receipt-net">$0.00</td>' in page


def test_an_order_with_no_money_received_has_no_receipt(client, stripe_emulator):
    order = order_with_payment_intent()

    page = client.get(reverse("billing:receipt", kwargs={"token": order_status_token(order)}))
    pdf = receipt_pdf(client, order)

    assert page.status_code == pdf.status_code == 404


def test_a_broken_receipt_link_is_not_found(client):
    response = client.get(reverse("billing:receipt", kwargs={"token": "not-a-token"}))

    assert response.status_code == 404


def test_receipts_are_never_stored_by_caches(client, stripe_emulator):
    order = settled_order()

    page = client.get(reverse("billing:receipt", kwargs={"token": order_status_token(order)}))
    pdf = receipt_pdf(client, order)

    assert "no-store" in page["Cache-Control"]
    assert "no-store" in pdf["Cache-Control"]


def test_the_receipt_pdf_is_a_pdf_downloaded_under_the_reference(client, stripe_emulator):
    order = settled_order()

    response = receipt_pdf(client, order)

    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="receipt-{order.reference}.pdf"'
    assert response.content.startswith(b"%PDF")


def test_the_receipt_pdf_says_what_the_receipt_page_says(client, stripe_emulator, settings):
    settings.SELLER_NAME = "Backstop Software GmbH"
    order = settled_order(full_name="Ada Lovelace")

    words = pdf_words(receipt_pdf(client, order))

    for text in ("Backstop Software GmbH", "Ada Lovelace", order.email, order.reference, "$249.00",
                 "Visa ending in 4242", order.statement_descriptor):
        assert text in words


def test_the_receipt_pdf_lists_refunds_and_the_net_amount(client, stripe_emulator):
    order = settled_order()
    services.order_refund(order_id=order.id, actor="support:ana@backstop.localhost", reason="Goodwill",
                          amount_cents=5000)
    services.order_settle(order_id=order.id, actor="customer")

    words = pdf_words(receipt_pdf(client, order))

    assert "-$50.00" in words
    assert "Net paid" in words
    assert "$199.00" in words


def test_the_receipt_pdf_keeps_accented_names_and_the_euro_sign(client, stripe_emulator):
    order = settled_order(plan=euro_plan(), full_name="Zoë Ørsted")
    order.buyer_company_name = "Ørsted & Søn ApS"
    order.save()

    words = pdf_words(receipt_pdf(client, order))

    assert "Zoë Ørsted" in words
    assert "Ørsted & Søn ApS" in words
    assert "€239.00" in words


def test_a_name_the_pdf_font_cannot_draw_still_gives_a_pdf(client, stripe_emulator):
    order = settled_order(full_name="Łukasz Żółć 王秀英 Иван")

    response = receipt_pdf(client, order)

    assert response.status_code == 200
    assert "Lukasz Zólc" in pdf_words(response)


def test_letters_outside_the_pdf_font_become_their_plain_letter_or_a_question_mark():
    assert pdf_text("Łukasz Żółć") == "Lukasz Zólc"
    assert pdf_text("Иван") == "????"
    assert pdf_text("Zoë Ørsted paid €249") == "Zoë Ørsted paid €249"


def test_the_receipt_page_prints_without_the_site_header_and_footer(client, stripe_emulator):
    page = receipt_page(client, settled_order())

    assert "@media print" in page
    assert "header.site, footer" in page
