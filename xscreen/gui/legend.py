"""The screening tab's reading aids: the alarm banner over the image, the active image function
(1-6, E) beside the bag's name, and under the image the heatmap's colour bar and the key to the
material colours.

Data goes down through ``set_...``; none of them emits anything. The banner's content comes from
``verdict.verdict_for`` (tested without Qt); its icon is drawn here so that ALARM, ATTENTION and
NO ALARM differ in shape as well as word and colour.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QWidget

from xscreen import heatmap
from xscreen.gui import verdict as vd
from xscreen.gui.notices import ElidedLabel


def icon(shape: str, size: int, colour: str) -> QPixmap:
    """Banner icon: triangle with '!' (alarm), diamond with '!' (attention), circle with a tick
    (no alarm), square with a dash (not scored), a cross (error); drawn in ``colour``."""
    pm = QPixmap(size, size)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(QColor(colour), max(2, size // 12))
    p.setPen(pen)
    m, s = size * 0.08, size * 0.84
    if shape == "triangle":
        p.drawPolygon(QPolygonF([QPointF(size / 2, m), QPointF(m + s, m + s), QPointF(m, m + s)]))
    elif shape == "diamond":
        c = size / 2
        p.drawPolygon(QPolygonF([QPointF(c, m), QPointF(m + s, c), QPointF(c, m + s), QPointF(m, c)]))
    elif shape == "circle":
        p.drawEllipse(QRectF(m, m, s, s))
    elif shape == "square":
        p.drawRect(QRectF(m, m, s, s))
    if shape == "circle":
        p.drawPolyline(QPolygonF([QPointF(size * .28, size * .52), QPointF(size * .44, size * .68),
                                  QPointF(size * .72, size * .34)]))
    elif shape == "square":
        p.drawLine(QPointF(size * .3, size / 2), QPointF(size * .7, size / 2))
    elif shape == "cross":
        p.drawLine(QPointF(m, m), QPointF(m + s, m + s))
        p.drawLine(QPointF(m + s, m), QPointF(m, m + s))
    else:
        top = size * (0.36 if shape == "triangle" else 0.3)
        p.drawLine(QPointF(size / 2, top), QPointF(size / 2, size * 0.62))
        p.drawPoint(QPointF(size / 2, size * (0.76 if shape == "triangle" else 0.72)))
    p.end()
    return pm


class AlarmBanner(QFrame):
    """Full-width strip: icon, the verdict in large capitals, one line of detail."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.icon = QLabel()
        self.headline = QLabel()
        font = QFont(self.headline.font())
        font.setPointSize(max(font.pointSize(), 9) + 9)
        font.setBold(True)
        self.headline.setFont(font)
        self.detail = ElidedLabel(mode=Qt.TextElideMode.ElideRight)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        lay.addWidget(self.icon)
        lay.addWidget(self.headline)
        lay.addWidget(self.detail, 1)
        self.verdict: vd.Verdict | None = None
        self.set_verdict(vd.verdict_for(None, loaded=False))

    def set_verdict(self, v: vd.Verdict) -> None:
        self.verdict = v
        self.setObjectName(f"banner_{v.kind}")
        self.setStyleSheet(f"QFrame#banner_{v.kind} {{ background: {v.background}; border-radius: 3px; }} "
                           f"QLabel {{ color: {v.foreground}; background: transparent; }}")
        self.icon.setPixmap(icon(v.shape, 34, v.foreground))
        self.headline.setText(v.headline)
        self.detail.setText(v.detail)


