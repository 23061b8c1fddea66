"""A4 PDF report with reportlab (no browser): the same facts, figures and crops as the HTML.

reportlab's Paragraph parses a small XML markup, so every text goes through ``_x`` (XML escape);
a scan named ``<script>`` is printed, not parsed. A table cell cannot split across pages, so text
from the file (scan id, path) is shortened here for layout (``text.shorten``): a 2000-character id
raised LayoutError and aborted a batch. JSON and CSV keep it whole.
"""
from __future__ import annotations

import contextlib
import io
from typing import Any, Iterator
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table,
                                TableStyle)

from xscreen.report.context import FOOTNOTE, ReportContext, heat_caption
from xscreen.report.figures import CROP_NAMES, Figures
from xscreen.text import printable, shorten, valid_text

MARGIN = 14 * mm
FRAME_W = A4[0] - 2 * MARGIN
FIG_MAX_H = 56 * mm  # scan and heatmap (with its colour scale) both fit on page 1 under the header
MAX_CELL_CHARS = 240  # a fact cell of 7 pt text stays a few lines high
BADGE = {"ALARM": colors.HexColor("#c0392b"), "NO_ALARM": colors.HexColor("#27ae60"),
         "UNKNOWN": colors.HexColor("#7f8c8d")}
GRID = TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                   ("VALIGN", (0, 0), (-1, -1), "TOP"),
                   ("FONTSIZE", (0, 0), (-1, -1), 8),
                   ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)])


def _x(value: Any, limit: int | None = None) -> str:
    # printable: a control character (an ANSI escape in a scan id) is shown as \x1b, not as a box
    return escape(printable(shorten(value, limit) if limit else valid_text(value)))


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    # CJK wrapping breaks anywhere: a path or id without spaces wraps instead of running off the page
    small = ParagraphStyle("small", parent=base["BodyText"], fontSize=8, leading=10, wordWrap="CJK")
    return {"h1": ParagraphStyle("h1", parent=base["Heading1"], fontSize=15, spaceAfter=4),
            "h2": ParagraphStyle("h2", parent=base["Heading2"], fontSize=11.5, spaceBefore=8, spaceAfter=3),
            "h1w": ParagraphStyle("h1w", parent=base["Heading1"], fontSize=15, spaceAfter=4, wordWrap="CJK"),
            "body": base["BodyText"], "small": small,
            "mono": ParagraphStyle("mono", parent=small, fontName="Courier", fontSize=7, leading=9)}


def _image(rgb: Any, figs: Figures, width: float, max_height: float | None = None) -> Image:
    """Scaled to ``width``, or smaller if that would exceed ``max_height`` (aspect kept)."""
    h, w = rgb.shape[:2]
    if max_height is not None and width * h / w > max_height:
        width = max_height * w / h
    return Image(io.BytesIO(figs.png(rgb)), width=width, height=width * h / w)


def _framed(rgb: Any, figs: Figures) -> Table:
    """A scan figure with a thin frame: air is white and would otherwise merge with the page."""
    t = Table([[_image(rgb, figs, FRAME_W - 4, FIG_MAX_H)]])
    t.setStyle(TableStyle([("BOX", (0, 0), (-1, -1), 0.5, colors.grey),
                           *((side, (0, 0), (-1, -1), 1) for side in
                             ("LEFTPADDING", "RIGHTPADDING", "TOPPADDING", "BOTTOMPADDING"))]))
    return t


def render_pdf(ctx: ReportContext, figs: Figures) -> bytes:
    st, s = _styles(), ctx.screening
    story: list[Any] = [Paragraph(_x(f"Screening report: {shorten(s.scan_id, 120)}"), st["h1w"]), _badge(ctx, st)]
    story += [Spacer(1, 3 * mm), _facts_table(ctx, st)]
    story += [Paragraph("Scan with numbered regions", st["h2"]), _framed(figs.thumbnail, figs)]
    heat = [Paragraph("Heat map (score ÷ this bag's alarm threshold)", st["h2"]),
            _framed(figs.heat_thumbnail, figs) if figs.heat_thumbnail is not None else
            Paragraph("No heat map stored in the saved screening; re-render with --model.", st["body"])]
    if figs.legend is not None:
        heat.append(_image(figs.legend, figs, FRAME_W * 0.8))
    story.append(KeepTogether([*heat, Paragraph(_x(heat_caption(ctx)), st["small"])]))
    story += [KeepTogether([Paragraph("Regions", st["h2"]), _region_table(ctx, st)])]
    for crops, row in zip(figs.crops, ctx.region_rows()):
        story.append(_region_block(crops, row, st, figs))
    if len(s.regions) > len(figs.crops):
        story.append(Paragraph(f"{len(s.regions) - len(figs.crops)} lower-ranked region(s) are "
                               "listed in the table only.", st["small"]))
    story.append(Spacer(1, 4 * mm))
    story.append(Paragraph(_x(f"{ctx.app.name} {ctx.app.version}, generated {ctx.app.generated}. {FOOTNOTE}"),
                           st["small"]))
    buf = io.BytesIO()
    with _binary_streams():
        _build(buf, story, s.scan_id, ctx)
    return buf.getvalue()


