"""The package's imports flow one way, through its layers, with no cycles.

The rules' ``code:`` inputs are the import closure of each stage (tiktalk.workflow.code_files),
so an upward import, a cycle or a re-export in an ``__init__.py`` makes a stage depend on code
it does not use, and editing that code re-runs it. These tests walk every module's imports
(top level and inside functions, with the walker code_files uses) and name the offending edge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tiktalk.workflow import imports_of, package_modules

SRC = Path(__file__).resolve().parents[1] / "src" / "tiktalk"

# Bottom to top. A module may import its own package and the layers below its own.
LAYERS: list[set[str]] = [
    {"", "io", "formats", "logs", "runtime", "settings"},  # "" is the root tiktalk/__init__.py
    {"data"},                         # the tables every later stage reads, keyed by dialogue
    {"knowledge", "media", "metrics", "demo", "weights",  # one stage each
     "rehearsal"},                    # the rehearsal's tiny weights (apart from the real ones')
    {"models"},
    {"training"},
    {"families"},                     # one torch-free descriptor per baseline family
    {"baselines"},
    {"report"},                       # reads result files: may import up to the stages only
    {"scale"},                        # the scale rehearsal and cost plan: tools over everything
    {"workflow", "cli", "config_check"},
]
# Modules placed apart from their package: a package's command line is an entry point just
# below tiktalk.cli (which assembles the subcommands); nothing in its package may import it.
MODULE_LAYERS = {"tiktalk.weights.cli": len(LAYERS) - 2, "tiktalk.media.cli": len(LAYERS) - 2,
                 "tiktalk.report.kit.cli": len(LAYERS) - 2}
# The highest layer a unit may import, where lower than "everything below its own".
CEILING = {"report": 2}
# Imports between two packages of one layer that are allowed (importer, imported).
ALLOWED_SIBLINGS = {
    ("weights", "media"),  # pretrained weights are fetched with the media downloader
    ("rehearsal", "media"),  # the rehearsal's tiny VGGish is the media stage's class
}


def unit(module: str) -> str:
    """The top-level package or module of ``module`` below ``tiktalk`` ("" for the root)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(name: str) -> int:
    for i, members in enumerate(LAYERS):
        if name in members:
            return i
    raise KeyError(name)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the package modules it imports (only names that are modules)."""
    modules = package_modules(src)
    return {m: {t for t in imports_of(p, m) if t in modules and t != m} for m, p in modules.items()}


def module_layer(module: str) -> int:
    return MODULE_LAYERS.get(module, layer_of(unit(module)))


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for src_mod in sorted(graph):
        a = unit(src_mod)
        for dst in sorted(graph[src_mod]):
            b = unit(dst)
            if a == b and src_mod not in MODULE_LAYERS and dst not in MODULE_LAYERS:
                continue  # inside one package (cycles are checked apart)
            la, lb = module_layer(src_mod), module_layer(dst)
            if a == b and lb <= la:
                continue
            edge = f"{src_mod} -> {dst}"
            if lb > la:
                problems.append(f"upward import {edge} (layer {la} imports layer {lb})")
            elif lb == la and (a, b) not in ALLOWED_SIBLINGS:
                problems.append(f"sibling import {edge} (both layer {la}; not in ALLOWED_SIBLINGS)")
            elif a in CEILING and lb > CEILING[a]:
                problems.append(f"{edge}: {a} may import layers <= {CEILING[a]} only")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a module path that returns to its start) per strongly connected component
    of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for comp in components:
        start = min(comp)
        path, seen = [start], {start}
        while True:  # follow edges inside the component until a module repeats
            nxt = min(w for w in graph[path[-1]] if w in comp)
            path.append(nxt)
            if nxt in seen:
                found.append(path[path.index(nxt):])
                break
            seen.add(nxt)
    return found


def test_every_package_has_a_layer():
    units = {unit(m) for m in package_modules(SRC)}
    missing = sorted(u for u in units if not any(u in layer for layer in LAYERS))
    assert not missing, f"assign these to a layer in tests/test_layers.py LAYERS: {missing}"


def test_imports_flow_down_the_layers():
    problems = layer_violations(import_graph())
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "\n".join(" -> ".join(c) for c in found)


def test_package_inits_import_nothing():
    """Importing tiktalk.x.y runs tiktalk/x/__init__.py: it must not pull in x's other modules."""
    graph = import_graph()
    heavy = {m: sorted(graph[m]) for m, p in package_modules(SRC).items()
             if p.name == "__init__.py" and graph[m]}
    assert not heavy, heavy


