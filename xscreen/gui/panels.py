"""Side-panel widgets of the screening tab: display, detector layers, regions + patch inspector.

Each shows a ``ViewState`` (``set_state``, signals blocked so showing never echoes back) and
reports the operator's intent as ``edit`` (a dict of ViewState field changes) or ``action``
(a shortcut-registry id); the tab owns the state.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QListWidget, QListWidgetItem, QPushButton, QSlider, QVBoxLayout, QWidget)

from xscreen.gui import state as st

VIEW_LABELS = {"pseudo": "Pseudo-colour", "gray": "Grey", "negative": "Negative",
               "high_pen": "High penetration", "organic": "Organic only", "inorganic": "Inorganic only"}
LAYER_LABELS = {"image": "Scan", "reconstruction": "Reconstruction", "residual": "Residual",
                "side": "Scan | reconstruction"}
MAX_LISTED = 100
_T_LO, _T_HI = (math.log(v) for v in st.THRESHOLD_RANGE)


def _slider(lo: int, hi: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows stay with the image (pan)
    return s


def _combo(items: dict[str, str]) -> QComboBox:
    c = QComboBox()
    for key, label in items.items():
        c.addItem(label, key)
    c.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return c


def threshold_to_slider(rel: float) -> int:
    """Log scale, 0..1000: equal slider steps are equal ratios of the threshold."""
    return int(round((math.log(rel) - _T_LO) / (_T_HI - _T_LO) * 1000))


def slider_to_threshold(pos: int) -> float:
    return float(math.exp(_T_LO + pos / 1000 * (_T_HI - _T_LO)))


class DisplayPanel(QGroupBox):
    """View selector, edge enhancement, histogram with a draggable window, gamma, reset."""

    edit = Signal(dict)
    action = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Display", parent)
        self.view_combo = _combo(VIEW_LABELS)
        self.edge = QCheckBox("Edge enhancement (E)")
        self.edge.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.hist = pg.PlotWidget(background=None)
        self.hist.setFixedHeight(90)
        self.hist.hideAxis("left")
        self.hist.setMouseEnabled(x=False, y=False)
        self.hist.setXRange(0, 1, padding=0.02)
        self.curve = self.hist.plot(stepMode="center", fillLevel=0, brush=(120, 120, 200, 150))
        self.window_region = pg.LinearRegionItem((0.0, 1.0), bounds=(0.0, 1.0))
        self.hist.addItem(self.window_region)
        self.gamma = _slider(-100, 100)  # log10(gamma) * 100 -> gamma 0.1 .. 10, clipped by state
        self.reset = QPushButton("Reset display (0)")
        self.reset.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        form = QFormLayout(self)
        form.addRow("View", self.view_combo)
        form.addRow(self.edge)
        form.addRow(QLabel("Window / level (drag the band)"))
        form.addRow(self.hist)
        form.addRow("Gamma", self.gamma)
        form.addRow(self.reset)
        self.view_combo.activated.connect(lambda i: self.action.emit(f"view.{self.view_combo.itemData(i)}"))
        self.edge.toggled.connect(lambda on: self.edit.emit({"edge": on}))
        self.window_region.sigRegionChangeFinished.connect(self._on_window_region_changed)
        self.gamma.valueChanged.connect(lambda v: self.edit.emit({"gamma": 10 ** (v / 100)}))
        self.reset.clicked.connect(lambda: self.action.emit("view.reset_display"))

    def set_available(self, views: tuple[str, ...]) -> None:
        model = self.view_combo.model()
        for i in range(self.view_combo.count()):
            model.item(i).setEnabled(self.view_combo.itemData(i) in views)

    def set_histogram(self, counts: np.ndarray, edges: np.ndarray) -> None:
        self.curve.setData(edges, np.log1p(counts.astype(np.float64)))

    def set_state(self, s: st.ViewState) -> None:
        lo = (s.level if s.level is not None else 0.5) - (s.window if s.window is not None else 1.0) / 2
        hi = lo + (s.window if s.window is not None else 1.0)
        for w in (self.view_combo, self.edge, self.gamma, self.window_region):
            w.blockSignals(True)
        self.view_combo.setCurrentIndex(self.view_combo.findData(s.view))
        self.edge.setChecked(s.edge)
        self.gamma.setValue(int(round(math.log10(s.gamma) * 100)))
        self.window_region.setRegion((lo, hi))
        for w in (self.view_combo, self.edge, self.gamma, self.window_region):
            w.blockSignals(False)

    def _on_window_region_changed(self) -> None:
        lo, hi = self.window_region.getRegion()
        if hi - lo > 1e-3:
            self.edit.emit({"window": float(hi - lo), "level": float((hi + lo) / 2)})


class DetectorPanel(QGroupBox):
    """Heatmap layer on/off, fill/contour, opacity, which image, boxes, live threshold."""

    edit = Signal(dict)

    def __init__(self, parent=None):
        super().__init__("Detector", parent)
        self.overlay = QCheckBox("Heatmap (H)")
        self.boxes = QCheckBox("Region boxes (B)")
        self.attention = QCheckBox("Attention regions (below the alarm threshold)")
        for box in (self.overlay, self.boxes, self.attention):
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.mode = _combo({"fill": "Fill", "contour": "Contour"})
        self.opacity = _slider(0, 100)
        self.layer = _combo(LAYER_LABELS)
        self.threshold = _slider(0, 1000)
        self.threshold_label = QLabel()
        self.mode_label = QLabel()  # how the shown result was screened; hidden when exact
        self.mode_label.setStyleSheet("font-weight: bold;")
        self.mode_label.setToolTip("Coarse-to-fine: the heat map is coarse away from suspect areas. "
                                   "Detector menu > Fast screening switches it off.")
        self.mode_label.hide()
        form = QFormLayout(self)
        form.addRow(self.mode_label)
        row = QHBoxLayout()
        row.addWidget(self.overlay)
        row.addWidget(self.boxes)
        form.addRow(row)
        form.addRow(self.attention)
        form.addRow("Mode (M)", self.mode)
        form.addRow("Opacity ([ ])", self.opacity)
        form.addRow("Show (I R D V)", self.layer)
        form.addRow("Threshold (, .)", self.threshold)
        form.addRow(self.threshold_label)
        self.overlay.toggled.connect(lambda on: self.edit.emit({"overlay": on}))
        self.boxes.toggled.connect(lambda on: self.edit.emit({"boxes": on}))
        self.attention.toggled.connect(lambda on: self.edit.emit({"attention": on}))
        self.mode.activated.connect(lambda i: self.edit.emit({"overlay_mode": self.mode.itemData(i)}))
        self.opacity.valueChanged.connect(lambda v: self.edit.emit({"opacity": v / 100}))
        self.layer.activated.connect(lambda i: self.edit.emit({"layer": self.layer.itemData(i)}))
        self.threshold.valueChanged.connect(
            lambda v: self.edit.emit({"rel_threshold": slider_to_threshold(v)}))

    def set_mode(self, text: str) -> None:
        self.mode_label.setText(text)
        self.mode_label.setVisible(bool(text))

    def set_state(self, s: st.ViewState, scale=None) -> None:
        """``scale``: ``probe.Scale`` of the bag on screen (None: not scored)."""
        widgets = (self.overlay, self.boxes, self.attention, self.mode, self.opacity, self.layer, self.threshold)
        for w in widgets:
            w.blockSignals(True)
        self.overlay.setChecked(s.overlay)
        self.boxes.setChecked(s.boxes)
        self.attention.setChecked(s.attention)
        self.mode.setCurrentIndex(self.mode.findData(s.overlay_mode))
        self.opacity.setValue(int(round(s.opacity * 100)))
        self.layer.setCurrentIndex(self.layer.findData(s.layer))
        self.threshold.setValue(threshold_to_slider(s.rel_threshold))
        for w in widgets:
            w.blockSignals(False)
        if scale is None:
            text = f"{s.rel_threshold:.2f} × the review level (scores read × alarm once scored)"
        elif scale.moved:
            text = f"regions shown from {scale.live:.2f} × alarm (review level {scale.review:.2f}; T resets)"
        else:
            text = f"regions shown from the review level, {scale.review:.2f} × alarm"
        self.threshold_label.setText(text)


def to_pixmap(rgb: np.ndarray | None, size: int = 120) -> QPixmap:
    """(h, w, 3) uint8 -> pixmap scaled to fit ``size`` (nearest: patches are small, keep pixels)."""
    if rgb is None or rgb.size == 0:
        return QPixmap()
    rgb = np.ascontiguousarray(rgb)
    img = QImage(rgb.data, rgb.shape[1], rgb.shape[0], rgb.strides[0], QImage.Format.Format_RGB888).copy()
    return QPixmap.fromImage(img).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.FastTransformation)


class RegionPanel(QGroupBox):
    """Ranked region list and the patch inspector of the selected region."""

    selected = Signal(int)  # rank

    def __init__(self, parent=None):
        super().__init__("Regions (J / K)", parent)
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setMinimumHeight(90)
        self.list.setMaximumHeight(160)
        self.crops = [QLabel() for _ in range(3)]
        captions = ("scan", "reconstruction", "residual")
        grid = QHBoxLayout()
        for label, cap in zip(self.crops, captions):
            col = QVBoxLayout()
            label.setFixedSize(120, 120)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("background: #202020;")
            col.addWidget(label)
            col.addWidget(QLabel(cap), alignment=Qt.AlignmentFlag.AlignHCenter)
            grid.addLayout(col)
        self.score = QLabel("no region selected")
        lay = QVBoxLayout(self)
        lay.addWidget(self.list)
        lay.addLayout(grid)
        lay.addWidget(self.score)
        self.list.currentRowChanged.connect(self._on_list_row_changed)

    def set_regions(self, regions: list) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for r in regions[:MAX_LISTED]:
            item = QListWidgetItem(f"#{r.rank}  {r.max_rel:.2f} × alarm  {getattr(r, 'level', 'alarm')}  "
                                   f"({r.x}, {r.y}) {r.w}x{r.h}  "
                                   f"{len(r.patches)} patch{'es' if len(r.patches) != 1 else ''}")
            item.setData(Qt.ItemDataRole.UserRole, r.rank)
            self.list.addItem(item)
        if len(regions) > MAX_LISTED:
            self.list.addItem(f"… {len(regions) - MAX_LISTED} more (raise the threshold)")
        self.list.blockSignals(False)
        self.set_inspection(None)

    def select_rank(self, rank: int | None) -> None:
        self.list.blockSignals(True)
        self.list.setCurrentRow(-1 if rank is None else rank - 1)
        self.list.blockSignals(False)

    def set_inspection(self, insp) -> None:
        if insp is None:
            for label in self.crops:
                label.setPixmap(QPixmap())
            self.score.setText("no region selected")
            return
        for label, img in zip(self.crops, (insp.original, insp.reconstruction, insp.residual)):
            label.setPixmap(to_pixmap(img))
        x, y, w, h = insp.box
        self.score.setText(f"max {insp.max_rel:.2f} × alarm, mean {insp.mean_rel:.2f} × alarm  at ({x}, {y}) {w}x{h}")

    def _on_list_row_changed(self, row: int) -> None:
        rank = self.list.item(row).data(Qt.ItemDataRole.UserRole) if row >= 0 else None
        if rank is not None:
            self.selected.emit(int(rank))
