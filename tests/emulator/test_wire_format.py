"""Stripe's wire format: nested params, expand[], list envelopes, pagination, search, errors."""

import pytest
import requests
import stripe


def raw(emulator, method, path, data=None, params=None, key=None, headers=None):
    headers = {"Authorization": f"Bearer {key or emulator.secret_key}", **(headers or {})}
    return requests.request(method, f"{emulator.api_base}{path}", data=data, params=params,
                            headers=headers, timeout=10)


def pay(**params):
    return stripe.PaymentIntent.create(amount=params.pop("amount", 1500), currency="usd",
                                       payment_method="pm_card_visa", confirm=True, **params)


def test_nested_form_params_become_hashes(emulator):
    response = raw(emulator, "POST", "/v1/customers",
                   data={"metadata[order_id]": "7", "address[city]": "Lyon", "email": "x@y.z"})
    body = response.json()
    assert body["metadata"] == {"order_id": "7"}
    assert body["address"]["city"] == "Lyon"
    assert body["address"]["line1"] is None


def test_expand_accepts_bracket_and_indexed_array_styles(emulator):
    pi = pay()
    for style in ("expand[]", "expand[0]"):
        body = raw(emulator, "GET", f"/v1/payment_intents/{pi.id}",
                   params={style: "latest_charge"}).json()
        assert body["latest_charge"]["object"] == "charge"


def test_expand_follows_nested_paths(emulator):
    pi = pay()
    pi = stripe.PaymentIntent.retrieve(pi.id, expand=["latest_charge.balance_transaction",
                                                      "payment_method"])
    assert pi.latest_charge.balance_transaction.object == "balance_transaction"
    assert pi.payment_method.object == "payment_method"


def test_expand_on_a_list_uses_the_data_prefix(emulator):
    pay()
    listed = stripe.Charge.list(expand=["data.balance_transaction", "data.payment_intent"])
    assert listed.data[0].balance_transaction.object == "balance_transaction"
    assert listed.data[0].payment_intent.object == "payment_intent"


def test_expanding_a_property_that_cannot_be_expanded_is_refused(emulator):
    pi = pay()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.retrieve(pi.id, expand=["amount"])
    assert "cannot be expanded" in str(raised.value)


def test_lists_have_stripes_envelope_and_are_newest_first(emulator, control):
    first = pay()
    control.advance_clock(5)
    second = pay()
    body = raw(emulator, "GET", "/v1/charges").json()
    assert set(body) == {"object", "data", "has_more", "url"}
    assert (body["object"], body["url"], body["has_more"]) == ("list", "/v1/charges", False)
    assert [c["payment_intent"] for c in body["data"]] == [second.id, first.id]


def test_newest_first_holds_within_one_second(emulator):
    ids = [stripe.Customer.create().id for _ in range(5)]
    assert [c.id for c in stripe.Customer.list().data] == ids[::-1]


def test_starting_after_and_ending_before_page_through_a_list(emulator):
    ids = [stripe.Customer.create().id for _ in range(5)][::-1]  # newest first
    page1 = stripe.Customer.list(limit=2)
    assert [c.id for c in page1.data] == ids[:2]
    assert page1.has_more
    page2 = stripe.Customer.list(limit=2, starting_after=page1.data[-1].id)
    assert [c.id for c in page2.data] == ids[2:4]
    assert page2.has_more
    page3 = stripe.Customer.list(limit=2, starting_after=page2.data[-1].id)
    assert [c.id for c in page3.data] == ids[4:]
    assert not page3.has_more
    back = stripe.Customer.list(limit=2, ending_before=page3.data[0].id)
    assert [c.id for c in back.data] == ids[2:4]
    assert back.has_more


def test_auto_paging_iterates_every_object(emulator):
    ids = {stripe.Customer.create().id for _ in range(7)}
    assert {c.id for c in stripe.Customer.list(limit=3).auto_paging_iter()} == ids


def test_created_range_filters_narrow_a_list(emulator, control):
    old = pay()
    control.advance_clock(100)
    cutoff = control.now()
    new = pay()
    assert [c.payment_intent for c in stripe.Charge.list(created={"gte": cutoff}).data] == [new.id]
    assert [c.payment_intent for c in stripe.Charge.list(created={"lt": cutoff}).data] == [old.id]
    both = stripe.Charge.list(created={"gt": cutoff - 1000, "lte": cutoff + 10})
    assert len(both.data) == 2