# -- the checks themselves fail on what they are meant to catch --------------------------------
def _write(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "tiktalk"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return pkg


def test_checks_catch_upward_hidden_sibling_and_cyclic_imports(tmp_path):
    pkg = _write(tmp_path, {
        "io.py": "",
        "models/tokenizer.py": "def corpus():\n    from tiktalk.baselines.common import X\n",
        "baselines/common.py": "from tiktalk.models import tokenizer\nX = 1\n",
        "knowledge/retrieve.py": "from tiktalk.media import store\n",
        "media/store.py": "from .. import io\n",
        "report/tables.py": "from tiktalk.models.tokenizer import corpus\n",
        "weights/cli.py": "from tiktalk.knowledge import retrieve\n",  # an entry point: allowed
        "weights/fetch.py": "from tiktalk.weights.cli import main\n",
    })
    graph = import_graph(pkg)
    problems = layer_violations(graph)
    assert problems == [  # ``from tiktalk.media import store`` runs media/__init__.py too
        "sibling import tiktalk.knowledge.retrieve -> tiktalk.media (both layer 2; "
        "not in ALLOWED_SIBLINGS)",
        "sibling import tiktalk.knowledge.retrieve -> tiktalk.media.store (both layer 2; "
        "not in ALLOWED_SIBLINGS)",
        "upward import tiktalk.models.tokenizer -> tiktalk.baselines.common (layer 3 imports layer 6)",
        "tiktalk.report.tables -> tiktalk.models.tokenizer: report may import layers <= 2 only",
        "upward import tiktalk.weights.fetch -> tiktalk.weights.cli (layer 2 imports layer 8)",
    ]
    assert graph["tiktalk.media.store"] == {"tiktalk", "tiktalk.io"}  # relative imports resolve
    assert cycles(graph) == [["tiktalk.baselines.common", "tiktalk.models.tokenizer",
                              "tiktalk.baselines.common"]]


# Subpackages that are packages of their own inside their unit: the modules of the unit outside
# the subpackage that it may import (the rest of the unit may import it).
SUBPACKAGES = {
    # the human-evaluation kits: the paper's numbers, the renderer and the plot helpers
    "tiktalk.report.kit": {"tiktalk.report", "tiktalk.report.paper", "tiktalk.report.render",
                           "tiktalk.report.plots"},
}


def subpackage_violations(graph: dict[str, set[str]]) -> list[str]:
    problems = []
    for sub, allowed in SUBPACKAGES.items():
        unit_prefix = sub.rsplit(".", 1)[0] + "."
        for src_mod in sorted(m for m in graph if m == sub or m.startswith(sub + ".")):
            for dst in sorted(graph[src_mod]):
                inside = dst == sub or dst.startswith(sub + ".")
                if not inside and dst.startswith(unit_prefix) and dst not in allowed:
                    problems.append(f"{src_mod} -> {dst}: {sub} may import only {sorted(allowed)} "
                                    f"of its unit")
    return problems


def test_subpackages_import_only_what_they_may():
    problems = subpackage_violations(import_graph())
    assert not problems, "\n".join(problems)


def test_subpackage_check_catches_an_import_of_its_unit(tmp_path):
    pkg = _write(tmp_path, {
        "report/paper.py": "", "report/tables.py": "",
        "report/kit/table4.py": "from tiktalk.report import paper\nfrom tiktalk.report.tables import x\n",
        "report/claims.py": "from tiktalk.report.kit import table4\n",     # the unit may use it
    })
    assert subpackage_violations(import_graph(pkg)) == [
        "tiktalk.report.kit.table4 -> tiktalk.report.tables: tiktalk.report.kit may import only "
        "['tiktalk.report', 'tiktalk.report.paper', 'tiktalk.report.plots', "
        "'tiktalk.report.render'] of its unit"]


# Modules whose edits must re-run one stage only: who may import them.
STAGE_ONLY = {
    # the retrieval jobs, and Table 5, whose topic similarity is the retriever's
    "tiktalk.knowledge.retrieve": lambda m: m == "tiktalk.report.topics",
    "tiktalk.models.causal_lm": lambda m: m in {"tiktalk.baselines.causal_lm",
                                                "tiktalk.baselines.blip2"},  # ChatGLM, BLIP-2
    "tiktalk.metrics.evaluate": lambda m: unit(m) in {"metrics", "report", "cli"},  # scoring
}


@pytest.mark.parametrize("module", sorted(STAGE_ONLY))
def test_stage_modules_are_imported_only_by_their_stage(module):
    importers = {m for m, targets in import_graph().items() if module in targets}
    bad = sorted(m for m in importers if not STAGE_ONLY[module](m))
    assert not bad, f"{module} is imported by {bad}"
