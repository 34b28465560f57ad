"""How the support console writes a moment, and what a typed date means: in SUPPORT_TIME_ZONE.

One format everywhere a person reads the console (case page, diagnosis, timeline, queue, search
results, admin columns): "Dec 1, 2026 22:09 UTC". The zone is always printed, because the same
case is read beside customers' emails (in UTC) and bank statements, and "22:09" alone was read
as the wrong one (issue 15).
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def console_zone() -> ZoneInfo:
    return ZoneInfo(settings.SUPPORT_TIME_ZONE)


def console_time(moment: datetime | None, *, seconds: bool = False) -> str:
    """"Dec 1, 2026 22:09 UTC" (with seconds: "22:09:05"); "" for no moment."""
    if moment is None:
        return ""
    local = moment.astimezone(console_zone())
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{local:%b} {local.day}, {local.year} {clock} {local:%Z}"


def console_date(moment: datetime | date | None) -> str:
    """"Dec 1, 2026": the day a moment falls on in the console's zone (a date is taken as it is)."""
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        moment = moment.astimezone(console_zone()).date()
    return f"{moment:%b} {moment.day}, {moment.year}"


def console_today() -> date:
    return timezone.now().astimezone(console_zone()).date()


def console_day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first moment of the day and of the next, in the console's zone (23 or 25 hours long on
    the days clocks change)."""
    zone = console_zone()
    return (datetime.combine(day, time(0), tzinfo=zone),
            datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))
