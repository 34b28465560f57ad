"""Apps depend one way: support builds on billing and accounts; they never import support."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


@pytest.mark.parametrize("app", ["billing", "accounts"])
def test_an_app_below_support_never_imports_support(app):
    offenders = sorted(f"{path.relative_to(ROOT)} imports {module}"
                       for path in (ROOT / app).rglob("*.py")
                       for module in imported_modules(path)
                       if module == "support" or module.startswith("support."))

    assert offenders == []


# The modules of accounts that own access (accounts/access.py and what was built on it for the
# product): below billing as well, so billing can call them and they can be lifted out on their own.
ACCESS_MODULES = ["access.py", "api.py", "api_keys.py", "decorators.py", "product.py", "schedules.py", "tasks.py",
                  "webhooks.py", "management/commands/access_api_key.py"]


@pytest.mark.parametrize("module", ACCESS_MODULES)
def test_the_access_modules_import_neither_billing_nor_support(module):
    path = ROOT / "accounts" / module
    offenders = sorted(module for module in imported_modules(path)
                       if module.split(".")[0] in ("billing", "support"))

    assert offenders == []


def test_every_import_is_seen_including_those_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("def later():\n    from billing import services\n    import support.models\n")

    assert sorted(imported_modules(source)) == ["billing", "support.models"]


def test_only_billings_history_functions_write_order_events():
    # Every event gets its kind and facts in one place (billing/services/history.py); other modules
    # may save the unsaved events those functions return, never build one themselves.
    offenders = sorted(str(path.relative_to(ROOT))
                       for app in ("billing", "accounts", "support")
                       for path in (ROOT / app).rglob("*.py")
                       if "migrations" not in path.parts and path != ROOT / "billing/services/history.py"
                       and re.search(r"OrderEvent\((?!models\.Model)|OrderEvent\.objects\.create", path.read_text()))

    assert offenders == []
