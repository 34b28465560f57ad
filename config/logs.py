"""Logs a machine can read: with LOG_FORMAT=json one JSON object per line, each carrying the id of
the request, task or command run it came from, and the order's reference when one is in hand.

- Web: django-guid's middleware gives every request an id (or takes a valid `X-Request-ID` from the
  proxy) and returns it in the same header, so a customer's "it failed" can be matched to its lines.
- Worker: each django-q2 task runs under its own task id (TaskIds below), the id django-q2's admin
  shows for a failed task.
- Commands (cron, the sweep) and the worker's own lines: one id per process, so one run's lines
  group together.
- The order: billing's settle binds the reference it works on (`bind_order`); it is written only on
  lines of the same request, task or run that bound it.
"""

import contextvars
import logging
import uuid

from django.conf import settings
from django.utils.log import AdminEmailHandler
from django_guid import clear_guid, get_guid, set_guid
from django_guid.integrations import Integration
from pythonjsonlogger.json import JsonFormatter

from config.log_redaction import redact

# Commands and the cluster's own lines: one id for the whole process (a cron run, the sentinel).
PROCESS_ID = uuid.uuid4().hex

_order = contextvars.ContextVar("backstop_log_order", default=(None, ""))


def request_id() -> str:
    return get_guid() or PROCESS_ID


def bind_order(reference: str) -> None:
    """Name this order on the log lines that follow, within the current request, task or run."""
    _order.set((request_id(), reference))


def unbind_order() -> None:
    _order.set((None, ""))


class RequestContext(logging.Filter):
    """Adds `request_id` and `order` to every record (the line format may ignore them)."""

    def filter(self, record):
        record.request_id = request_id()
        bound_to, reference = _order.get()
        record.order = reference if bound_to == record.request_id else ""
        return True


class _RedactingJsonFormatter(JsonFormatter):
    # The message is redacted by the handler's filter; a record's other fields (Django passes the
    # request itself, whose repr is its URL; tracebacks) are redacted here, in the finished line.
    def jsonify_log_record(self, log_data):
        return redact(super().jsonify_log_record(log_data))


class RedactingAdminEmailHandler(AdminEmailHandler):
    """Django's email of an unhandled error to ADMINS, with the request's URL (in the subject and all
    through the report) redacted: the report travels by email, through the provider, to inboxes."""

    def send_mail(self, subject, message, *args, **kwargs):
        if kwargs.get("html_message"):
            kwargs["html_message"] = redact(kwargs["html_message"])
        super().send_mail(redact(subject), redact(message), *args, **kwargs)


def json_formatter() -> logging.Formatter:
    return _RedactingJsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(order)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        timestamp=False,
    )


class TaskIds(Integration):
    """A django-guid integration: each django-q2 task logs under its own task id."""

    identifier = "BackstopTaskIds"

    def setup(self):
        # django-q2's signals module imports its models, so it can only be imported once the apps are
        # loaded, which is when django-guid calls setup() (settings import this module before that).
        from django_q.signals import post_execute_in_worker, pre_execute

        pre_execute.connect(_task_starts, dispatch_uid="backstop-log-task-starts")
        post_execute_in_worker.connect(_task_ends, dispatch_uid="backstop-log-task-ends")

    def run(self, guid, **kwargs):
        # Sentry (when SENTRY_DSN is set) files a request's errors under the same id as its log lines.
        if settings.SENTRY_DSN:
            # Imported only when configured (as settings does): the SDK's import is a fifth of a
            # second of every process's start (it looks for gevent, and imports it where installed).
            import sentry_sdk

            sentry_sdk.get_isolation_scope().set_tag("request_id", guid)


def _task_starts(sender, task=None, **kwargs):
    set_guid((task or {}).get("id") or uuid.uuid4().hex)
    unbind_order()


def _task_ends(sender, **kwargs):
    clear_guid()
    unbind_order()


def sentry_before_send(event, hint):
    """Status tokens and client secrets travel in URLs: every string Sentry is sent (the request's
    URL, log messages, exception values, breadcrumbs) is redacted, as the logs are."""
    return _redacted(event)


def _redacted(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value
