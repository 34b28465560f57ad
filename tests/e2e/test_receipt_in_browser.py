"""A customer finds a payment's receipt on their account page and downloads it as a PDF."""

import pytest
from playwright.sync_api import expect
from sesame.utils import get_query_string

from billing import services
from tests.billing.helpers import paid_order

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_customer_opens_a_receipt_from_their_account_page_and_downloads_the_pdf(page, app_server, tmp_path):
    order = services.order_settle(order_id=paid_order(full_name="Zoë Ørsted").id, actor="customer")
    page.goto(app_server.url + "/account/signin/" + get_query_string(order.user))
    page.wait_for_url("**/account/")

    page.locator(f"li[data-reference='{order.reference}']").get_by_role("link", name="Receipt").click()

    expect(page.locator("#receipt-reference")).to_have_text(order.reference)
    expect(page.locator("#receipt-buyer")).to_contain_text("Zoë Ørsted")
    expect(page.locator("#receipt-amount")).to_have_text("$249.00")
    expect(page.locator("#receipt-statement")).to_contain_text(order.statement_descriptor)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert download.suggested_filename == f"receipt-{order.reference}.pdf"
    assert saved.read_bytes().startswith(b"%PDF")
