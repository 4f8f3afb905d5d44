"""The import contract of docs/architecture.md, checked on the source (pure ``ast``, no import of posevid: < 1 s).

Layers, top to bottom; a module may import its own package and any package of a LOWER layer, never a higher one:

    commands, cli, app, batch, __main__   (entry points)
    tasks
    pipelines, densepose, pose, data, eval, training, wan
    models
    video, utils
    errors, posevid (the package root: its version)

Every ``import posevid.X`` / ``from posevid.X import ...`` counts, at module level and inside functions (a lazy import
is still a dependency). Packages of one layer may import each other except in the entry-point layer; below it the
graph between packages of one layer must have no cycle. Exceptions go in ``EXCEPTIONS`` with their reason. A private
name (``_name``) of one module is never imported by another (:func:`private_imports`): what others use is public.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "posevid"

LAYERS: list[tuple[str, ...]] = [
    ("commands", "cli", "app", "batch", "__main__"),
    ("tasks",),
    ("pipelines", "densepose", "pose", "data", "eval", "training", "wan"),
    ("models",),
    ("video", "utils"),
    ("errors", "posevid"),
]
RANK = {package: len(LAYERS) - i for i, layer in enumerate(LAYERS) for package in layer}
ENTRY_POINTS = set(LAYERS[0])

EXCEPTIONS: dict[tuple[str, str], str] = {}
"""``(importing module, imported package) -> reason`` for an import the layers forbid. Empty: there is none."""


def _package(module: str) -> str:
    """``posevid.pose.extract`` -> ``pose``; ``posevid.cli`` -> ``cli``; ``posevid`` -> ``posevid``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "posevid"


def _module_name(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = SRC) -> list[tuple[str, int]]:
    """``(imported posevid module, line)`` for every import statement of the file, at any depth."""
    module = _module_name(path, root)
    package_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package_parts[: len(package_parts) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "posevid":  # from posevid import X: X may be a subpackage
                found += [(f"posevid.{alias.name}" if (root / alias.name).exists() or (root / f"{alias.name}.py").exists() else "posevid",
                           node.lineno) for alias in node.names]  # fmt: skip
            else:
                found.append((target, node.lineno))
    return [(name, line) for name, line in found if name == "posevid" or name.startswith("posevid.")]


def package_edges(root: Path = SRC) -> dict[tuple[str, str], list[str]]:
    """``(package, imported package) -> ["module:line", ...]`` for every import between two different packages."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        for target, line in _imports(path, root):
            imported = _package(target)
            if imported != _package(module):
                edges[(_package(module), imported)].append(f"{module}:{line}")
    return dict(edges)


def violations(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    """Every import that goes up a layer, reaches a package missing from LAYERS, or closes a cycle within a layer."""
    problems = []
    for (source, imported), where in sorted(edges.items()):
        if source not in RANK or imported not in RANK:
            unknown = source if source not in RANK else imported
            problems.append(f"package {unknown!r} is in no layer (add it to LAYERS and docs/architecture.md): {where[0]}")
            continue
        upward = RANK[imported] > RANK[source]
        for spot in where:
            if upward and (spot.split(":")[0], imported) not in EXCEPTIONS:
                problems.append(f"{spot} imports posevid.{imported}: {source} may not import a higher layer")
    for layer in LAYERS[1:]:
        graph = {p: {q for (s, q) in edges if s == p and q in layer and q != p} for p in layer}
        for cycle in _cycles(graph):
            hops = " -> ".join(cycle + [cycle[0]])
            spots = "; ".join(edges[(a, b)][0] for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True))
            problems.append(f"import cycle between packages of one layer: {hops} ({spots})")
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one package (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_import_goes_down_the_layers_and_no_layer_has_a_cycle():
    problems = violations(package_edges())
    assert not problems, "import contract broken (docs/architecture.md, Layers):\n" + "\n".join(problems)


def test_every_package_is_in_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    packages |= {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    assert packages - set(RANK) == set(), "add the new package to LAYERS here and to docs/architecture.md"


def test_exceptions_are_still_needed():
    edges = package_edges()
    spots = {(spot.split(":")[0], imported) for (_, imported), where in edges.items() for spot in where}
    assert set(EXCEPTIONS) <= spots, "an exception in EXCEPTIONS is no longer used: remove it"


# ------------------------------------------------------------------------------------------- the checker itself
def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "posevid" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "posevid"


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"models/tiny.py": "def f():\n    from posevid.commands import _flags\n"}, "models/tiny"),  # lazy import, upward
        ({"utils/x.py": "import posevid.tasks.common\n"}, "may not import a higher layer"),
        ({"pose/a.py": "from posevid.data import b\n", "data/b.py": "from ..pose import a\n"}, "cycle"),  # relative import
        ({"newpkg/__init__.py": "from posevid import errors\n"}, "in no layer"),
    ],
)
def test_the_checker_catches_an_upward_import_a_cycle_and_an_unknown_package(tmp_path, files, expected):
    root = _write(tmp_path, {"__init__.py": "", **files})
    edges = package_edges(root)
    problems = violations(edges)
    assert problems and any(expected.replace("/", ".") in p or expected in p for p in problems), problems


def test_the_checker_accepts_downward_imports(tmp_path):
    root = _write(tmp_path, {"__init__.py": "", "tasks/t.py": "from posevid.pipelines import p\nimport posevid.utils.outputs\n",
                             "pipelines/p.py": "from posevid.models import m\n", "commands/c.py": "from posevid.batch import d\n",
                             "batch/d.py": "from posevid.commands import c\n"})  # fmt: skip
    assert violations(package_edges(root)) == []


def private_imports(root: Path = SRC) -> list[str]:
    """``module:line name`` for every ``from posevid.X import _name`` where ``_name`` is a function, class or value of
    another module (a private module of one's own package, ``from posevid.commands import _flags``, is fine)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("posevid")):
                continue
            folder = root.joinpath(*node.module.split(".")[1:])
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and not ((folder / f"{alias.name}.py").is_file() or (folder / alias.name / "__init__.py").is_file()):
                    found.append(f"{_module_name(path, root)}:{node.lineno} {node.module}.{alias.name}")
    return found


def test_no_private_name_is_imported_from_another_module():
    assert private_imports() == [], "make the name public (it is used elsewhere) or move it"


def test_the_private_import_check_catches_one(tmp_path):
    root = _write(tmp_path, {"__init__.py": "", "wan/m.py": "from posevid.pose.estimators.mediapipe_pose import _quiet\n",
                             "commands/c.py": "from posevid.commands import _flags\n", "commands/_flags.py": ""})  # fmt: skip
    assert private_imports(root) == ["posevid.wan.m:1 posevid.pose.estimators.mediapipe_pose._quiet"]
