"""The import rules of the library's layers (DESIGN.md, "Layers"): data -> models -> measure -> plots.

Every module under src/accelbook is parsed with ``ast`` (imports inside functions count too), each
import becomes an edge to the accelbook module or the external top-level package it names, and the
rules are checked on that graph. ``from accelbook.x import y`` is an edge to ``accelbook.x.y`` when
``y`` is a submodule, else to ``accelbook.x`` (a package's ``__init__``).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"


def module_name(path: pathlib.Path, root: pathlib.Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: pathlib.Path = SRC) -> dict[str, pathlib.Path]:
    """Every module of the accelbook package: dotted name -> file."""
    return {module_name(p, root): p for p in sorted((root / "accelbook").rglob("*.py"))}


def imports(name: str, path: pathlib.Path, known: set[str]) -> set[tuple[str, bool]]:
    """(target, at_module_level) for every import in the module ``name``: an accelbook module
    (resolved to the deepest one in ``known``) or the dotted name of an external module."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    top_level = {id(node) for node in tree.body}
    # an import under a top-level `if`/`try` (say a tomllib fallback) still runs at import time
    for node in tree.body:
        if isinstance(node, (ast.If, ast.Try)):
            top_level |= {id(n) for n in ast.walk(node)}
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in known else base)
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "accelbook":
                while target not in known and "." in target:  # `import accelbook.x.y.z` of a name
                    target = target.rpartition(".")[0]
            out.add((target, id(node) in top_level))
    return out


def import_graph(root: pathlib.Path = SRC) -> dict[str, set[tuple[str, bool]]]:
    mods = modules(root)
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def _under(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


# (importing modules, forbidden targets, module-level imports only?)
RULES = [
    ("accelbook.models", ("jax", "jaxlib", "matplotlib", "accelbook.measure", "accelbook.plots",
                          "accelbook.device", "accelbook.explore"), False),
    ("accelbook.measure", ("matplotlib", "accelbook.plots", "accelbook.explore"), False),
    ("accelbook.plots", ("jax", "jaxlib", "accelbook.measure"), False),
    ("accelbook.device", ("accelbook.measure", "accelbook.plots", "matplotlib"), False),
    ("accelbook.device", ("jax", "jaxlib"), True),  # detection imports JAX only when it is called
]


def violations(graph: dict[str, set[tuple[str, bool]]]) -> list[str]:
    """Edges that break one of :data:`RULES`, as readable lines."""
    out = []
    for source, edges in sorted(graph.items()):
        for layer, forbidden, module_level_only in RULES:
            if not _under(source, layer):
                continue
            for target, at_top in sorted(edges):
                if module_level_only and not at_top:
                    continue
                if any(_under(target, f) for f in forbidden):
                    out.append(f"{source} imports {target}")
    return out


def cycles(graph: dict[str, set[tuple[str, bool]]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or with a self-edge (Tarjan)."""
    edges = {m: sorted({t for t, _ in ts if t in graph}) for m, ts in graph.items()}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


GRAPH = import_graph()


def test_the_layers_exist_and_every_module_parses():
    for package in ("accelbook.models", "accelbook.measure", "accelbook.plots"):
        assert package in GRAPH and any(m.startswith(package + ".") for m in GRAPH), package
    assert {"accelbook.device", "accelbook.specs", "accelbook.units", "accelbook.checks"} <= set(GRAPH)


def test_each_layer_imports_only_what_it_may():
    assert violations(GRAPH) == []


def test_no_two_modules_import_each_other():
    assert cycles(GRAPH) == []


def test_submodules_import_their_siblings_by_full_path_not_through_the_package():
    """A submodule that imports its own package's __init__ closes a cycle (the __init__ imports it)."""
    for source, edges in GRAPH.items():
        package = source.rpartition(".")[0]
        if package != "accelbook":
            assert (package, True) not in edges and (package, False) not in edges, source


# ------------------------------------------------------------------------- the checker itself


def test_the_checker_reports_a_model_that_imports_jax_or_measure():
    graph = {"accelbook.models.fake": {("numpy", True), ("jax.numpy", False)},
             "accelbook.models.other": {("accelbook.measure.harness", True)},
             "accelbook.measure.harness": set()}
    assert violations(graph) == ["accelbook.models.fake imports jax.numpy",
                                 "accelbook.models.other imports accelbook.measure.harness"]


def test_the_checker_reports_plots_importing_jax_and_measure_importing_matplotlib():
    graph = {"accelbook.plots.fake": {("jax", False)}, "accelbook.measure.fake": {("matplotlib.pyplot", True)},
             "accelbook.device": {("jax", False), ("accelbook.measure", False)}}
    assert violations(graph) == ["accelbook.device imports accelbook.measure",
                                 "accelbook.measure.fake imports matplotlib.pyplot",
                                 "accelbook.plots.fake imports jax"]
    assert violations({"accelbook.device": {("jax", True)}}) == ["accelbook.device imports jax"]


def test_the_checker_finds_cycles():
    graph = {"accelbook.measure": {("accelbook.measure.harness", True)},
             "accelbook.measure.harness": set(),
             "accelbook.measure.sweeps": {("accelbook.measure", True)},  # through the package
             "accelbook.a": {("accelbook.b", False)}, "accelbook.b": {("accelbook.a", True)}}
    graph["accelbook.measure"].add(("accelbook.measure.sweeps", True))
    assert cycles(graph) == [["accelbook.a", "accelbook.b"], ["accelbook.measure", "accelbook.measure.sweeps"]]
    assert cycles({"accelbook.x": {("accelbook.x", True)}}) == [["accelbook.x"]]


def test_the_parser_resolves_relative_imports_and_submodules(tmp_path):
    pkg = tmp_path / "accelbook"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "specs.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("from . import roofline\n")
    (pkg / "models" / "roofline.py").write_text("from ..specs import chips\nfrom . import gpu\n")
    (pkg / "models" / "gpu.py").write_text(
        "import numpy as np\n\ndef f():\n    from accelbook.models import roofline\n"
        "    import matplotlib.pyplot as plt\n")
    graph = import_graph(tmp_path)
    assert graph["accelbook.models"] == {("accelbook.models.roofline", True)}
    assert graph["accelbook.models.roofline"] == {("accelbook.specs", True), ("accelbook.models.gpu", True)}
    assert graph["accelbook.models.gpu"] == {("numpy", True), ("accelbook.models.roofline", False),
                                             ("matplotlib.pyplot", False)}
    assert violations(graph) == ["accelbook.models.gpu imports matplotlib.pyplot"]
    assert cycles(graph) == [["accelbook.models.gpu", "accelbook.models.roofline"]]


@pytest.mark.parametrize("layer", ["accelbook.models", "accelbook.measure", "accelbook.plots"])
def test_every_module_says_what_it_holds_and_where_it_is_taught(layer):
    for name, path in modules().items():
        if _under(name, layer) and name != layer:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
            assert doc and "Taught in" in doc, f"{name}: module docstring must name its chapter"
