"""Events and webhook delivery: Stripe's envelope, signatures, retries and webhook faults."""

import contextlib
import time

import pytest
import stripe

from .conftest import WEBHOOK_SECRET


def pay(**extra):
    return stripe.PaymentIntent.create(amount=3000, currency="usd", payment_method="pm_card_visa",
                                       confirm=True, **extra)


def event_of(event_type):
    return stripe.Event.list(type=event_type, limit=1).data[0]


def test_webhooks_are_signed_like_stripe(emulator, webhook_receiver):
    pay()
    event = event_of("payment_intent.succeeded")
    received = webhook_receiver.wait_for_event(event.id)[0]
    verified = stripe.Webhook.construct_event(received.body, received.headers["Stripe-Signature"],
                                              WEBHOOK_SECRET)
    assert verified.id == event.id
    assert received.headers["Stripe-Signature"].startswith("t=")
    assert received.headers["Content-Type"].startswith("application/json")


def test_a_wrong_secret_does_not_verify(emulator, webhook_receiver):
    stripe.Customer.create()
    event = event_of("customer.created")
    received = webhook_receiver.wait_for_event(event.id)[0]
    try:
        stripe.Webhook.construct_event(received.body, received.headers["Stripe-Signature"],
                                       "whsec_other")
    except stripe.SignatureVerificationError:
        return
    raise AssertionError("a wrong secret verified")


def test_the_event_envelope_is_stripes(emulator, webhook_receiver):
    pi = pay(idempotency_key="env-1")
    event = event_of("charge.succeeded")
    payload = webhook_receiver.wait_for_event(event.id)[0].payload
    assert set(payload) == {"id", "object", "api_version", "created", "data", "livemode",
                            "pending_webhooks", "request", "type"}
    assert payload["object"] == "event"
    assert payload["livemode"] is False
    assert payload["api_version"] == stripe.api_version
    assert payload["request"]["idempotency_key"] == "env-1"
    assert payload["request"]["id"] == pi.last_response.request_id
    assert payload["data"]["object"]["id"] == pi.latest_charge


def test_a_payment_emits_the_payment_events(emulator):
    pay()
    types = {e.type for e in stripe.Event.list().data}
    assert {"payment_intent.created", "payment_intent.succeeded", "charge.succeeded"} <= types


def test_a_decline_emits_charge_failed_and_payment_failed(emulator):
    with contextlib.suppress(stripe.CardError):
        stripe.PaymentIntent.create(amount=3000, currency="usd", confirm=True,
                                    payment_method="pm_card_chargeDeclined")
    types = [e.type for e in stripe.Event.list().data]
    assert "charge.failed" in types
    assert "payment_intent.payment_failed" in types


def test_a_canceled_payment_intent_emits_payment_intent_canceled(emulator):
    pi = stripe.PaymentIntent.create(amount=3000, currency="usd")
    stripe.PaymentIntent.cancel(pi.id)
    assert event_of("payment_intent.canceled").data.object.id == pi.id


def test_a_3ds_card_emits_requires_action(emulator):
    pay_pm = stripe.PaymentIntent.create(amount=3000, currency="usd", confirm=True,
                                         payment_method="pm_card_authenticationRequired")
    assert event_of("payment_intent.requires_action").data.object.id == pay_pm.id


def test_a_refund_emits_refund_created_and_charge_refunded_with_previous_attributes(emulator):
    pi = pay()
    stripe.Refund.create(payment_intent=pi.id, amount=1000)
    assert event_of("refund.created").data.object.amount == 1000
    refunded = event_of("charge.refunded")
    assert refunded.data.previous_attributes.to_dict() == {"amount_refunded": 0}
    assert refunded.data.object.amount_refunded == 1000


def test_a_refund_update_emits_refund_updated(emulator):
    pi = pay()
    refund = stripe.Refund.create(payment_intent=pi.id)
    stripe.Refund.modify(refund.id, metadata={"reason": "late"})
    assert event_of("refund.updated").data.object.metadata.reason == "late"


def test_a_failed_delivery_is_retried_until_it_succeeds(emulator, webhook_receiver, control):
    webhook_receiver.fail_next(2)
    stripe.Customer.create()
    event = event_of("customer.created")
    received = webhook_receiver.wait_for_event(event.id, count=3)
    assert len(received) == 3
    control.wait_for_webhooks()
    attempts = control.webhook_deliveries(event=event.id)
    assert [d["outcome"] for d in attempts] == ["failed", "failed", "succeeded"]
    assert [d["http_status"] for d in attempts] == [500, 500, 200]
    assert stripe.Event.retrieve(event.id).pending_webhooks == 0


def test_delivery_success_false_lists_events_not_yet_delivered(emulator, control):
    control.pause_webhooks()
    stripe.Customer.create()
    event = event_of("customer.created")
    assert event.pending_webhooks == 1
    assert [e.id for e in stripe.Event.list(delivery_success=False).data] == [event.id]
    control.resume_webhooks()
    control.wait_for_webhooks()
    assert stripe.Event.list(delivery_success=False).data == []
    assert [e.id for e in stripe.Event.list(delivery_success=True).data] == [event.id]


