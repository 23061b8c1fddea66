"""The core never imports Qt, and imports point one way (DESIGN.md)."""
import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "xscreen"

# Lower number = lower layer. A module may import only modules of its own layer or lower.
LAYER = {
    "config": 0, "atomic": 0, "csvtext": 0, "runtime": 0, "paths": 0, "physics": 0, "budget": 0, "text": 0,
    "scan": 1, "materials": 1,
    "preprocess": 2, "synth": 2, "patches": 2,
    "network": 3, "loss": 3, "tip": 3, "model_checks": 4, "checkpoint": 4,
    "dataset": 5, "metrics": 5, "alarm": 5,
    "scoring": 6, "heatmap": 7, "thresholds": 7, "cascade": 7, "inpaint_gate": 7,
    "train": 8, "pipeline": 8, "evaluate": 8, "report": 8, "audit": 8, "audit_chain": 8, "audit_backup": 8,
    "audit_schema": 8, "audit_stats": 8, "audit_types": 8,
    "drift": 8, "export": 8, "onnx_file": 8, "known_threat": 8,
    "cli": 9, "wizard": 9, "intake": 9, "gui": 10,
}


def _layer(module_path: Path) -> tuple[str, int]:
    rel = module_path.relative_to(PKG)
    top = rel.parts[0].removesuffix(".py")
    return top, LAYER.get(top, 9)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_core_does_not_import_qt_statically():
    offenders = []
    for path in PKG.rglob("*.py"):
        top, _ = _layer(path)
        if top == "gui":
            continue
        for name in _imports(path):
            if name.split(".")[0] in {"PySide6", "pyqtgraph", "PyQt5", "PyQt6"}:
                offenders.append(f"{path.relative_to(PKG)} imports {name}")
    assert offenders == []


def test_imports_point_one_way():
    offenders = []
    for path in PKG.rglob("*.py"):
        top, level = _layer(path)
        for name in _imports(path):
            if not name.startswith("xscreen."):
                continue
            target = name.split(".")[1]
            if target in LAYER and LAYER[target] > level:
                offenders.append(f"{path.relative_to(PKG)} ({top}) imports {name}")
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_importing_the_core_loads_no_qt():
    core = [p.stem for p in PKG.glob("*.py") if p.stem not in {"__main__"}]
    # the families that became packages: every module of them, as when they were flat files
    core += [_module_name(p).removeprefix("xscreen.") for pkg in ("synth", "wizard") for p in (PKG / pkg).glob("*.py")]
    code = "import sys\n" + "".join(f"import xscreen.{m}\n" for m in core) + \
        "bad=[m for m in sys.modules if m.startswith(('PySide6','pyqtgraph'))]\nprint(bad)\nassert not bad"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _import_graph() -> dict[str, set[str]]:
    """Module -> the xscreen modules it imports anywhere in its source (lazy imports in functions too).

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``; the
    implicit import of a parent package is not counted (a package may import its own modules).
    """
    paths = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in paths)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    found.add(sub if sub in paths else base)
        graph[name] = {m for m in found if m in paths and m != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_sees_a_lazy_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = _import_graph()
    assert "xscreen.gui.training_wizard.base" in graph["xscreen.gui.training_wizard.train_page"]
    assert "xscreen.wizard.run" in graph["xscreen.gui.training_wizard.model_page"]  # lazy, in a method


def test_no_import_cycles_anywhere_in_xscreen():
    """DESIGN house rule: a family of files gets a package of its own and its cycle is broken; the
    last one (audit <-> audit_chain, through backup) went into audit_backup.py."""
    assert _cycles(_import_graph()) == []


def test_every_top_level_module_has_a_layer():
    tops = {_layer(p)[0] for p in PKG.rglob("*.py")} - {"__init__", "__main__"}
    assert sorted(tops - set(LAYER)) == []
