"""Keep an erased person out of dj-stripe's mirror for good (docs/decisions/0025-erasure.md).

Stripe keeps some of their details where the API cannot clear them (a charge's receipt_email and
billing details), and every later webhook or pull sync would write them back into the mirror. So
whenever dj-stripe stores an object Stripe marks `backstop_erased` (a customer, PaymentIntent or
charge; a payment method of a marked customer; an event or webhook body about one), the personal
fields are emptied in the row just written. A dictionary lookup per write when nothing is marked.
"""

import json

from django.db.models.signals import post_save
from django.dispatch import receiver
from djstripe import models as djstripe_models

from billing.services.erasure import ERASED_MARK, scrub_json


def _marked(data) -> bool:
    return isinstance(data, dict) and bool((data.get("metadata") or {}).get(ERASED_MARK))


@receiver(post_save, sender=djstripe_models.Customer, dispatch_uid="billing.erased_customer_mirror")
@receiver(post_save, sender=djstripe_models.PaymentIntent, dispatch_uid="billing.erased_payment_intent_mirror")
@receiver(post_save, sender=djstripe_models.Charge, dispatch_uid="billing.erased_charge_mirror")
def erased_object_scrub(sender, instance, **kwargs) -> None:
    if _marked(instance.stripe_data) or _marked({"metadata": instance.metadata}):
        changes = {"stripe_data": scrub_json(instance.stripe_data, None, stripe=True),
                   "metadata": scrub_json(instance.metadata, None, stripe=True)}
        if sender is djstripe_models.Customer:
            changes["email"] = ""
        sender.objects.filter(pk=instance.pk).update(**changes)


@receiver(post_save, sender=djstripe_models.PaymentMethod, dispatch_uid="billing.erased_payment_method_mirror")
def erased_payment_method_scrub(sender, instance, **kwargs) -> None:
    customer_id = instance.customer_id
    if customer_id and djstripe_models.Customer.objects.filter(id=customer_id, metadata__has_key=ERASED_MARK).exists():
        sender.objects.filter(pk=instance.pk).update(stripe_data=scrub_json(instance.stripe_data, None, stripe=True))


@receiver(post_save, sender=djstripe_models.Event, dispatch_uid="billing.erased_event_mirror")
def erased_event_scrub(sender, instance, **kwargs) -> None:
    if _marked(((instance.stripe_data or {}).get("data") or {}).get("object")):
        sender.objects.filter(pk=instance.pk).update(stripe_data=scrub_json(instance.stripe_data, None, stripe=True))


@receiver(post_save, sender=djstripe_models.WebhookEventTrigger, dispatch_uid="billing.erased_webhook_body")
def erased_webhook_body_scrub(sender, instance, **kwargs) -> None:
    if ERASED_MARK not in (instance.body or ""):
        return
    try:
        body = json.loads(instance.body)
    except ValueError:
        return
    if _marked(((body.get("data") or {}).get("object")) if isinstance(body, dict) else None):
        sender.objects.filter(pk=instance.pk).update(body=json.dumps(scrub_json(body, None, stripe=True)))