def test_paused_webhooks_are_delivered_on_resume(emulator, webhook_receiver, control):
    control.pause_webhooks()
    stripe.Customer.create()
    event = event_of("customer.created")
    assert control.state()["webhooks"]["held"] == 1
    assert webhook_receiver.for_event(event.id) == []
    control.resume_webhooks()
    webhook_receiver.wait_for_event(event.id)


def test_a_dropped_webhook_arrives_only_when_resent(emulator, webhook_receiver, control):
    control.drop_webhooks(1)
    stripe.Customer.create()
    event = event_of("customer.created")
    control.wait_for_webhooks()
    assert webhook_receiver.for_event(event.id) == []
    assert stripe.Event.list(delivery_success=False).data[0].id == event.id
    control.resend_event(event.id)
    webhook_receiver.wait_for_event(event.id)
    control.wait_for_webhooks()
    assert stripe.Event.retrieve(event.id).pending_webhooks == 0


def test_a_duplicated_webhook_arrives_twice(emulator, webhook_receiver, control):
    control.duplicate_webhooks(1)
    stripe.Customer.create()
    event = event_of("customer.created")
    assert len(webhook_receiver.wait_for_event(event.id, count=2)) == 2


def test_a_delayed_webhook_arrives_later(emulator, webhook_receiver, control):
    control.delay_webhooks(0.6, count=1)
    started = time.monotonic()
    stripe.Customer.create()
    event = event_of("customer.created")
    received = webhook_receiver.wait_for_event(event.id)[0]
    assert received.at - started >= 0.6


def test_a_reordered_batch_arrives_in_reverse(emulator, webhook_receiver, control):
    control.reorder_webhooks(3, mode="reverse")
    ids = []
    for _ in range(3):
        stripe.Customer.create()
        ids.append(event_of("customer.created").id)
    received = webhook_receiver.wait_for(lambda rs: all(any(r.event_id == i for r in rs)
                                                        for i in ids))
    order = [r.event_id for r in received if r.event_id in ids]
    assert order == ids[::-1]


def test_any_event_can_be_resent(emulator, webhook_receiver, control):
    stripe.Customer.create()
    event = event_of("customer.created")
    webhook_receiver.wait_for_event(event.id)
    control.resend_event(event.id)
    assert len(webhook_receiver.wait_for_event(event.id, count=2)) == 2


def test_webhook_endpoints_can_be_created_listed_and_deleted(emulator):
    endpoint = stripe.WebhookEndpoint.create(url="https://example.com/hook",
                                             enabled_events=["charge.succeeded"])
    assert endpoint.secret.startswith("whsec_")
    assert "secret" not in stripe.WebhookEndpoint.retrieve(endpoint.id)
    assert endpoint.id in [e.id for e in stripe.WebhookEndpoint.list().data]
    assert stripe.WebhookEndpoint.delete(endpoint.id).deleted is True
    assert endpoint.id not in [e.id for e in stripe.WebhookEndpoint.list().data]


def test_enabled_events_choose_what_an_endpoint_receives(emulator, webhook_receiver, control):
    endpoint = stripe.WebhookEndpoint.create(url=webhook_receiver.url + "?only=charges",
                                             enabled_events=["charge.succeeded"])
    pay()
    control.wait_for_webhooks()
    only = control.webhook_deliveries(endpoint=endpoint.id)
    assert {d["type"] for d in only} == {"charge.succeeded"}
    assert event_of("charge.succeeded").pending_webhooks == 0
    assert event_of("payment_intent.succeeded").pending_webhooks == 0


def test_events_are_listed_by_type_types_and_created(emulator, control):
    stripe.Customer.create()
    control.advance_clock(100)
    cutoff = control.now()
    pay()
    assert {e.type for e in stripe.Event.list(type="charge.*").data} == {"charge.succeeded"}
    listed = stripe.Event.list(types=["customer.created", "charge.succeeded"])
    assert [e.type for e in listed.data] == ["charge.succeeded", "customer.created"]
    recent = {e.type for e in stripe.Event.list(created={"gte": cutoff}).data}
    assert "customer.created" not in recent
    assert "charge.succeeded" in recent


def test_event_data_is_a_snapshot_of_the_object_when_it_happened(emulator):
    pi = pay()
    stripe.Refund.create(payment_intent=pi.id)
    succeeded = event_of("charge.succeeded")
    assert succeeded.data.object.refunded is False
    assert stripe.Charge.retrieve(pi.latest_charge).refunded is True


def test_webhook_concurrency_is_a_flag_and_nonsense_is_refused():
    from stripe_emulator.__main__ import parse_args

    assert parse_args(["--webhook-workers", "32"]).webhook_workers == 32
    with pytest.raises(SystemExit):
        parse_args(["--webhook-workers", "0"])


def test_the_command_line_endpoint_receives_only_the_events_it_was_subscribed_to():
    from stripe_emulator.__main__ import parse_args
    from stripe_emulator.app import Config, Emulator

    args = parse_args(["--webhook", "http://127.0.0.1:9/hook=whsec_x",
                       "--webhook-events", "payment_intent.succeeded,charge.succeeded"])
    emulator = Emulator(Config(webhooks=args.webhook, webhook_events=args.webhook_events.split(",")))

    (endpoint,) = emulator.store["webhook_endpoint"].rows.values()
    assert endpoint["enabled_events"] == ["payment_intent.succeeded", "charge.succeeded"]
