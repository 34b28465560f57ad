"""ACCESS_WEBHOOK_URL / ACCESS_WEBHOOK_SECRET are checked when the process starts, not at the first
delivery: a wrong secret would otherwise surface as every product rejecting every event."""

import base64

import pytest

from tests.config.test_settings_from_env import run_manage

GOOD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_a_webhook_url_with_a_standard_webhooks_secret_starts():
    result = run_manage("check", env_overrides={"ACCESS_WEBHOOK_URL": "https://product.example.com/hooks/",
                                                "ACCESS_WEBHOOK_SECRET": GOOD_SECRET})

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", ["", "whsec_", "not-whsec_" + GOOD_SECRET[6:], "whsec_not base64!",
                                    "whsec_" + base64.b64encode(b"short").decode()])
def test_a_webhook_url_without_a_usable_secret_stops_start_up_naming_the_secret(secret):
    result = run_manage("check", env_overrides={"ACCESS_WEBHOOK_URL": "https://product.example.com/hooks/",
                                                "ACCESS_WEBHOOK_SECRET": secret})

    assert result.returncode == 1
    assert "ACCESS_WEBHOOK_SECRET" in result.stderr


def test_a_webhook_url_that_is_not_http_stops_start_up():
    result = run_manage("check", env_overrides={"ACCESS_WEBHOOK_URL": "file:///etc/passwd",
                                                "ACCESS_WEBHOOK_SECRET": GOOD_SECRET})

    assert result.returncode == 1
    assert "ACCESS_WEBHOOK_URL" in result.stderr
