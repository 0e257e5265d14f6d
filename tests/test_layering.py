"""Imports run one way: the layer table below, no import cycle, the library never imports the zoo or the CLI.

Every ``.py`` file of ``keras_deconv/``, ``zoo/`` (installed as
``keras_deconv.zoo``) and ``cli/`` (``keras_deconv.cli``) is parsed with
:mod:`ast`; every ``import`` counts, also those inside functions (lazy
imports still tie the modules together). No module is imported.
"""

import ast
import collections
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Source folders and the package each one installs as (setup.cfg ``package_dir``).
SOURCES = {"keras_deconv": REPO / "keras_deconv", "keras_deconv.zoo": REPO / "zoo", "keras_deconv.cli": REPO / "cli"}

#: The layers, lowest first. A module may import modules of its own layer or of a lower one, never of a
#: higher one. A module belongs to the entry whose prefix matches its dotted name the longest way.
LAYERS = (
    # The package itself: __version__ and lazy access to its submodules (no import of its own).
    ("root", ("keras_deconv",)),
    # Keras layers; CaffePreprocessing (keras_deconv.preprocessing) is the first layer of every network.
    ("layers", ("keras_deconv.layers", "keras_deconv.preprocessing")),
    ("models", ("keras_deconv.models",)),
    # What builds on the networks without running a workflow, and the small helpers.
    ("data and helpers", ("keras_deconv.caffe", "keras_deconv.datasets", "keras_deconv.metrics", "keras_deconv.pipelines",
                          "keras_deconv.images", "keras_deconv.viz", "keras_deconv.crf", "keras_deconv._atomic",
                          "keras_deconv._platform", "keras_deconv.progress")),
    # Workflows: handed models, class names and settings; they never resolve a zoo name.
    ("workflows", ("keras_deconv.export", "keras_deconv.evaluation", "keras_deconv.training", "keras_deconv.lite",
                   "keras_deconv.switch_agreement")),
    ("zoo", ("keras_deconv.zoo",)),
    ("cli", ("keras_deconv.cli",)),
)
LAYER_INDEX = {name: index for index, (name, _) in enumerate(LAYERS)}

Import = collections.namedtuple("Import", "importer target file line statement")


def _modules():
    """``{dotted module name: path}`` of every source file."""
    modules = {}
    for package, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if package == "keras_deconv" and parts[0] in ("zoo", "cli"):
                continue  # not a source folder of its own (the installed copies live in zoo/ and cli/)
            name = ".".join((package, *parts[:-1], *([] if parts[-1] == "__init__" else [parts[-1]])))
            modules[name] = path
    return modules


MODULES = _modules()


def _is_package(module):
    return MODULES[module].name == "__init__.py"


def _statement(node):
    return ast.unparse(node).splitlines()[0]


