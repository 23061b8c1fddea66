"""The core never imports Qt, and imports point one way (DESIGN.md)."""
import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "xscreen"

# Lower number = lower layer. A module may import only modules of its own layer or lower.
LAYER = {
    "config": 0, "atomic": 0, "csvtext": 0, "runtime": 0, "paths": 0, "synth_physics": 0,
    "scan": 1, "materials": 1,
    "preprocess": 2, "synth": 2, "synth_draw": 2, "synth_items": 2, "synth_threats": 2, "patches": 2,
    "network": 3, "loss": 3, "model_checks": 4, "checkpoint": 4,
    "dataset": 5, "metrics": 5, "alarm": 5,
    "scoring": 6, "heatmap": 7, "thresholds": 7,
    "train": 8, "pipeline": 8, "evaluate": 8, "report": 8, "audit": 8, "audit_chain": 8, "drift": 8,
    "cli": 9, "wizard": 9, "wizard_run": 9, "gui": 10,
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


def test_importing_the_core_loads_no_qt():
    core = [p.stem for p in PKG.glob("*.py") if p.stem not in {"__main__"}]
    code = "import sys\n" + "".join(f"import xscreen.{m}\n" for m in core) + \
        "bad=[m for m in sys.modules if m.startswith(('PySide6','pyqtgraph'))]\nprint(bad)\nassert not bad"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