class ColourBar(QWidget):
    """The heatmap's colour scale on the one scale (× alarm, 0..HEAT_MAX): colour as on the scan,
    faded where the live threshold hides it; the alarm (1.00) ticked under the bar, the review level
    (and a moved live threshold) drawn as lines across it with their labels above."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rel = np.linspace(0.0, heatmap.HEAT_MAX, 256, dtype=np.float32)[None, :]
        self.ticks = vd.heat_tick_labels(1.0)
        self._image = self._bar_image(1.0)
        self.setMinimumSize(260, 50)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Heatmap colour = score ÷ this bag's alarm threshold (× alarm, 1.00 = alarms). "
                        "Regions are drawn from the review level (line); , and . move it, T resets.")

    def _bar_image(self, live: float) -> QImage:
        rgba = heatmap.colormap(self._rel, opacity=1.0).astype(np.float32)
        ramp = np.clip((self._rel / live - heatmap.RAMP_LO) / (1.0 - heatmap.RAMP_LO), 0.0, 1.0)
        a = ramp[..., None] * 0.8 + 0.2  # hidden colours stay visible on the key, faded
        rgb = np.ascontiguousarray((rgba[..., :3] * a + 225.0 * (1 - a) + 0.5).astype(np.uint8))
        return QImage(rgb.data, 256, 1, 256 * 3, QImage.Format.Format_RGB888).copy()

    def set_scale(self, review: float, live: float) -> None:
        self.ticks = vd.heat_tick_labels(review, live)
        self._image = self._bar_image(live)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        fm = self.fontMetrics()
        bar = QRectF(4, fm.height() + 2, self.width() - 8, 12)
        p.drawImage(bar, self._image)
        p.setPen(QColor("#333333"))
        p.drawRect(bar)
        marks = sorted(t for t in self.ticks if t[2] == "mark")
        for pos, text, kind in marks + [t for t in self.ticks if t[2] != "mark"]:
            x = bar.left() + pos * bar.width()
            w = fm.horizontalAdvance(text)
            left = x - w / 2
            if kind == "mark":
                if len(marks) == 2:  # two lines: the lower one's label ends at it, the higher one's starts there
                    left = x - w + 3 if (pos, text, kind) == marks[0] else x - 3
                left = min(max(left, 0), self.width() - w)
                p.setPen(QPen(QColor("#000000"), 2, Qt.PenStyle.DashLine))
                p.drawLine(QPointF(x, bar.top() - 2), QPointF(x, bar.bottom() + 2))
                p.drawText(QPointF(left, bar.top() - 3 - fm.descent()), text)
            else:
                left = min(max(left, 0), self.width() - w)
                p.setPen(QColor("#333333"))
                p.drawLine(QPointF(x, bar.bottom()), QPointF(x, bar.bottom() + 4))
                p.drawText(QPointF(left, bar.bottom() + 5 + fm.ascent()), text)
        p.end()


class MaterialKey(QWidget):
    """Swatch + name for each material class of the colour views."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        for label, (r, g, b) in vd.MATERIAL_KEY:
            swatch = QLabel()
            swatch.setFixedSize(14, 14)
            swatch.setStyleSheet(f"background: rgb({r},{g},{b}); border: 1px solid #555;")
            lay.addWidget(swatch)
            name = QLabel(label.split(" /")[0])
            name.setToolTip(label)
            lay.addWidget(name)
            lay.addSpacing(6)


class FunctionStrip(QWidget):
    """Keys 1-6 and E; the active image function shown inverted, bold and marked with a bar
    underneath (not by colour alone); functions this scan cannot show are struck through."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        self.labels: dict[str, QLabel] = {}
        for key, name, text, full in vd.FUNCTION_KEYS:
            label = QLabel(f"{key} {text}")
            label.setToolTip(f"{full} (key {key})")
            lay.addWidget(label)
            self.labels[name] = label
        self.active: tuple[str, ...] = ()
        self.set_state("pseudo", False, vd.FUNCTION_VIEWS)

    def set_state(self, view: str, edge: bool, available: tuple[str, ...]) -> None:
        self.active = (view,) + (("edge",) if edge else ())
        for name, label in self.labels.items():
            on = name in self.active
            usable = name == "edge" or name in available
            style = ("background: #263238; color: white; font-weight: bold; border-bottom: 3px solid #ffb300;"
                     if on else "color: #616161; border-bottom: 3px solid transparent;")
            if not usable:
                style += " text-decoration: line-through; color: #b0b0b0;"
            label.setStyleSheet(f"QLabel {{ padding: 1px 4px; {style} }}")


class LegendRow(QWidget):
    """Under the image: colour bar (scored bag, heatmap on, fill) | material key (colour views)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.colour_bar, self.materials = ColourBar(), MaterialKey()
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.colour_bar, 1)
        lay.addSpacing(12)
        lay.addWidget(self.materials)

    def set_state(self, state, scale=None, loaded: bool = True) -> None:
        """``state``: the tab's ``ViewState``; ``scale``: ``probe.Scale`` of a scored bag (None:
        not scored); nothing is shown without a bag."""
        self.colour_bar.setVisible(scale is not None and state.overlay and state.overlay_mode == "fill"
                                   and state.layer != "residual")
        if scale is not None:
            self.colour_bar.set_scale(scale.review, scale.live)
        self.materials.setVisible(loaded and state.view in vd.MATERIAL_VIEWS and state.layer != "residual")
