"""Apps depend one way: support builds on billing and accounts; they never import support."""

import ast
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
