"""django-q2 task entry points for the support app: fetch arguments, call one service."""

from support import services


def notify_alert(alert_id: int):
    services.alert_notify(alert_id=alert_id)


def watch_sweep():
    """Every minute, beside the sweep: the one check that runs when the sweep itself does not."""
    alert = services.sweep_watch()
    return {"sweep_down": bool(alert)}


def send_daily_digest():
    return services.daily_digest_send()


def match_inbound_message(message_id: int):
    services.inbound_message_match(message_id=message_id)