@contextlib.contextmanager
def _binary_streams() -> Iterator[None]:
    """reportlab ASCII85-encodes image streams in pure Python unless its C accelerator is
    installed: measured 19 s of a 35 s PDF for an 8000 x 3000 scan. Binary streams are valid
    PDF, 20 % smaller and skip that cost; the setting is restored afterwards."""
    old = rl_config.useA85
    rl_config.useA85 = 0
    try:
        yield
    finally:
        rl_config.useA85 = old


def _build(buf: io.BytesIO, story: list[Any], scan_id: str, ctx: ReportContext) -> None:
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                            bottomMargin=MARGIN, title=f"Screening report {shorten(scan_id, 100)}",
                            author=f"{ctx.app.name} {ctx.app.version}")
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)


def _badge(ctx: ReportContext, st: dict[str, ParagraphStyle]) -> Table:
    text = Paragraph(f'<font color="white"><b>{_x(ctx.final_alarm)}</b></font>', st["body"])
    note = Paragraph(_x(f"{ctx.report_type.lower()} decision; machine: {ctx.machine_alarm}; "
                        f"{len(ctx.screening.regions)} region(s)"), st["body"])
    t = Table([[text, note]], colWidths=[32 * mm, FRAME_W - 32 * mm])
    t.setStyle(TableStyle([("BACKGROUND", (0, 0), (0, 0), BADGE[ctx.final_alarm]),
                           ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return t


def _facts_table(ctx: ReportContext, st: dict[str, ParagraphStyle]) -> Table:
    """Scan and Result on the left, Operator, Model and Report on the right, sections kept whole."""
    sections = ctx.facts()
    col = FRAME_W / 2 - 2 * mm
    halves = [_section_table(sections[:2], st, col), _section_table(sections[2:], st, col)]
    t = Table([halves], colWidths=[FRAME_W / 2] * 2)
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return t


def _section_table(sections: list, st: dict[str, ParagraphStyle], width: float) -> Table:
    cells, heads = [], []
    for section, pairs in sections:
        heads.append(len(cells))
        cells.append([Paragraph(f"<b>{_x(section)}</b>", st["small"]), ""])
        for k, v in pairs:
            style = st["mono"] if k in ("SHA-256", "Checksum", "File") else st["small"]
            cells.append([Paragraph(_x(k), st["small"]), Paragraph(_x(v, MAX_CELL_CHARS), style)])
    t = Table(cells, colWidths=[0.3 * width, 0.7 * width])
    t.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                           ("LINEBELOW", (0, 0), (-1, -1), 0.2, colors.lightgrey),
                           ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                           *(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#eeeeee")) for i in heads)]))
    return t


def _region_table(ctx: ReportContext, st: dict[str, ParagraphStyle]) -> Any:
    rows = ctx.region_rows()
    if not rows:
        return Paragraph("No region reached the threshold.", st["body"])
    data = [["Rank", "Level", "Region id", "Box x, y, w, h (px)", "Max × alarm", "Mean × alarm",
             "Max score (raw)", "Patches", "Assessment p"]]
    data += [[r["rank"], r["level"], r["region_id"], ", ".join(map(str, r["box"])), f"{r['x_alarm']:.2f}",
              f"{r['mean_x_alarm']:.2f}", f"{r['max_score']:.5g}", r["n_patches"],
              f"{r['probability']:.2f}"] for r in rows]
    t = Table(data, repeatRows=1)
    t.setStyle(GRID)
    t.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))]))
    return t


def _region_block(crops: Any, row: dict[str, Any], st: dict[str, ParagraphStyle],
                  figs: Figures) -> KeepTogether:
    cell_w = (FRAME_W - 6 * mm) / len(CROP_NAMES)
    images, captions = [], []
    for name in CROP_NAMES:
        img = getattr(crops, name)
        images.append(_image(img, figs, cell_w - 2 * mm) if img is not None else
                      Paragraph(_x(f"{name} not stored; re-render with --model"), st["small"]))
        captions.append(Paragraph(_x(name), st["small"]))
    t = Table([images, captions], colWidths=[cell_w] * len(CROP_NAMES))
    t.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    title = (f"Region {row['rank']} ({row['level']}): {row['x_alarm']:.2f} × alarm "
             f"(score {row['max_score']:.5g}), {row['n_patches']} patch(es)")
    x, y, w, h = crops.window
    where = f"box x={row['box'][0]} y={row['box'][1]} w={row['box'][2]} h={row['box'][3]}; crops: x={x} y={y} w={w} h={h} px"
    return KeepTogether([Paragraph(_x(title), st["h2"]), Paragraph(_x(where), st["small"]), t])


def _footer(canvas: Any, doc: Any) -> None:
    canvas.saveState()
    canvas.setFont("Helvetica", 7)
    canvas.drawRightString(A4[0] - MARGIN, 8 * mm, f"page {doc.page}")
    canvas.drawString(MARGIN, 8 * mm, doc.title[:110])
    canvas.restoreState()
