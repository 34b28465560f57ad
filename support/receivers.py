"""Support listens to what billing records (billing/signals.py) and turns it into alerts for the team."""

from django.dispatch import receiver

from billing import signals
from support.alerts import alert_raise, alerts_notify_due, alerts_resolve, sweep_watch
from support.erasure import support_mail_scrub
from support.models import Alert


@receiver(signals.attention_needed, dispatch_uid="support.alert_on_attention")
def alert_on_attention(sender, *, kind, key, summary, details="", order=None, email=None, **kwargs) -> bool:
    if Alert.objects.filter(key=key).exists():
        return False
    alert_raise(kind=kind, key=key, summary=summary, details=details, order=order, email=email)
    return True


@receiver(signals.attention_over, dispatch_uid="support.resolve_on_attention_over")
def resolve_on_attention_over(sender, *, order, kinds, **kwargs) -> int:
    return alerts_resolve(order=order, kinds=kinds)


@receiver(signals.sweep_finished, dispatch_uid="support.watch_the_sweep")
def watch_the_sweep(sender, *, run=None, status=None, **kwargs) -> None:
    # The pass just recorded may start an outage (a second failure in a row) or end one.
    sweep_watch()


@receiver(signals.sweep_finished, dispatch_uid="support.notify_after_sweep")
def notify_after_sweep(sender, **kwargs) -> int:
    return alerts_notify_due()


@receiver(signals.customer_erased, dispatch_uid="support.scrub_support_mail")
def scrub_support_mail(sender, *, plan, **kwargs) -> None:
    support_mail_scrub(plan=plan)
