"""BACKSTOP_ENV_FILE: one environment file for manage.py, WSGI and the worker; the documented cron
line and timer run as cron runs them (an empty environment) and, when all is well, print nothing."""

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from config.env import load_env_file

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy"


def production_env_file(tmp_path, stripe_emulator, **overrides) -> Path:
    """A production environment (DEBUG off) on the test database and the emulator's Stripe."""
    db = connection.settings_dict
    values = {
        "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-8f3k2l0qz9x7c6v5b4n3m2",
        "ALLOWED_HOSTS": "shop.example.com",
        "SITE_URL": "https://shop.example.com",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT']}/{db['NAME']}",
        "STRIPE_SECRET_KEY": stripe_emulator.secret_key,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_51BackstopEmulatorLocalKey0000000000",
        "STRIPE_API_BASE": stripe_emulator.api_base,
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "BACKSTOP_VAR_DIR": str(tmp_path / "var"),
        **overrides,
    }
    path = tmp_path / "backstop.env"
    path.write_text("# Backstop, production\n\n" + "".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def documented(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    assert match, pattern
    return match.group(1)


def run_as_cron(command: str, env_file: Path | None, *, cwd="/") -> subprocess.CompletedProcess:
    """`command` as cron runs it: /bin/sh, an empty environment but for BACKSTOP_ENV_FILE."""
    command = command.replace("/srv/backstop", shlex.quote(str(ROOT)))
    env = ["env", "-i"] + ([f"BACKSTOP_ENV_FILE={env_file}"] if env_file else [])
    return subprocess.run([*env, "/bin/sh", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120)


CRON_LINES = re.findall(r"^    [0-9*]+ \* \* \* \* (cd /srv/backstop && .*)$", (DEPLOY / "README.md").read_text(),
                        re.MULTILINE)
TIMER_COMMAND = documented(r"^ExecStart=(.*)$", (DEPLOY / "backstop-reconcile.service").read_text())


def test_the_deploy_guide_has_cron_lines_for_the_sweep_and_the_reminders():
    assert [line.split()[-3] for line in CRON_LINES] == ["reconcile", "renewal_reminders"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", [*CRON_LINES, TIMER_COMMAND], ids=["cron-reconcile", "cron-reminders", "timer"])
def test_the_documented_sweep_runs_from_an_empty_environment_and_prints_nothing(tmp_path, stripe_emulator, command):
    env_file = production_env_file(tmp_path, stripe_emulator)
    command = command.replace("/etc/backstop/env", str(env_file))
    if command == TIMER_COMMAND:  # systemd gives the unit's Environment= and WorkingDirectory=
        command = f"cd /srv/backstop && BACKSTOP_ENV_FILE={env_file} {command}"

    result = run_as_cron(command, env_file=None)

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_without_the_env_file_the_cron_line_stops_with_one_line_naming_the_variable(tmp_path):
    result = run_as_cron("cd /srv/backstop && .venv/bin/python manage.py reconcile -v 0", env_file=None)

    assert result.returncode == 1
    assert result.stderr == ("Backstop cannot start: SECRET_KEY must be set "
                             "(see the configuration table in README.md).\n")


def test_an_env_file_that_cannot_be_read_stops_start_up_naming_it(tmp_path):
    result = run_as_cron("cd /srv/backstop && .venv/bin/python manage.py check", env_file=tmp_path / "missing.env")

    assert result.returncode == 1
    assert result.stderr == (f"Backstop cannot start: BACKSTOP_ENV_FILE is {tmp_path / 'missing.env'}, "
                             "which cannot be read: No such file or directory.\n")


def test_the_wsgi_app_reads_the_env_file_too(tmp_path):
    env_file = tmp_path / "backstop.env"
    env_file.write_text("SITE_NAME=Acme Notes\n")
    code = ("import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
            "import config.wsgi; from django.conf import settings; print(settings.SITE_NAME)")
    env = {k: v for k, v in os.environ.items() if k != "SITE_NAME"}

    result = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={**env, "DJANGO_SETTINGS_MODULE": "tests.settings",
                                             "BACKSTOP_ENV_FILE": str(env_file)})

    assert result.stdout == "Acme Notes\n", result.stderr


# --- The file's format -----------------------------------------------------------------------

@pytest.fixture
def environ():
    """os.environ put back as it was before the test, whatever the file added (monkeypatch restores only
    the names it touched)."""
    saved = dict(os.environ)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def env_file(tmp_path, environ):
    path = tmp_path / "backstop.env"
    environ["BACKSTOP_ENV_FILE"] = str(path)
    for name in ("BRAND_A", "BRAND_B", "BRAND_C", "BRAND_D"):
        environ.pop(name, None)
    return path


def test_the_env_file_takes_comments_blank_lines_export_and_quotes(env_file):
    env_file.write_text('# a comment\n\nBRAND_A=plain value\nexport BRAND_B="quoted # not a comment"\n'
                        "BRAND_C='single'\nBRAND_D=a=b\n")

    load_env_file()

    assert [os.environ[n] for n in ("BRAND_A", "BRAND_B", "BRAND_C", "BRAND_D")] == [
        "plain value", "quoted # not a comment", "single", "a=b"]


def test_what_the_process_was_given_wins_over_the_env_file(env_file, environ):
    env_file.write_text("BRAND_A=from the file\n")
    environ["BRAND_A"] = "from the command line"

    load_env_file()

    assert os.environ["BRAND_A"] == "from the command line"


def test_a_line_that_is_not_name_equals_value_is_named_by_number_never_shown(env_file):
    env_file.write_text("BRAND_A=ok\nsk_live_secret_pasted_alone\n")

    with pytest.raises(ImproperlyConfigured) as error:
        load_env_file()

    assert str(error.value) == f"BACKSTOP_ENV_FILE {env_file}, line 2: expected NAME=value."


def test_the_documented_example_env_file_reads_cleanly(environ):
    environ["BACKSTOP_ENV_FILE"] = str(DEPLOY / "backstop.env.example")
    example = (DEPLOY / "backstop.env.example").read_text()
    names = re.findall(r"^([A-Z_]+)=", example, re.MULTILINE)
    for name in names:
        environ.pop(name, None)

    load_env_file()

    assert os.environ["SITE_URL"] == "https://shop.example.com"
    assert os.environ["DEFAULT_FROM_EMAIL"] == "Backstop <hello@shop.example.com>"
    assert len(names) > 10
