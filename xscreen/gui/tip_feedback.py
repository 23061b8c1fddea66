"""The TIP feedback the operator sees after responding to a TIP image: a panel above the bag ("TIP
detected" / "TIP missed", what it was, then "Now the real bag") and the threat's outline on the image."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from xscreen.tip.console import TipResult, feedback_text

DETECTED_COLOUR = QColor(46, 204, 64)
MISSED_COLOUR = QColor(255, 133, 27)


class TipFeedbackPanel(QFrame):
    """Hidden until a TIP response; ``real_bag`` when the operator asks for the real bag."""

    real_bag = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("tip-feedback")
        self.headline, self.detail = QLabel(), QLabel()
        self.detail.setWordWrap(True)
        self.button = QPushButton("Now the real bag  ▶   (Enter)")
        self.button.setStyleSheet("font-weight: bold; padding: 6px 14px;")
        self.button.clicked.connect(self.real_bag)
        text = QVBoxLayout()
        text.addWidget(self.headline)
        text.addWidget(self.detail)
        row = QHBoxLayout(self)
        row.addLayout(text, 1)
        row.addWidget(self.button, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def show_result(self, result: TipResult) -> None:
        head, detail = feedback_text(result)
        colour = DETECTED_COLOUR if result.detected else MISSED_COLOUR
        self.headline.setText(head)
        self.headline.setStyleSheet(f"font-size: 20px; font-weight: bold; color: {colour.name()};")
        self.detail.setText(detail + "\nThe real bag, without the projected threat, follows for your decision.")
        self.setStyleSheet(f"QFrame#tip-feedback {{ border: 3px solid {colour.name()}; background: #202020; }}"
                           "QLabel { color: white; }")
        self.show()
        self.button.setFocus()


def mask_outline(mask: np.ndarray) -> list[np.ndarray]:
    """Contours of the threat footprint ``mask`` (H, W) bool as (N, 2) arrays of (x, y) scan pixels."""
    from skimage.measure import find_contours

    padded = np.pad(mask.astype(np.float32), 1)  # a footprint at the scan's edge still closes
    return [c[:, ::-1] - 1.0 for c in find_contours(padded, 0.5) if len(c) >= 3]


def outline_items(mask: np.ndarray, detected: bool, box: tuple[int, int, int, int]) -> list:
    """pyqtgraph items drawing the threat's outline and a 'TIP' tag at its box, for a ViewBox."""
    colour = DETECTED_COLOUR if detected else MISSED_COLOUR
    pen = pg.mkPen(colour, width=3)
    items = [pg.PlotCurveItem(c[:, 0], c[:, 1], pen=pen) for c in mask_outline(mask)]
    tag = pg.TextItem("TIP " + ("detected" if detected else "missed: it was here"), color=colour, anchor=(0, 0),
                      fill=pg.mkBrush(0, 0, 0, 190))
    tag.setPos(box[0], box[1] + box[3])  # below the threat: region labels sit above their boxes
    items.append(tag)
    for it in items:
        it.setZValue(20)
    return items
