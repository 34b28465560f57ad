"""The outbox sits beneath the apps: it imports none of them, at any level, and accounts owes its
password link through the outbox alone."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS_ABOVE = ("accounts", "billing", "support", "ops")


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_the_outbox_imports_no_app_above_it_even_inside_functions():
    offenders = sorted(f"{path.relative_to(ROOT)} imports {module}"
                       for path in (ROOT / "outbox").rglob("*.py")
                       for module in imported_modules(path)
                       if module.split(".")[0] in APPS_ABOVE)

    assert offenders == []


@pytest.mark.parametrize("module", ["apps.py", "emails.py", "forms.py"])
def test_accounts_owes_its_password_link_without_billing(module):
    offenders = sorted(module for module in imported_modules(ROOT / "accounts" / module)
                       if module.split(".")[0] in ("billing", "support"))

    assert offenders == []
