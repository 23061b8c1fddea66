"""docs/CONTRACTS.md stays current with the code: every package and top-level module of xscreen/ is
named in its module map, and every name there exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "xscreen"


def module_map() -> str:
    text = (ROOT / "docs" / "CONTRACTS.md").read_text(encoding="utf-8")
    start = text.index("## Module map")
    return text[start:text.index("\n## ", start + 5)]


def mentioned(name: str, table: str) -> bool:
    return re.search(r"`" + re.escape(name) + r"(/|`|\.py)", table) is not None or \
        re.search(r"[ ,(]`?" + re.escape(name) + r"`", table) is not None


def test_every_package_and_module_is_in_the_module_map():
    table = module_map()
    names = [p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "__main__")]
    names += [p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    missing = sorted(n for n in names if not mentioned(n, table))
    assert not missing, f"docs/CONTRACTS.md's module map lacks: {missing}"


def test_every_subpackage_module_is_named_beside_its_package():
    table = module_map()
    missing = []
    for pkg in ("tip", "intake", "report", "train", "scan"):
        for p in (PKG / pkg).glob("*.py"):
            if p.stem != "__init__" and not mentioned(p.stem, table):
                missing.append(f"{pkg}/{p.name}")
    assert not missing, f"docs/CONTRACTS.md's module map lacks: {missing}"


def test_the_map_names_nothing_that_does_not_exist():
    table = module_map()
    first_column = re.findall(r"^\| (.+?) \|", table, flags=re.M)
    names = [n for cell in first_column for n in re.findall(r"`([a-z_]+)/?`", cell)]
    assert names, "no module names found in the map"
    absent = [n for n in names if not ((PKG / f"{n}.py").exists() or (PKG / n).is_dir())]
    assert not absent, f"docs/CONTRACTS.md names modules that do not exist: {absent}"
