"""Dialogs: keyboard cheat sheet (F1), supervisor statistics, errors. All non-modal (``open``), so
neither the operator's flow nor a test ever blocks on one."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLabel, QMessageBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from xscreen.gui import shortcuts
from xscreen.gui.notices import breakable


def _table(headers: list[str], rows: list[list[str]]) -> QTableWidget:
    t = QTableWidget(len(rows), len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for i, row in enumerate(rows):
        for j, text in enumerate(row):
            t.setItem(i, j, QTableWidgetItem(text))
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class _Dialog(QDialog):
    def __init__(self, title: str, parent: QWidget | None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.lay = QVBoxLayout(self)

    def finish(self, width: int, height: int) -> None:
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.lay.addWidget(buttons)
        self.resize(width, height)


class CheatSheet(_Dialog):
    """Every shortcut from the registry, grouped; the same table the README shows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Keyboard shortcuts", parent)
        rows = [[group, sc.keys, sc.label] for group, items in shortcuts.groups() for sc in items]
        self.table = _table(["Group", "Key", "Action"], rows)
        self.lay.addWidget(self.table)
        self.finish(520, 640)


class StatsDialog(_Dialog):
    """Per-operator statistics from the audit log, and whether its hash chain verifies."""

    def __init__(self, stats: list, verify, db_path: str, parent: QWidget | None = None):
        super().__init__("Operator statistics", parent)
        rows = [[s.operator, str(s.bags), f"{s.suspect_rate * 100:.1f} %",
                 f"{s.median_decision_seconds:.1f} s", str(s.amendments)] for s in stats]
        self.table = _table(["Operator", "Bags", "Suspect rate", "Median decision time", "Amendments"], rows)
        chain = (f"chain OK: {verify.n_rows} rows, head {verify.head_hash[:16]}…" if verify.ok else
                 f"CHAIN BROKEN at row {verify.first_bad_row}: {verify.reason}")
        self.chain = QLabel(f"{db_path}\n{chain}")
        self.chain.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.chain.setStyleSheet("" if verify.ok else "color: #e53935; font-weight: bold;")
        self.lay.addWidget(self.table)
        self.lay.addWidget(self.chain)
        self.finish(640, 360)


MAX_SHOWN = 600  # characters in the dialog's text; the rest under "Show Details..."


def error_box(parent: QWidget, title: str, text: str) -> QMessageBox:
    """Non-blocking error dialog naming the fault; returned so callers (and tests) can inspect it.
    Long words get break points and long text is cut (in full under details), so the dialog
    stays narrower than the screen."""
    shown = breakable(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + " …")
    box = QMessageBox(QMessageBox.Icon.Critical, title, shown, QMessageBox.StandardButton.Ok, parent)
    if shown != text:
        box.setDetailedText(text)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.open()
    return box


def info_box(parent: QWidget, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.open()
    return box
