"""Small widgets of the screening tab: model selector with its card, scoring progress, decisions."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from xscreen.gui.shortcuts import by_action


class ModelPanel(QGroupBox):
    """Models from ``paths.model_dirs()`` plus opened files; the selected one's card below."""

    chosen = Signal(str)  # model path ("" = none)

    def __init__(self, parent=None):
        super().__init__("Model", parent)
        self.combo = QComboBox()
        self.combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.card = QLabel("no model: scans are shown without scoring")
        self.card.setWordWrap(True)
        self.card.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.card.setStyleSheet("font-size: 11px;")
        lay = QVBoxLayout(self)
        lay.addWidget(self.combo)
        lay.addWidget(self.card)
        self.combo.activated.connect(lambda i: self.chosen.emit(self.combo.itemData(i) or ""))

    def set_models(self, models: list[Path], current: str | None) -> None:
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("(no model)", "")
        for p in models:
            self.combo.addItem(p.name, str(p))
            self.combo.setItemData(self.combo.count() - 1, str(p), Qt.ItemDataRole.ToolTipRole)
        idx = self.combo.findData(str(current)) if current else 0
        self.combo.setCurrentIndex(max(idx, 0))
        self.combo.blockSignals(False)

    def current(self) -> str:
        return self.combo.currentData() or ""

    def set_card(self, text: str) -> None:
        self.card.setText(text)


class ProgressRow(QWidget):
    """Scoring progress with a cancel button (Esc)."""

    cancel = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel("idle")
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.button = QPushButton("Cancel (Esc)")
        self.button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.label)
        lay.addWidget(self.bar, 1)
        lay.addWidget(self.button)
        self.button.clicked.connect(self.cancel)
        self.set_busy(None)

    def set_busy(self, text: str | None, fraction: float | None = None) -> None:
        """None = idle; fraction None = busy with unknown progress (the bar pulses)."""
        busy = text is not None
        self.label.setText(text or "idle")
        self.bar.setTextVisible(busy and fraction is not None)
        self.button.setEnabled(busy)
        if not busy:
            self.bar.setRange(0, 100)
            self.bar.setValue(0)
        elif fraction is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 100)
            self.bar.setValue(int(round(fraction * 100)))


class DecisionBar(QGroupBox):
    """Clear / Suspect / Unresolved; each button emits its registry action id."""

    action = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Decision", parent)
        keys = by_action()
        lay = QHBoxLayout(self)
        self.buttons: dict[str, QPushButton] = {}
        for action, colour in (("decide.clear", "#2e7d32"), ("decide.suspect", "#c62828"),
                               ("decide.unresolved", "#9e7a00")):
            sc = keys[action]
            b = QPushButton(f"{sc.label.split(': ')[1].capitalize()} ({sc.keys})")
            b.setStyleSheet(f"background: {colour}; color: white; font-weight: bold; padding: 6px;")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, a=action: self.action.emit(a))
            lay.addWidget(b)
            self.buttons[action] = b
        self.info = QLabel("")
        self.info.setWordWrap(True)

    def set_enabled(self, on: bool) -> None:
        for b in self.buttons.values():
            b.setEnabled(on)
