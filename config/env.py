"""Read settings from the environment, failing loudly and by name.

Production must never start on a guessed value: every reader raises ImproperlyConfigured with
one line that names the variable, so a bad deploy stops at boot instead of at the first payment.
"""

import os
import re
import sys
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name, default=None, *, required=False):
    value = os.environ.get(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"{name} must be set (see the configuration table in README.md).")
        return default
    return value


def env_bool(name, default=False):
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None


def env_list(name, default=()):
    raw = os.environ.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name, default=None, *, required=False):
    value = env_str(name, default, required=required)
    if value is not None and not value.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"{name} must be an http(s) URL, not {value!r}.")
    return value.rstrip("/") if value else value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '24h', '2d' (or a bare number of seconds) as a timedelta."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text or "")
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 24h or 2d")
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"])


def env_duration(name, default: str) -> timedelta:
    raw = os.environ.get(name) or default
    try:
        return parse_duration(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a duration such as 90s, 15m, 24h or 2d, not {raw!r}.") from None


def env_durations(name, default: str) -> list[timedelta]:
    """A comma-separated list of durations ('30d,7d'), longest first, each once."""
    raw = os.environ.get(name) or default
    try:
        values = {parse_duration(item) for item in raw.split(",")}
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be durations separated by commas, such as 30d,7d, not {raw!r}.") from None
    return sorted(values, reverse=True)


def settings_or_exit():
    """Load settings now and turn a configuration error into one line and exit status 1.

    Without this, a missing variable surfaces as a long traceback from wherever settings are
    first touched, and the variable's name is lost in it.
    """
    try:
        settings.INSTALLED_APPS  # noqa: B018  (touching it imports the settings module)
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"Backstop cannot start: {exc}\n")
        sys.exit(1)


ENV_FILE = "BACKSTOP_ENV_FILE"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load_env_file():
    """Read the file BACKSTOP_ENV_FILE names (NAME=value lines) into the environment.

    For cron and other callers that start with an empty environment: one file holds the settings
    for manage.py, the WSGI server and the task worker alike. What the process was already given
    wins over the file, so `SITE_URL=… manage.py …` still overrides one value. Blank lines and
    lines starting with "#" are skipped; "export " before a name and quotes around a whole value
    are allowed (the same file works as a systemd EnvironmentFile). Errors name the file and the
    line number, never the line: it may hold a secret.
    """
    path = os.environ.get(ENV_FILE)
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ImproperlyConfigured(f"{ENV_FILE} is {path}, which cannot be read: {reason}.") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, equals, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not equals or not _ENV_NAME.fullmatch(name):
            raise ImproperlyConfigured(f"{ENV_FILE} {path}, line {number}: expected NAME=value.")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        os.environ.setdefault(name, value)
