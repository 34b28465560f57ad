"""The apps depend one way, bottom to top: config < outbox < accounts < billing < support < ops.

A module imports only its own layer or those below, wherever the import is (at the top or inside a
function); only ops, the operational tools, may import the Stripe emulator, and nothing production
loads does. An import inside a function says why on its line or the line above.
"""

import ast
import io
import os
import re
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. outbox may not exist in every checkout: a layer without a directory is simply empty.
LAYERS = ["config", "outbox", "accounts", "billing", "support", "ops"]
RANK = {layer: rank for rank, layer in enumerate(LAYERS)}
PRESENT = [layer for layer in LAYERS if (ROOT / layer).is_dir()]
EMULATOR = "stripe_emulator"
# The root URLconf joins every app's URLs under one roof (ROOT_URLCONF): it is the one module of config
# that names the apps above it. Nothing imports it; Django loads it by name.
COMPOSITION_ROOT = {Path("config/urls.py")}
# The outbox lives in billing until it moves to its own app, outbox/; accounts sends its password
# emails through it until then. The allowance ends by itself once outbox/ exists.
OUTBOX_IN_BILLING = set() if (ROOT / "outbox").is_dir() else {
    (Path("accounts/forms.py"), "billing"), (Path("accounts/forms.py"), "billing.models"),
    (Path("accounts/views.py"), "billing"), (Path("accounts/views.py"), "billing.models")}


def python_files(layer: str):
    return sorted((ROOT / layer).rglob("*.py"))


def imports(path: Path):
    """(module, line, inside a function) for every import in the file, those in functions included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, child, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                found.append((child.module, child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    return found


def imported_modules(path: Path):
    return [module for module, _, _ in imports(path)]


def layer_violations(path: Path, layer: str):
    rank = RANK[layer]
    for module in imported_modules(path):
        top = module.split(".")[0]
        if top == EMULATOR and layer != "ops":
            yield f"{path.relative_to(ROOT)} imports {module} (only ops may)"
        elif top in RANK and RANK[top] > rank and (path.relative_to(ROOT), module) not in OUTBOX_IN_BILLING:
            yield f"{path.relative_to(ROOT)} imports {module} (a layer above {layer})"


def comments_by_line(path: Path) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return {token.start[0]: token.string for token in tokens if token.type == tokenize.COMMENT}


def says_why(comment: str | None) -> bool:
    """A comment with words in it; a bare `# noqa: F401` says nothing."""
    if comment is None:
        return False
    words = re.sub(r"^#\s*(noqa(:\s*[A-Z0-9, ]+)?)?", "", comment)
    return re.search(r"[A-Za-z]", words) is not None


def unexplained_function_imports(path: Path):
    """Imports inside functions with no reason on their lines or on the line above. Consecutive
    imports (no blank line between) share the reason given for the first of them."""
    comments = comments_by_line(path)
    lines = path.read_text().splitlines()
    explained_until = 0  # the last line of an explained run of imports
    nodes = {node.lineno: node for _, node, in_function in imports(path) if in_function}
    for node in (nodes[line] for line in sorted(nodes)):
        above = lines[node.lineno - 2].strip() if node.lineno >= 2 else ""
        explained = (any(says_why(comments.get(line)) for line in range(node.lineno, node.end_lineno + 1))
                     or (above.startswith("#") and says_why(comments.get(node.lineno - 1)))
                     or explained_until == node.lineno - 1)
        if explained:
            explained_until = node.end_lineno
        else:
            yield f"{path.relative_to(ROOT)}:{node.lineno}"


@pytest.mark.parametrize("layer", PRESENT)
def test_every_module_imports_only_its_own_layer_or_those_below(layer):
    offenders = sorted(offence for path in python_files(layer)
                       if path.relative_to(ROOT) not in COMPOSITION_ROOT
                       for offence in layer_violations(path, layer))

    assert offenders == []


@pytest.mark.parametrize("layer", [layer for layer in PRESENT if layer != "ops"])
def test_no_app_but_ops_imports_the_stripe_emulator(layer):
    offenders = sorted(f"{path.relative_to(ROOT)} imports {module}" for path in python_files(layer)
                       for module in imported_modules(path) if module.split(".")[0] == EMULATOR)

    assert offenders == []


@pytest.mark.parametrize("layer", PRESENT)
def test_every_import_inside_a_function_says_why(layer):
    offenders = [offence for path in python_files(layer) for offence in unexplained_function_imports(path)]

    assert offenders == []


def test_every_import_is_seen_including_those_inside_functions(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("def later():\n    from billing import services\n    import support.models\n")

    assert sorted(imported_modules(source)) == ["billing", "support.models"]


def test_an_import_above_its_layer_is_found_inside_a_function_whatever_its_comment_says(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    source = tmp_path / "example.py"
    source.write_text("def later():\n    from billing import services  # needed here\n")

    assert list(layer_violations(source, "accounts")) == ["example.py imports billing (a layer above accounts)"]


def test_an_import_inside_a_function_without_a_reason_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    source = tmp_path / "example.py"
    source.write_text("def later():\n    from billing import services  # noqa: F401\n\n    import re\n")

    assert list(unexplained_function_imports(source)) == ["example.py:2", "example.py:4"]


def test_a_reason_on_the_line_above_covers_the_imports_right_under_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    source = tmp_path / "example.py"
    source.write_text("def ready():\n    # Models load only once apps are ready.\n"
                      "    from billing import models\n    from billing import signals\n")

    assert list(unexplained_function_imports(source)) == []


# What a production process loads: the WSGI application, every URLconf, and every module of the
# project's apps and config except the operational tools (ops) and the tests. Run in a fresh
# interpreter, so that nothing this test session imported (the tests load the emulator) counts.
PRODUCTION_IMPORTS = textwrap.dedent("""
    import pkgutil, sys
    from importlib import import_module
    from pathlib import Path

    from config.wsgi import application  # sets Django up, as gunicorn does
    from django.urls import get_resolver

    get_resolver().url_patterns  # the root URLconf and every URLconf it includes
    root = Path.cwd()
    for package in ["config", *sys.argv[1:]]:
        if not (root / package).is_dir():
            continue
        import_module(package)
        for module in pkgutil.walk_packages([str(root / package)], package + "."):
            import_module(module.name)
    print(" ".join(sorted(name for name in sys.modules if name.split(".")[0] == "stripe_emulator")))
""")


def modules_loaded_from_the_emulator(*packages) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PRODUCTION_IMPORTS, *packages], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_what_production_loads_never_imports_the_stripe_emulator():
    apps = [layer for layer in LAYERS if layer not in ("config", "ops")]

    assert modules_loaded_from_the_emulator(*apps) == []


def test_the_fire_drill_in_ops_does_load_the_emulator_so_the_check_above_can_see_it():
    assert "stripe_emulator" in modules_loaded_from_the_emulator("ops")


def test_only_billings_history_functions_write_order_events():
    # Every event gets its kind and facts in one place (billing/services/history.py); other modules
    # may save the unsaved events those functions return, never build one themselves.
    offenders = sorted(str(path.relative_to(ROOT))
                       for app in ("billing", "accounts", "support")
                       for path in (ROOT / app).rglob("*.py")
                       if "migrations" not in path.parts and path != ROOT / "billing/services/history.py"
                       and re.search(r"OrderEvent\((?!models\.Model)|OrderEvent\.objects\.create", path.read_text()))

    assert offenders == []
