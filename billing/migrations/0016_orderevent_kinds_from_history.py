"""Give each event written before kinds existed its kind, and each support:<email> actor its user.

Matching the old wording is done here, once, so that no code after it ever needs to: the prefixes are
the sentences billing, support and accounts wrote up to 0015. Anything unmatched stays `legacy` and
the timeline shows its stored sentence.
"""

from django.db import migrations

# (prefix of the old reason, kind); the first match wins, so longer prefixes come first.
PREFIXES = [
    ("Order created for ", "created"),
    ("Renewal order created for ", "created"),
    ("Order recreated from Stripe's records", "recreated"),
    ("Payment set up with Stripe", "payment_set_up"),
    ("Linked to its Stripe payment", "payment_linked"),
    ("Access granted ", "access_granted"),
    ("Money held without service", "money_held"),
    ("Refund of ", "refund_requested"),
    ("Partial refund of ", "refund_requested"),
    ("Stripe did not confirm the refund", "refund_failed"),
    ("Stripe accepted the refund", "refund_accepted"),
    ("Stripe shows ", "refund_recorded"),
    ("Accepted ", "accepted_amount"),
    ("Canceled before any payment was started", "payment_canceled"),
    ("No payment was started within a day", "payment_canceled"),
    ("Stripe canceled the payment", "payment_canceled"),
    ("Time moved ", "time_moved"),
    ("Access extended by ", "access_extended"),
    ("Email sent: ", "email_sent"),
    ("Email bounced: ", "email_bounced"),
    ("Email rejected: ", "email_bounced"),
    ("Email failed: ", "email_bounced"),
    ("Email complained: ", "email_bounced"),
    ("Asked to resend: ", "resend_asked"),
    ("Sign-in link sent to ", "signin_link_sent"),
    ("Replied to the customer's email", "replied"),
    ("Took the case", "case_taken"),
    ("Team alerted: ", "team_alerted"),
    ("Signed in to their account", "signed_in"),
    ("Turned off renewal reminders", "reminders_off"),
]


def kind_of(*, reason: str, to_state: str, from_state: str) -> str:
    # "Stripe shows the payment fully refunded" is a state change, "Stripe shows X refunded in total" is not.
    if reason.startswith("Stripe shows ") and to_state:
        return "state_changed"
    if " already sent on " in reason and "by Stripe's record" in reason:
        return "email_already_sent"
    for prefix, kind in PREFIXES:
        if reason.startswith(prefix):
            return kind
    # Any other row that moved the order between states (settle's sentences) is a state change.
    if from_state and to_state:
        return "state_changed"
    return "legacy"


# "Email sent: <label> to <recipient>", "Asked to resend: <label> to <recipient>": the email's kind is data.
EMAIL_PREFIXES = {"email_sent": "Email sent: ", "resend_asked": "Asked to resend: "}


def email_data(*, reason: str, kind: str, labels: dict) -> dict:
    rest = reason.removeprefix(EMAIL_PREFIXES.get(kind, reason))
    for label, email_kind in labels.items():
        if rest.startswith(label + " to "):
            return {"email_kind": email_kind, "recipient": rest.removeprefix(label + " to ")}
    return {}


def forwards(apps, schema_editor):
    OrderEvent = apps.get_model("billing", "OrderEvent")
    OutboundEmail = apps.get_model("billing", "OutboundEmail")
    User = apps.get_model("accounts", "User")
    # Longest label first, so that no label matches the start of a longer one.
    labels = dict(sorted(((str(label), value) for value, label in OutboundEmail._meta.get_field("kind").choices),
                         key=lambda pair: -len(pair[0])))
    staff = {}
    for event in OrderEvent.objects.filter(kind="legacy").iterator():
        kind = kind_of(reason=event.reason, to_state=event.to_state, from_state=event.from_state)
        user_id = None
        if event.actor.startswith("support:"):
            email = event.actor.removeprefix("support:")
            if email not in staff:
                staff[email] = (User.objects.filter(email__iexact=email, is_staff=True)
                                .values_list("id", flat=True).first())
            user_id = staff[email]
        data = email_data(reason=event.reason, kind=kind, labels=labels) if kind in EMAIL_PREFIXES else {}
        if kind != "legacy" or user_id is not None:
            # OrderEvent.save refuses updates (append-only); the migration's update is the one exception.
            OrderEvent.objects.filter(pk=event.pk).update(kind=kind, actor_user_id=user_id, data=data or event.data)


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0015_orderevent_kind_data_actor_user"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
