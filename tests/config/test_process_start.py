"""What a process pays at start: every web and task worker, cron command and test server imports
the apps and their URLs, so a library only one page or one setting needs is imported when first
used (fpdf2 with fontTools and Pillow for the receipt's PDF, a third of a second; Sentry's SDK,
which imports gevent where it is installed, a fifth)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STARTED = """
import django, sys
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
print(" ".join(name for name in ("fpdf", "sentry_sdk", "gevent") if name in sys.modules) or "none")
"""


def modules_after_start(env_overrides=None) -> str:
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": "postgres://backstop@127.0.0.1:1/backstop", **(env_overrides or {})}
    result = subprocess.run([sys.executable, "-c", STARTED], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_process_starts_without_the_pdf_library_or_sentry():
    assert modules_after_start() == "none"
