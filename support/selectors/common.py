"""What every part of support's reads shares: the words for Stripe not asked or not reached, the
order states whose payment is still open, how a moment is said, and the windows the queue and the
diagnosis both count with."""

from datetime import datetime

from billing.models import OrderState
from support.timefmt import console_time

S = OrderState
UNKNOWN = "unknown"  # Stripe could not be reached
NOT_ASKED = "not asked"  # Stripe was not asked (only our records and the mirror were read)


def _when(moment: datetime | None) -> str:
    return console_time(moment) if moment else "an unknown time"


# Orders whose payment is still open: our row may lag Stripe (a lost webhook, a closed tab).
OPEN_STATES = (S.PENDING, S.PROCESSING, S.FAILED, S.PAID)


# Two payments for the same plan this close together, neither made through checkout's renewal offer:
# "paid twice", a second payment nobody chose (the queue's "duplicate"). A renewal is chosen.
DUPLICATE_PAYMENT_WINDOW_MINUTES = 60


# Charged orders the sweep has had this long to finish on its own before a person is asked.
NETS_HEAD_START_MINUTES = 5
