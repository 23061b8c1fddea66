"""Dialogs: keyboard cheat sheet (F1), supervisor statistics, errors. All non-modal (``open``), so
neither the operator's flow nor a test ever blocks on one."""
from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QGridLayout, QHeaderView, QLabel, QMessageBox,
                               QPlainTextEdit, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from xscreen.gui import shortcuts
from xscreen.gui.notices import breakable, fit_size


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
        """Close button; size ``width`` x ``height`` (0: as the content asks), within the screen."""
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.lay.addWidget(buttons)
        hint = self.sizeHint()
        screen = self.screen().availableGeometry()
        self.resize(*fit_size((width or hint.width(), height or hint.height()),
                              (screen.width(), screen.height())))


def column_of(index: int, heights: list[int], columns: int) -> int:
    """Column of block ``index`` when blocks of ``heights`` are split, in order, into ``columns``
    columns with the tallest column as short as possible (few groups: try every split)."""
    from itertools import combinations

    n = len(heights)
    best = min(combinations(range(1, n), columns - 1),
               key=lambda cuts: max(sum(heights[a:b]) for a, b in zip((0, *cuts), (*cuts, n))))
    return sum(index >= cut for cut in best)


class CheatSheet(_Dialog):
    """Every shortcut from the registry, grouped in columns so the whole sheet is read at a glance
    without scrolling (one long table needed it); the same list the README shows."""

    COLUMNS = 3

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Keyboard shortcuts", parent)
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        self.group_labels: list[QLabel] = []
        groups = shortcuts.groups()
        columns: list[list[str]] = [[] for _ in range(self.COLUMNS)]
        for group_index, (group, items) in enumerate(groups):
            rows = "".join(f"<tr><td style='padding-right:10px'><b>{escape(sc.keys)}</b></td>"
                           f"<td>{escape(sc.label)}</td></tr>" for sc in items)
            col = column_of(group_index, [len(items) + 2 for _, items in groups], self.COLUMNS)
            columns[col].append(f"<h4 style='margin:6px 0 2px 0'>{escape(group)}</h4><table>{rows}</table>")
        for i, parts in enumerate(columns):
            label = QLabel("".join(parts))
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setAlignment(Qt.AlignmentFlag.AlignTop)
            grid.addWidget(label, 0, i)
            self.group_labels.append(label)
        self.lay.addLayout(grid)
        self.finish(0, 0)
        self.adjustSize()


class TextDialog(_Dialog):
    """Read-only, scrollable, selectable text (the full model card)."""

    def __init__(self, title: str, text: str, parent: QWidget | None = None):
        super().__init__(title, parent)
        self.text = QPlainTextEdit(text)
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.lay.addWidget(self.text)
        self.finish(760, 620)


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
