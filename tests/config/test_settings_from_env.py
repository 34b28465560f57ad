"""The process refuses to start on missing or malformed production settings, naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-8f3k2l0qz9x7c6v5b4n3m2",
    "ALLOWED_HOSTS": "shop.example.com",
    "SITE_URL": "https://shop.example.com",
    "DATABASE_URL": "postgres://backstop@db.example.com:5432/backstop",
    "STRIPE_SECRET_KEY": "sk_live_51ProductionKey00000000000000000",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_51ProductionKey00000000000000000",
    "STRIPE_LIVE_MODE": "true",
    "STRIPE_WEBHOOK_SECRET": "whsec_production",
    "STRIPE_WEBHOOK_UUID": "5f0c2d8e-9b1a-4c3f-8e7d-6a5b4c3d2e1f",
    "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
    "POSTMARK_SERVER_TOKEN": "server-token",
    "ANYMAIL_WEBHOOK_SECRET": "postmark:a-long-random-webhook-secret",
    "TRUST_X_FORWARDED_PROTO": "true",
}


def run_manage(*args, env_overrides=None, drop=()):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DJANGO_", "SECRET_KEY"))}
    for key in ("DATABASE_URL", "ALLOWED_HOSTS", "SITE_URL", "EMAIL_BACKEND", "HTTPS"):
        env.pop(key, None)
    env.update(PRODUCTION_ENV)
    env.update(env_overrides or {})
    for key in drop:
        env.pop(key, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_production_settings_pass_the_deploy_check():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "variable",
    ["SECRET_KEY", "ALLOWED_HOSTS", "SITE_URL", "STRIPE_SECRET_KEY", "STRIPE_PUBLISHABLE_KEY",
     "EMAIL_BACKEND", "POSTMARK_SERVER_TOKEN", "STRIPE_WEBHOOK_UUID", "ANYMAIL_WEBHOOK_SECRET"],
)
def test_a_missing_production_variable_stops_start_up_with_one_line_naming_it(variable):
    result = run_manage("check", drop=[variable])

    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("Backstop cannot start:")
    assert variable in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "not-a-database"),
        ("DJANGO_DEBUG", "maybe"),
        ("SITE_URL", "shop.example.com"),
        ("STRIPE_SECRET_KEY", "sk_test_51TestKeyInLiveMode000000000000000"),
        ("Q_WORKERS", "two"),
        ("STRIPE_WEBHOOK_UUID", "my-webhook"),
        ("SUPPORT_TIME_ZONE", "Mars/Olympus"),
    ],
)
def test_a_malformed_variable_stops_start_up_with_one_line_naming_it(variable, value):
    result = run_manage("check", env_overrides={variable: value})

    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert variable in result.stderr


def test_a_missing_or_malformed_webhook_uuid_is_refused_with_how_to_make_one():
    missing = run_manage("check", drop=["STRIPE_WEBHOOK_UUID"])
    malformed = run_manage("check", env_overrides={"STRIPE_WEBHOOK_UUID": "my-webhook"})

    for result in (missing, malformed):
        assert 'python -c "import uuid; print(uuid.uuid4())"' in result.stderr


def test_without_a_webhook_secret_production_needs_no_webhook_uuid():
    result = run_manage("check", drop=["STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_UUID"])

    assert result.returncode == 0, result.stderr


def test_the_webhook_uuid_is_normalised_to_the_form_the_url_matches():
    result = run_manage(
        "shell", "--no-imports", "-c", "from django.conf import settings; print(settings.STRIPE_WEBHOOK_UUID)",
        env_overrides={"STRIPE_WEBHOOK_UUID": "{5F0C2D8E-9B1A-4C3F-8E7D-6A5B4C3D2E1F}"},
    )

    assert result.stdout.strip() == "5f0c2d8e-9b1a-4c3f-8e7d-6a5b4c3d2e1f", result.stderr