def test_created_as_an_integer_matches_that_exact_second(emulator, control):
    pay()
    control.advance_clock(10)
    new = pay()
    charge = stripe.Charge.retrieve(new.latest_charge)
    assert [c.id for c in stripe.Charge.list(created=charge.created).data] == [charge.id]


def test_charge_list_filters_by_customer_and_created_together(emulator, control, customer):
    pay(customer=customer.id)
    control.advance_clock(60)
    cutoff = control.now()
    recent = pay(customer=customer.id)
    pay()
    listed = stripe.Charge.list(customer=customer.id, created={"gte": cutoff}, limit=100)
    assert [c.payment_intent for c in listed.data] == [recent.id]


def test_charge_search_finds_charges_by_metadata(emulator):
    wanted = pay(metadata={"order_id": "42"})
    pay(metadata={"order_id": "43"})
    result = stripe.Charge.search(query="metadata['order_id']:'42'")
    assert result.object == "search_result"
    assert [c.payment_intent for c in result.data] == [wanted.id]
    assert result.next_page is None
    assert result.has_more is False
    assert result.url == "/v1/charges/search"


def test_charge_search_combines_clauses_with_and(emulator):
    pay(metadata={"shop": "a"}, amount=1000)
    wanted = pay(metadata={"shop": "a"}, amount=5000)
    pay(metadata={"shop": "b"}, amount=5000)
    query = "metadata['shop']:'a' AND amount>2000 AND status:'succeeded'"
    result = stripe.Charge.search(query=query)
    assert [c.payment_intent for c in result.data] == [wanted.id]


def test_search_pages_with_next_page(emulator):
    ids = [pay(metadata={"batch": "x"}).id for _ in range(3)][::-1]
    first = stripe.Charge.search(query='metadata["batch"]:"x"', limit=2)
    assert first.has_more
    assert first.next_page
    second = stripe.Charge.search(query='metadata["batch"]:"x"', limit=2, page=first.next_page)
    assert [c.payment_intent for c in first.data + second.data] == ids


def test_search_with_an_unsupported_field_is_refused(emulator):
    with pytest.raises(stripe.InvalidRequestError, match="unsupported search field"):
        stripe.Charge.search(query="colour:'red'")


def test_every_response_has_a_request_id_and_stripe_version(emulator):
    for response in (raw(emulator, "GET", "/v1/account"),
                     raw(emulator, "GET", "/v1/charges/ch_missing")):
        assert response.headers["Request-Id"].startswith("req_")
        assert response.headers["Stripe-Version"] == stripe.api_version


def test_the_stripe_version_header_is_echoed(emulator):
    response = raw(emulator, "GET", "/v1/account", headers={"Stripe-Version": "2024-06-20"})
    assert response.headers["Stripe-Version"] == "2024-06-20"


def test_an_unknown_parameter_is_refused(emulator):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.Customer.create(colour="red")
    assert raised.value.code == "parameter_unknown"
    assert raised.value.param == "colour"


def test_a_missing_required_parameter_is_a_400(emulator):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.create(currency="usd")
    assert (raised.value.http_status, raised.value.code) == (400, "parameter_missing")
    assert raised.value.param == "amount"


def test_an_invalid_integer_is_a_400(emulator):
    response = raw(emulator, "POST", "/v1/payment_intents",
                   data={"amount": "ten", "currency": "usd"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameter_invalid_integer"


def test_an_unknown_object_is_a_404_resource_missing(emulator):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.Charge.retrieve("ch_doesnotexist")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert str(raised.value.user_message) == "No such charge: 'ch_doesnotexist'"


def test_an_unknown_url_is_a_404(emulator):
    response = raw(emulator, "GET", "/v1/products")
    assert response.status_code == 404
    message = response.json()["error"]["message"]
    assert message.startswith("Unrecognized request URL (GET: /v1/products)")


def test_cors_preflight_is_answered_with_204(emulator):
    response = requests.options(f"{emulator.api_base}/v1/payment_intents/pi_x/confirm", timeout=5)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]


def test_every_response_allows_any_origin(emulator):
    assert raw(emulator, "GET", "/v1/account").headers["Access-Control-Allow-Origin"] == "*"
