"""Text that must never widen the window: a one-line label that elides, the list of files that
could not be opened (non-modal: a queue of bad files is one list, not one dialog per file), and
the window's first size clipped to the screen."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (QGroupBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QSizePolicy, QVBoxLayout)

LONG_WORD = 60  # characters: longer runs (paths, hashes) get break points so they wrap


def breakable(text: str, every: int = LONG_WORD) -> str:
    """``text`` with zero-width spaces inside words longer than ``every`` characters - after each
    path separator, and every ``every`` characters of a longer run - so a word wrap can break a
    long path instead of widening the dialog. File names shorter than that stay whole."""
    zw = "\u200b"

    def split_run(run: str) -> str:
        return zw.join(run[i:i + every] for i in range(0, len(run), every)) or run

    out = []
    for word in text.split(" "):
        if len(word) > every:
            word = word.replace("/", "/" + zw).replace("\\", "\\" + zw)
            word = zw.join(split_run(run) for run in word.split(zw))
        out.append(word)
    return " ".join(out)


def fit_size(wanted: tuple[int, int], available: tuple[int, int], margin: float = 0.95) -> tuple[int, int]:
    """The window's first size: ``wanted``, shrunk to ``margin`` of the available screen area."""
    return (min(wanted[0], int(available[0] * margin)), min(wanted[1], int(available[1] * margin)))


class ElidedLabel(QLabel):
    """One line; text longer than the width is elided (in the middle unless ``mode`` says otherwise;
    the full text in the tooltip), and the size hint never asks for more than a few characters."""

    def __init__(self, text: str = "", parent=None, mode: Qt.TextElideMode = Qt.TextElideMode.ElideMiddle):
        super().__init__(parent)
        self.mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        super().setText(text)
        self.setToolTip(text if len(text) > 40 else "")

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(40, super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(min(super().sizeHint().width(), 400), super().sizeHint().height())

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        rect = self.contentsRect().adjusted(self.margin(), 0, -self.margin(), 0)
        shown = self.fontMetrics().elidedText(self.text(), self.mode, rect.width())
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft), shown)


class ErrorPanel(QGroupBox):
    """Files that could not be opened, one row each (name: fault; the full text in the tooltip).
    Hidden while empty; a file that fails again replaces its row."""

    def __init__(self, parent=None):
        super().__init__("Could not open", parent)
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setMaximumHeight(110)
        self.clear_button = QPushButton("Clear list")
        self.clear_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.clear_button)
        lay = QVBoxLayout(self)
        lay.addWidget(self.list)
        lay.addLayout(row)
        self.clear_button.clicked.connect(self.clear)
        self.setVisible(False)

    def add(self, path: str | Path, message: str) -> None:
        path = str(path)
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == path:
                self.list.takeItem(i)
                break
        first_line = message.strip().splitlines()[0] if message.strip() else "unreadable"
        first_line = first_line.removeprefix(f"{path}: ")  # the row already names the file
        item = QListWidgetItem(f"{Path(path).name}: {first_line}")
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(breakable(message))
        self.list.insertItem(0, item)
        self.setTitle(f"Could not open ({self.list.count()})")
        self.setVisible(True)

    def paths(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def clear(self) -> None:
        self.list.clear()
        self.setVisible(False)
