"""The refund form owns its checks: an amount, a reason, the range Stripe can still give back, and
the amount the person confirmed on the button."""

from support.forms import RefundAmountForm


def form(remaining=24900, **data):
    return RefundAmountForm(data, remaining=remaining, currency="usd")


def test_an_amount_within_what_is_left_with_a_reason_and_confirmed_is_a_refund():
    refund = form(amount="$49.00", reason="Goodwill", confirmed_amount="4900")

    assert refund.confirmed
    assert (refund.amount_cents(), refund.reason_text()) == (4900, "Goodwill")


def test_a_changed_amount_is_shown_to_confirm_again_without_an_error():
    refund = form(amount="49.00", reason="Goodwill", confirmed_amount="24900")

    assert not refund.confirmed
    assert (refund.amount_cents(), refund.error()) == (4900, "")


def test_more_than_stripe_can_give_back_names_the_range_and_keeps_the_typed_amount():
    refund = form(remaining=10000, amount="249.00", reason="Goodwill", confirmed_amount="24900")

    assert not refund.confirmed
    assert refund.error() == "Refund between $0.01 and $100.00."
    assert refund.amount_cents() == 24900


def test_less_than_a_cent_names_the_range():
    assert form(amount="0", reason="Goodwill").error() == "Refund between $0.01 and $249.00."


def test_a_refund_without_a_reason_asks_for_one():
    refund = form(amount="249.00", reason="  ", confirmed_amount="24900")

    assert not refund.confirmed
    assert refund.error() == "Say why: the customer reads it in their refund email."


def test_what_is_not_an_amount_is_asked_for_again_first_and_the_page_shows_everything_left():
    refund = form(amount="NaN", reason="", confirmed_amount="24900")

    assert refund.error() == "Enter an amount such as 249.00."
    assert refund.amount_cents() == 24900


def test_the_unsent_form_shows_everything_left_and_no_error():
    refund = RefundAmountForm(remaining=24900, currency="usd")

    assert (refund.amount_cents(), refund.reason_text(), refund.error(), refund.confirmed) == (24900, "", "", False)
