"""django-q2 task entry points for the support app: fetch arguments, call one service."""

from support import alerts, services


def notify_alert(alert_id: int):
    alerts.alert_notify(alert_id=alert_id)


def watch_sweep():
    """Every minute, beside the sweep: the checks that run when the sweep itself does not (the sweep,
    outgoing email), and what any alert channel still owes (it would wait for a pass otherwise)."""
    sweep_alert = alerts.sweep_watch()
    email_alert = alerts.email_watch()
    sent = alerts.alerts_notify_due()
    return {"sweep_down": bool(sweep_alert), "email_down": bool(email_alert), "alerts_sent": sent}


def send_daily_digest():
    return alerts.daily_digest_send()


def match_inbound_message(message_id: int):
    services.inbound_message_match(message_id=message_id)
