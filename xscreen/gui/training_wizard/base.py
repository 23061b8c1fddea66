"""Pieces every training-wizard page shares: the gated page base class and image helpers."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QScrollArea, QWidget, QWizardPage

from xscreen import wizard as wz


def to_pixmap(rgb: np.ndarray, max_side: int = 420) -> QPixmap:
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    pix = QPixmap.fromImage(img)
    return pix.scaled(max_side, max_side, Qt.AspectRatioMode.KeepAspectRatio,
                      Qt.TransformationMode.SmoothTransformation) if max(h, w) > max_side else pix


def scrolled(body: QWidget) -> QScrollArea:
    """``body`` in a frameless vertical scroll area: a tall page no longer sets the window's
    minimum height (issue 31 item 10: the model page grew the main window past a 1000-px screen)."""
    from xscreen.gui.wheel import CONTROLS, scroll_not_change

    area = QScrollArea()
    area.setWidget(body)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    for w in body.findChildren(QWidget):  # a wheel scrolling the page must not take a field (item 4)
        if isinstance(w, CONTROLS):
            w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    area.wheel = scroll_not_change(area)
    return area


def error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet("color: #b00020;")
    return label


def keeping_focus(emit) -> None:
    """Call ``emit`` and give the keyboard focus back to the widget that had it. QWizard re-lays out
    its buttons on every ``completeChanged``; inside the main window that moved the focus to the tab
    bar, so a field kept one character per keystroke (issue 31 item 3)."""
    focus = QApplication.focusWidget()
    emit()
    if focus is not None and QApplication.focusWidget() is not focus and focus.isVisible() and focus.isEnabled():
        focus.setFocus(Qt.FocusReason.OtherFocusReason)


class GatedPage(QWizardPage):
    """A page whose Next button follows ``page_errors(state, key)``; the reasons are shown."""

    key = ""

    def __init__(self, wizard: "TrainingWizard"):
        super().__init__()
        self.wiz = wizard
        self.errors = error_label()
        self._complete: bool | None = None
        wizard.state_changed.connect(self._on_state_changed)

    def isComplete(self) -> bool:  # noqa: N802 (Qt API)
        return not wz.page_errors(self.wiz.state, self.key)

    def _on_state_changed(self) -> None:
        errors = wz.page_errors(self.wiz.state, self.key)
        self.errors.setText("\n".join(errors))
        if self._complete is not (not errors):  # tell QWizard only when Next really changes
            self._complete = not errors
            keeping_focus(self.completeChanged.emit)
