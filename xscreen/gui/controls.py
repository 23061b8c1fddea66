"""Small widgets of the screening tab: model selector with its card, scoring progress, the bag
queue with each bag's decision, the decision buttons with the decision standing on the bag."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QProgressBar, QPushButton, QVBoxLayout, QWidget)

from xscreen.gui.shortcuts import by_action

# Decision colours carry a glyph and the word too, so they read without colour vision.
DECISION_STYLE = {"clear": ("#2e7d32", "\u2713"), "suspect": ("#c62828", "\u26a0"), "unresolved": ("#9e7a00", "?"),
                  "unreadable": ("#455a64", "\u2298")}  # re-scan / hand search


def decision_text(decision) -> str:
    """'⚠ SUSPECT by ana ...' for a ``session.BagDecision``; '' for None."""
    return "" if decision is None else f"{DECISION_STYLE[decision.decision][1]} {decision.label()}"


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


class QueuePanel(QGroupBox):
    """The bags of the queue, the one on screen selected, each with the decision standing on it;
    a click asks for that bag (``chosen(index)``)."""

    chosen = Signal(int)

    def __init__(self, parent=None):
        super().__init__("Queue", parent)
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the operator's shortcuts
        self.list.setMaximumHeight(160)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list)
        self.list.itemClicked.connect(self._on_list_item_clicked)

    def set_queue(self, names: list[str], decisions: list, current: int, model_id: str = "") -> None:
        """``decisions[i]``: the ``BagDecision`` of bag i or None (undecided or not seen yet);
        ``model_id``: the model now screening ('' unknown) - a decision taken under another is marked."""
        self.list.clear()
        for i, (name, d) in enumerate(zip(names, decisions)):
            other = d is not None and model_id and d.model_id and d.model_id != model_id
            mark = f"  (under {d.model_id})" if other else ""
            item = QListWidgetItem(f"{i + 1:>3}  {name}   {decision_text(d) or '-'}{mark}")
            if d is not None:
                item.setForeground(QBrush(QColor(DECISION_STYLE[d.decision][0])))
            if i == current:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            self.list.addItem(item)
        if 0 <= current < self.list.count():
            self.list.setCurrentRow(current)
            self.list.scrollToItem(self.list.item(current))
        self.setTitle(f"Queue ({sum(d is not None for d in decisions)}/{len(names)} decided)")

    def _on_list_item_clicked(self, item: QListWidgetItem) -> None:
        self.chosen.emit(self.list.row(item))


class DecisionBar(QGroupBox):
    """Clear / Suspect / Unresolved; each button emits its registry action id. Above them, the
    decision standing on the bag on screen (its button outlined), so going back shows it."""

    action = Signal(str)

    def __init__(self, parent=None):
        super().__init__("Decision", parent)
        keys = by_action()
        lay = QGridLayout(self)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        lay.addWidget(self.info, 0, 0, 1, 3)
        self.buttons: dict[str, QPushButton] = {}
        for i, action in enumerate(("decide.clear", "decide.suspect", "decide.unresolved", "decide.unreadable")):
            sc = keys[action]
            b = QPushButton(f"{sc.label.split(': ')[1].capitalize().replace('->', '→')} ({sc.keys})")
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            b.clicked.connect(lambda _=False, a=action: self.action.emit(a))
            lay.addWidget(b, 1 + i // 3, i % 3, 1, 1 if i < 3 else 3)
            self.buttons[action] = b
        self.buttons["decide.unreadable"].setVisible(False)  # only for a bag that could not be read
        self.set_decided(None)

    def set_enabled(self, on: bool, failed: bool = False) -> None:
        """``on``: the three verdicts may be taken; ``failed``: the bag on screen could not be read,
        so only 'unreadable -> re-scan / hand search' is offered."""
        for action, b in self.buttons.items():
            b.setEnabled(failed if action == "decide.unreadable" else on)
        self.buttons["decide.unreadable"].setVisible(failed)

    def set_decided(self, decision, note: str = "Not decided yet", warning: str = "") -> None:
        """The standing ``session.BagDecision`` of the bag on screen; ``note`` when there is none;
        ``warning``: the current model disagrees with the one the decision was taken under."""
        for action, b in self.buttons.items():
            colour = DECISION_STYLE[action.split(".")[1]][0]
            mine = decision is not None and action == f"decide.{decision.decision}"
            frame = "border: 4px solid black; " if mine else "border: 4px solid transparent; "
            b.setStyleSheet(f"QPushButton {{ background: {colour}; color: white; font-weight: bold; padding: 6px; "
                            f"{frame}}} QPushButton:disabled {{ background: #9e9e9e; color: #eeeeee; }}")
        if decision is None:
            self.info.setText(note)
            self.info.setStyleSheet("padding: 4px;")
            return
        colour, glyph = DECISION_STYLE[decision.decision]
        self.info.setText(f"{glyph} {decision.describe()}  -  another decision key asks to amend it"
                          + (f"\n\u26a0 {warning}" if warning else ""))
        frame = " border: 4px dashed #ffb300;" if warning else ""
        self.info.setStyleSheet(f"padding: 4px; font-weight: bold; color: white; background: {colour};{frame}")