def _imports():
    """Every import of a project module, as :class:`Import` (target: the module it loads)."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolved against the importing module's package
                    package = module.split(".") if _is_package(module) else module.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join(package + ([base] if base else []))
                # ``from package import submodule`` loads the submodule; ``from module import name`` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
            for target in dict.fromkeys(targets):
                if target == "keras_deconv" or target.startswith("keras_deconv."):
                    found.append(Import(module, target, path.relative_to(REPO), node.lineno, _statement(node)))
    return found


IMPORTS = _imports()


def _layer(module):
    """Name of the layer of ``module`` (longest matching prefix), or None."""
    best = None
    for name, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or (prefix != "keras_deconv" and module.startswith(prefix + ".")):
                if best is None or len(prefix) > len(best[1]):
                    best = (name, prefix)
    return best and best[0]


def _describe(imports):
    return "\n".join(f"  {i.file}:{i.line}: {i.statement}   ({i.importer} -> {i.target})" for i in imports)


def test_every_module_has_a_layer():
    missing = sorted(module for module in MODULES if _layer(module) is None)
    assert not missing, f"Modules in no layer: {missing}. Add their package to LAYERS in tests/test_layering.py."


def test_every_project_import_names_an_existing_module():
    unknown = [i for i in IMPORTS if i.target not in MODULES]
    assert not unknown, "Imports of modules that do not exist:\n" + _describe(unknown)


def test_imports_respect_the_layers():
    upward = [i for i in IMPORTS if i.target in MODULES and LAYER_INDEX[_layer(i.target)] > LAYER_INDEX[_layer(i.importer)]]
    lines = [f"{line}  [{_layer(i.importer)} imports {_layer(i.target)}]" for i, line in zip(upward, _describe(upward).splitlines())]
    order = " -> ".join(name for name, _ in LAYERS)
    assert not upward, f"Imports against the layer order ({order}):\n" + "\n".join(lines)


def test_the_library_never_imports_the_zoo_or_the_cli():
    offending = [i for i in IMPORTS if not i.importer.startswith(("keras_deconv.zoo", "keras_deconv.cli"))
                 and i.target.startswith(("keras_deconv.zoo", "keras_deconv.cli"))]
    assert not offending, "keras_deconv/ imports the zoo or the CLI (hand models and names down instead):\n" + _describe(offending)


def _graph():
    """``{module: {module it depends on: [Import, ...]}}``.

    Importing ``a.b.c`` also runs ``a/b/__init__.py`` (unless the importer is inside ``a.b``, whose
    ``__init__`` is then already running), so the parent packages count as dependencies too.
    The package root imports nothing and is left out.
    """
    graph = collections.defaultdict(lambda: collections.defaultdict(list))
    for i in IMPORTS:
        if i.target not in MODULES:
            continue
        parts = i.target.split(".")
        for depth in range(2, len(parts) + 1):
            dependency = ".".join(parts[:depth])
            inside = i.importer == dependency or i.importer.startswith(dependency + ".")
            if dependency in MODULES and (dependency == i.target or not inside) and dependency != i.importer:
                graph[i.importer][dependency].append(i)
    return graph


def _strongly_connected(graph):
    """Tarjan's algorithm (iterative): the components of more than one module."""
    index, low, stack, on_stack, components, counter = {}, {}, [], set(), [], [0]
    for start in sorted(set(graph) | {t for targets in graph.values() for t in targets}):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, {})))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def _shortest_cycle(graph, component):
    """One shortest cycle through the component's first module, as a list of modules (first = last)."""
    start, members = component[0], set(component)
    parents, queue = {}, collections.deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, {})):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, node, start]
            if child not in parents:
                parents[child] = node
                queue.append(child)
    return [start]


def test_no_import_cycle():
    graph = _graph()
    cycles = _strongly_connected(graph)
    report = []
    for component in cycles:
        cycle = _shortest_cycle(graph, component)
        edges = [graph[a][b][0] for a, b in zip(cycle, cycle[1:])]
        report.append(f"cycle {' -> '.join(cycle)}\n" + _describe(edges)
                      + f"\n  (all {len(component)} modules of this loop: {', '.join(component)})")
    assert not cycles, "Import cycles (lazy imports inside functions count):\n" + "\n".join(report)


def test_the_checks_see_imports_inside_functions_and_cycles():
    """The machinery itself: a lazy import is found, and a two-module loop is one component."""
    lazy = [i for i in IMPORTS if i.importer == "keras_deconv.caffe" and i.target == "keras_deconv.caffe.convert"]
    assert lazy, "the lazy import in keras_deconv/caffe/__init__.py should be seen"
    assert _strongly_connected({"a": {"b": []}, "b": {"a": []}, "c": {"a": []}}) == [["a", "b"]]
    assert _strongly_connected({"a": {"b": []}, "b": {"c": []}}) == []
    loop = {"a": {"b": [], "c": []}, "b": {"c": []}, "c": {"a": []}}
    assert _shortest_cycle(loop, ["a", "b", "c"]) == ["a", "c", "a"]


@pytest.mark.parametrize("module, layer", [("keras_deconv", "root"), ("keras_deconv.layers.unpooling", "layers"),
                                           ("keras_deconv.zoo.registry", "zoo"), ("keras_deconv.cli.main", "cli")])
def test_layer_lookup(module, layer):
    assert _layer(module) == layer


def test_every_package_is_installed():
    """A package missing from setup.cfg ``packages`` works in the checkout but not once installed."""
    import configparser

    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    packages = {module for module in MODULES if _is_package(module)}
    assert packages <= listed, f"Add to setup.cfg [options] packages: {sorted(packages - listed)}"
