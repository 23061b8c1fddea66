"""Packaging files are consistent: icons exist at every size the installer copies, the desktop
entry has the keys menus need, the spec's entry point and data folders exist. (The bundle build
itself is packaging/build.sh, too slow for the test suite.)"""
import ast
import configparser
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "packaging"
ICONS = ROOT / "resources" / "icons"


def test_icons_at_every_installed_size():
    sizes = [int(s) for s in re.search(r"for size in ([\d ]+); do", (PKG / "install_desktop.sh").read_text())
             .group(1).split()]
    assert sizes == [16, 32, 48, 64, 128, 256, 512]
    for size in sizes:
        with Image.open(ICONS / f"xscreen-{size}.png") as im:
            assert im.size == (size, size) and im.mode == "RGBA"
            assert im.getpixel((size // 2, size // 2))[3] == 255  # opaque centre, transparent corners
            assert im.getpixel((0, 0))[3] < 128
    svg = ET.parse(ICONS / "xscreen.svg").getroot()
    assert svg.tag.endswith("svg") and svg.get("viewBox") == "0 0 256 256"


def test_desktop_entry():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(PKG / "xscreen.desktop")
    d = entry["Desktop Entry"]
    assert d["Type"] == "Application" and d["Exec"] == "xscreen %F" and d["Icon"] == "xscreen"
    assert d["Terminal"] == "false" and d["Categories"].endswith(";")


def test_spec_names_files_that_exist():
    spec = (PKG / "xscreen.spec").read_text()
    ast.parse(spec)  # valid Python (PyInstaller executes it)
    assert '"packaging" / "xscreen_main.py"' in spec and (PKG / "xscreen_main.py").is_file()
    assert '"packaging" / "xscreen.desktop"' in spec
    for folder in ("models", "resources"):
        assert f'"{folder}"' in spec and (ROOT / folder).is_dir()
    main = (PKG / "xscreen_main.py").read_text()
    assert "from xscreen.cli import main" in main and "freeze_support()" in main
