"""The mouse wheel over a side panel scrolls the panel (issue 31 item 4).

Qt lets a slider, combo box or spin box take wheel steps without having the focus, so scrolling down
the screening tab's side panel moved the live threshold and switched the "Show" combo under the
pointer. A control without the keyboard focus hands its wheel events to the scroll area around it.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (QAbstractScrollArea, QAbstractSlider, QAbstractSpinBox, QApplication,
                               QComboBox, QWidget)

CONTROLS = (QAbstractSlider, QComboBox, QAbstractSpinBox)


class WheelToContainer(QObject):
    """Event filter: a wheel event on an unfocused control scrolls ``area`` instead."""

    def __init__(self, area: QAbstractScrollArea):
        super().__init__(area)
        self.area = area
        self.forwarded = 0  # wheel events handed to the container (tests read it)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() != QEvent.Type.Wheel or not isinstance(obj, QWidget) or obj.hasFocus():
            return False
        bar = self.area.verticalScrollBar()
        copy = QWheelEvent(event.position(), event.globalPosition(), event.pixelDelta(), event.angleDelta(),
                           event.buttons(), event.modifiers(), event.phase(), event.inverted())
        QApplication.sendEvent(bar, copy)
        self.forwarded += 1
        return True  # the control itself never sees it

    def install(self, root: QWidget) -> None:
        """Watch every control under ``root`` (call again for controls added later)."""
        for w in root.findChildren(QWidget):
            if isinstance(w, CONTROLS):
                w.installEventFilter(self)


def scroll_not_change(area: QAbstractScrollArea) -> WheelToContainer:
    """Install the filter on the controls inside ``area``'s widget; returns it (keep it or not: it
    lives as long as ``area``)."""
    f = WheelToContainer(area)
    inner = area.widget() if hasattr(area, "widget") else area.viewport()
    f.install(inner)
    return f
