"""Paid time as dates: pure functions, no database, so services and selectors lay it out alike."""

import calendar
from datetime import datetime, timedelta

from django.utils import timezone


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month `months` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def lay_end_to_end(purchases, *, after: datetime | None = None) -> list[tuple[datetime, datetime]]:
    """Where each purchase's time falls when purchases stack: `purchases` is (paid_at, months) or
    (paid_at, months, extra_days) in the order they were granted; each starts when paid, or where
    the time before it (or `after`) ends, and lasts its months plus the days support added."""
    periods, previous_end = [], after
    for paid_at, months, *extra in purchases:
        start = max(paid_at, previous_end) if previous_end else paid_at
        previous_end = add_months(start, months) + timedelta(days=extra[0] if extra else 0)
        periods.append((start, previous_end))
    return periods


def days_left(ends_at: datetime, now: datetime | None = None) -> int:
    """Calendar days from today to the day the plan ends (0 on the day), in the site's time zone,
    so that "in 7 days" and "on December 1" agree."""
    return (timezone.localdate(ends_at) - timezone.localdate(now or timezone.now())).days
