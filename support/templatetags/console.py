"""`{% load console %}`: the console's one way to write a moment (support/timefmt.py)."""

from django import template
from django.conf import settings

from support.timefmt import console_date, console_time

register = template.Library()


@register.filter(name="console_time")
def console_time_filter(moment, precision=""):
    """{{ moment|console_time }} → "Dec 1, 2026 22:09 UTC"; {{ moment|console_time:"seconds" }} adds seconds."""
    return console_time(moment, seconds=precision == "seconds")


@register.filter(name="console_date")
def console_date_filter(moment):
    return console_date(moment)


@register.simple_tag
def console_zone():
    """The zone the console shows times in and reads typed dates in (SUPPORT_TIME_ZONE)."""
    return settings.SUPPORT_TIME_ZONE
