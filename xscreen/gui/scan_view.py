"""The scan display: image, heatmap layer, region boxes; zoom/pan by mouse and keys; side-by-side.

pyqtgraph's ImageItem with ``autoDownsample`` draws only what the screen can show, which is what
keeps an 8000x3000 scan smooth to pan and zoom. Data comes in through ``set_*``; the only thing
that goes up is the cursor position in scan pixels.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

BOX_COLOUR = QColor(255, 230, 0)
SELECTED_COLOUR = QColor(0, 255, 255)
ATTENTION_COLOUR = QColor(120, 200, 255)  # attention regions: dashed, pale blue
ZOOM_STEP = 1.25
PAN_FRACTION = 0.15
MAX_BOXES = 50  # an operator steps through a handful; thousands of text items would stall pan/zoom


def _view_box() -> pg.ViewBox:
    vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
    vb.setBackgroundColor(QColor(30, 30, 30))
    return vb


class ScanView(pg.GraphicsLayoutWidget):
    """Main view plus an optional second view (reconstruction) with linked pan/zoom."""

    cursor_moved = Signal(float, float)  # scan pixel coordinates

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAcceptDrops(False)  # drops go to the main window
        self.view = _view_box()
        self.addItem(self.view, row=0, col=0)
        self.image = pg.ImageItem(autoDownsample=False)
        self.layer = pg.ImageItem(autoDownsample=False)
        self.layer.setZValue(5)
        self.view.addItem(self.image)
        self.view.addItem(self.layer)
        self.side_view = _view_box()
        self.side_image = pg.ImageItem(autoDownsample=False)
        self.side_view.addItem(self.side_image)
        self.side_view.setXLink(self.view)
        self.side_view.setYLink(self.view)
        self._side_shown = False
        self._boxes: list[tuple[QGraphicsRectItem, pg.TextItem]] = []
        self._size = (0, 0)  # (H, W)
        self.scene().sigMouseMoved.connect(self._on_scene_mouse_moved)

    # --- data down -------------------------------------------------------------------------
    def set_image(self, rgb: np.ndarray | None) -> None:
        """rgb (H, W, 3) uint8; None clears. A new size refits the view."""
        if rgb is None:
            self.image.clear()
            self.layer.clear()
            self.set_regions([])
            self._size = (0, 0)
            return
        new_size = rgb.shape[:2]
        self.image.setImage(rgb, autoLevels=False, levels=None)
        if new_size != self._size:
            self._size = new_size
            self.fit()

    def set_layer(self, rgba: np.ndarray | None, opacity: float = 0.5,
                  size: tuple[int, int] | None = None) -> None:
        """Heatmap layer (h, w, 4) uint8 at full strength, stretched over ``size`` (W, H) scan pixels
        when drawn decimated; ``opacity`` scales the whole layer."""
        if rgba is None:
            self.layer.clear()
            self.layer.setVisible(False)
            return
        self.layer.setImage(rgba, autoLevels=False, levels=None)
        w, h = size if size is not None else (rgba.shape[1], rgba.shape[0])
        self.layer.setRect(QRectF(0, 0, w, h))
        self.layer.setOpacity(float(opacity))
        self.layer.setVisible(True)

    def set_layer_opacity(self, opacity: float) -> None:
        self.layer.setOpacity(float(opacity))

    def set_side(self, rgb: np.ndarray | None) -> None:
        """Show ``rgb`` (H, W, 3) beside the main view with linked pan/zoom; None hides it."""
        if rgb is None:
            if self._side_shown:
                self.removeItem(self.side_view)
                self._side_shown = False
            return
        self.side_image.setImage(rgb, autoLevels=False, levels=None)
        if not self._side_shown:
            self.addItem(self.side_view, row=0, col=1)
            self._side_shown = True

    def set_regions(self, regions: list, visible: bool = True, selected: int | None = None) -> None:
        """Ranked boxes with their rank and score (× alarm: ``Region.max_rel`` as ``probe.rethreshold``
        gives it), the top MAX_BOXES; ``selected`` is a rank."""
        for rect, label in self._boxes:
            self.view.removeItem(rect)
            self.view.removeItem(label)
        self._boxes = []
        if not visible:
            return
        for r in regions[:MAX_BOXES]:
            attention = getattr(r, "level", "alarm") == "attention"  # below the alarm threshold: no threat
            colour = SELECTED_COLOUR if r.rank == selected else ATTENTION_COLOUR if attention else BOX_COLOUR
            rect = QGraphicsRectItem(QRectF(r.x, r.y, r.w, r.h))
            pen = QPen(colour, 1.0, Qt.DashLine if attention else Qt.SolidLine)
            pen.setCosmetic(True)
            pen.setWidthF(2.0 if r.rank != selected else 3.0)
            rect.setPen(pen)
            rect.setZValue(10)
            label = pg.TextItem(f"#{r.rank}  {r.max_rel:.2f}× alarm", color=colour, anchor=(0, 1),
                                fill=pg.mkBrush(0, 0, 0, 160))
            label.setPos(r.x, r.y)
            label.setZValue(11)
            self.view.addItem(rect)
            self.view.addItem(label)
            self._boxes.append((rect, label))

    @property
    def n_boxes(self) -> int:
        return len(self._boxes)

    @property
    def side_shown(self) -> bool:
        return self._side_shown

    # --- navigation ------------------------------------------------------------------------
    def fit(self) -> None:
        if self._size[0]:
            self.view.setRange(QRectF(0, 0, self._size[1], self._size[0]), padding=0.02)

    def zoom(self, factor: float) -> None:
        """factor > 1 zooms in about the view centre."""
        self.view.scaleBy((1.0 / factor, 1.0 / factor))

    def pan(self, dx: float, dy: float) -> None:
        """Pan by fractions of the visible width/height (positive = right/down)."""
        (x0, x1), (y0, y1) = self.view.viewRange()
        self.view.translateBy(x=dx * (x1 - x0), y=dy * (y1 - y0))

    def zoom_to(self, x: float, y: float, w: float, h: float) -> None:
        self.view.setRange(QRectF(x, y, w, h), padding=0.0)

    def visible_rect(self) -> tuple[float, float, float, float]:
        (x0, x1), (y0, y1) = self.view.viewRange()
        return x0, y0, x1 - x0, y1 - y0

    def _on_scene_mouse_moved(self, pos) -> None:
        for vb in (self.view, self.side_view):
            if vb.scene() is not None and vb.sceneBoundingRect().contains(pos):
                p = vb.mapSceneToView(pos)
                self.cursor_moved.emit(float(p.x()), float(p.y()))
                return
