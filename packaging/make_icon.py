"""Draw the xscreen icon: a bag in the operators' pseudo-colours under a scan line, with a flagged box.

Writes resources/icons/xscreen.svg and xscreen-{16..512}.png (plus xscreen.png = 256 px).
Deterministic: rerun after changing a shape below.  python packaging/make_icon.py
"""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "resources" / "icons"
SIZES = (16, 32, 48, 64, 128, 256, 512)
BASE = 256  # geometry below is in a 256 x 256 box

# (shape, box x0 y0 x1 y1, corner radius, fill, outline, outline width) on the 256 box
SHAPES = [
    ("rect", (8, 8, 248, 248), 48, "#12263a", None, 0),            # background tile
    ("rect", (92, 42, 164, 84), 14, None, "#3fae5a", 12),          # handle: inorganic green
    ("rect", (40, 74, 216, 212), 22, "#f08c28", "#ffd29a", 6),     # bag body: organic orange
    ("rect", (60, 96, 110, 190), 8, "#ffb866", None, 0),           # clothes: thin organic
    ("rect", (124, 120, 186, 176), 6, "#2c5fd6", None, 0),         # dense item: metal blue
    ("rect", (112, 108, 198, 188), 8, None, "#ff3040", 7),         # the flagged region
    ("rect", (20, 142, 236, 148), 3, "#7fe8ff", None, 0),          # scan line
]


def draw_png(size: int) -> Image.Image:
    """Supersampled 4x then reduced: smooth edges without an SVG renderer."""
    big = 4 * size
    scale = big / BASE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    for _, box, radius, fill, outline, width in SHAPES:
        xy = [round(v * scale) for v in box]
        draw.rounded_rectangle(xy, radius=round(radius * scale), fill=fill, outline=outline,
                               width=max(1, round(width * scale)) if outline else 0)
    return img.resize((size, size), Image.LANCZOS)


def svg() -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{BASE}" height="{BASE}" '
             f'viewBox="0 0 {BASE} {BASE}">', "  <title>xscreen</title>"]
    for _, (x0, y0, x1, y1), radius, fill, outline, width in SHAPES:
        style = f'fill="{fill or "none"}"' + (f' stroke="{outline}" stroke-width="{width}"' if outline else "")
        parts.append(f'  <rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" rx="{radius}" {style}/>')
    parts.append("</svg>\n")
    return "\n".join(parts)


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "xscreen.svg").write_text(svg())
    for size in SIZES:
        draw_png(size).save(OUT / f"xscreen-{size}.png", optimize=True)
    draw_png(256).save(OUT / "xscreen.png", optimize=True)
    print(f"wrote {OUT}/xscreen.svg and {len(SIZES) + 1} PNGs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
