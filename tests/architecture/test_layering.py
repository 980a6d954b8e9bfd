"""The package's own imports, read with `ast` (nothing is imported): stages only look down.

Every `geolocate` import counts, also the lazy ones inside functions: a lazy import still ties
the two modules together, it only moves when the cost is paid.
"""

from __future__ import annotations

import ast
from pathlib import Path

import geolocate

PACKAGE = Path(geolocate.__file__).parent

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS = (
    # the floor; `data.images` is the one "does this photo decode?" every stage asks, `files` the
    # one "is this a regular file inside its root?", `manifest` the photo table's contract
    ("geolocate", "errors", "console", "geo", "schemas", "atomic", "config", "paths", "lock", "files", "manifest", "data.images",
     "device"),
    ("acquire", "synth"),  # photos in
    ("cells", "split"),  # labels and splits
    ("data", "models", "losses"),  # what training reads and builds
    ("artifacts",),  # run dirs, checkpoints, export, freeze
    ("evaluate",),  # metrics, calibration, report (training reports with them)
    ("train",),  # fit, sessions, v1 runs
    ("inference",),  # the v1 predictor
    ("scout",),  # the second system's wing
    ("systems",),  # which system a run is
    ("api",),  # `Geolocator`: the one seam every front end (predict, serve) calls
    ("ops",),  # batch, demo, clean-raw
    ("serve",),  # the local page and JSON API over one loaded model
    ("cli", "__main__"),  # commands
)
# Registries import, once, the tables that register into them: the model zoo, the US city catalog.
SELF_REGISTRATION = {frozenset({"geolocate.models.registry", "geolocate.models.zoo"}),
                     frozenset({"geolocate.acquire.catalog", "geolocate.acquire.catalog_us"})}
# `geolocate.__getattr__` hands out the API on first use (`from geolocate import Geolocator`): a
# facade over the top that nothing below calls, not a dependency of the floor.
FACADE = {"geolocate": {"geolocate.api"}}


def _module_name(path: Path) -> str:
    parts = ["geolocate", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every geolocate module `path` imports, resolved to a module (or package) name."""
    return _imports_of_text(path.read_text(encoding="utf-8"), path)


def _imports_of_text(text: str, path: Path) -> set[str]:
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            found |= {f"{module}.{a.name}" for a in node.names if _exists(f"{module}.{a.name}")}
    return {m for m in found if m == "geolocate" or m.startswith("geolocate.")}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    graph = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}
    return {m: imports - FACADE.get(m, set()) for m, imports in graph.items()}


def _layer(module: str) -> int:
    """The layer of the longest LAYERS entry that names `module` or a package above it."""
    parts = module.split(".")[1:] or ["geolocate"]
    for n in range(len(parts), 0, -1):
        for i, names in enumerate(LAYERS):
            if ".".join(parts[:n]) in names:
                return i
    raise AssertionError(f"{module}: in no layer; add its package to LAYERS")


def test_every_module_has_a_layer():
    for module in _graph():
        _layer(module)


def test_no_stage_imports_a_higher_one():
    upward = [f"{m} → {i}" for m, imports in _graph().items() for i in imports if _layer(i) > _layer(m)]
    assert upward == []


def test_only_the_cli_and_the_systems_seam_import_the_scout_wing():
    outside = [f"{m} → {i}" for m, imports in _graph().items() for i in imports
               if i.startswith("geolocate.scout") and not m.startswith(("geolocate.scout", "geolocate.cli", "geolocate.systems"))]
    assert outside == []


def test_no_import_loop_but_the_registrys_self_registration():
    graph = _graph()
    loops = [component for component in _strongly_connected(graph) if len(component) > 1]
    unexplained = [sorted(c) for c in loops if not _is_self_registration(c, graph)]
    assert unexplained == []


def _is_self_registration(component: set[str], graph: dict[str, set[str]]) -> bool:
    """The loop is only the registry and the modules registering into it."""
    return frozenset(component) in SELF_REGISTRATION


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm over module names (packages included: `from pkg import x` reads its __init__)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            out.append(component)

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checks_can_fail(tmp_path):
    """A lazy upward import is seen, relative imports resolve, and a loop is found."""
    module = PACKAGE / "train" / "lazy.py"  # only parsed: `_imports` reads the text it is given
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from geolocate.scout.train import run_train_scout_sniper\n    from ..scout import bundle\n")
    found = _imports_of_text(source.read_text(), module)
    assert {"geolocate.scout.train", "geolocate.scout.bundle"} <= found
    assert all(_layer(i) > _layer("geolocate.train.lazy") for i in found)
    assert [c for c in _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}}) if len(c) > 1] == [{"a", "b", "c"}]


def test_inference_imports_nothing_from_train():
    """Predicting needs no trainer: device choice lives below both (`geolocate.device`)."""
    from_train = [f"{m} → {i}" for m, imports in _graph().items() for i in imports
                  if m.startswith("geolocate.inference") and i.startswith("geolocate.train")]
    assert from_train == []
