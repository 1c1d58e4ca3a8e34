"""The package's layers only point down: a module imports from its own layer or the ones below.

    base (settings, sqlbuild, retry, loopback, phones) → store → shopify → warehouse → segments → audience
    → defs → fleet → cli

so that the folders tell the flow of the data, and a change low down never needs one higher up.
Imports under TYPE_CHECKING count too: they are dependencies all the same.
"""

import ast
from pathlib import Path

from pipeline.settings import PROJECT_DIR

LAYERS = ["base", "store", "shopify", "warehouse", "segments", "audience", "defs", "fleet", "cli"]
TOP_LEVEL = {  # modules directly under pipeline/, by layer
    "settings": "base",
    "sqlbuild": "base",
    "retry": "base",
    "loopback": "base",
    "phones": "base",
    "definitions": "defs",
    "cli": "cli",
    "progress": "cli",
}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "pipeline" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else TOP_LEVEL[parts[1]]


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.lineno, node.module)] + [
                (node.lineno, f"{node.module}.{a.name}")
                for a in node.names
                if f"{node.module}.{a.name}".count(".") == 2
            ]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def test_no_import_points_up_a_layer() -> None:
    upward = []
    for path in sorted((PROJECT_DIR / "pipeline").rglob("*.py")):
        module = ".".join(path.relative_to(PROJECT_DIR).with_suffix("").parts).removesuffix(".__init__")
        own = layer_of(module)
        for line, imported in imports_of(path):
            target = layer_of(imported)
            if own and target and LAYERS.index(target) > LAYERS.index(own):
                upward.append(f"{path.relative_to(PROJECT_DIR)}:{line}: {own} imports {imported} ({target})")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_every_module_and_package_has_a_layer() -> None:
    for path in (PROJECT_DIR / "pipeline").iterdir():
        if path.stem not in ("__init__", "__pycache__") and (path.suffix == ".py" or path.is_dir()):
            assert path.stem in LAYERS or path.stem in TOP_LEVEL, f"{path}: add it to TOP_LEVEL in {__file__}"
