import pytest
from django.test import RequestFactory

from accounts import proof


@pytest.fixture
def no_check_handed_over():
    handed_over = proof._one_click_check
    proof.one_click_check_set(None)
    yield
    proof.one_click_check_set(handed_over)


def test_without_billings_check_no_one_click_session_fits_its_account(no_check_handed_over):
    request = RequestFactory().get("/account/")

    assert proof.one_click_still_fits(request) is False


def test_a_one_click_session_fits_when_the_check_handed_over_says_so(no_check_handed_over):
    proof.one_click_check_set(lambda request: True)

    assert proof.one_click_still_fits(RequestFactory().get("/account/")) is True
