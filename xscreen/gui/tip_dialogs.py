"""TIP dialogs: the supervisor's setting (behind the supervisor password, whoever is signed in) and
the TIP statistics page (per operator and category: hit rate, false-alarm rate, Wilson intervals, d')."""
from __future__ import annotations

import math

from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QGridLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from xscreen.tip.fti import CATEGORIES
from xscreen.tip.stats import TipStats
from xscreen.tip.supervisor import SupervisorStore, TipSettings, TipSettingsError


def _password_field() -> QLineEdit:
    f = QLineEdit()
    f.setEchoMode(QLineEdit.EchoMode.Password)
    return f


class TipSettingsDialog(QDialog):
    """Change the TIP setting: the supervisor's name and password are asked every time (an operator's
    sign-in gives no access). With no password set yet, the first supervisor sets one here."""

    def __init__(self, store: SupervisorStore, operator: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("TIP settings (supervisor)")
        self.store, self.operator, self.saved = store, operator, None
        self.first = not store.has_password()
        self.who, self.password, self.repeat, self.new_password = QLineEdit(), _password_field(), \
            _password_field(), _password_field()
        current = store.settings()
        self.enabled = QCheckBox("TIP on: project threat images into some live bags")
        self.enabled.setChecked(current.enabled)
        self.rate = QSpinBox()
        self.rate.setRange(1, 100000)
        self.rate.setPrefix("1 in ")
        self.rate.setSuffix(" bags (drawn at random per bag)")
        self.rate.setValue(current.rate)
        self.cats = {c: QCheckBox(c.replace("_", " ")) for c in CATEGORIES}
        for c, box in self.cats.items():
            box.setChecked(not current.categories or c in current.categories)
        self.library = QLineEdit(current.library)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #c62828;")
        self._layout()

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Supervisor name", self.who)
        if self.first:
            form.addRow(QLabel("No supervisor password is set yet: choose one (at least 8 characters)."))
            form.addRow("New supervisor password", self.password)
            form.addRow("Repeat it", self.repeat)
        else:
            form.addRow("Supervisor password", self.password)
            form.addRow("New password (optional)", self.new_password)
            form.addRow("Repeat new password", self.repeat)
        form.addRow(self.enabled)
        form.addRow("Rate", self.rate)
        grid, cats = QGridLayout(), QWidget()
        for i, box in enumerate(self.cats.values()):
            grid.addWidget(box, i // 3, i % 3)
        cats.setLayout(grid)
        form.addRow("Categories", cats)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        lib = QHBoxLayout()
        lib.addWidget(self.library, 1)
        lib.addWidget(browse)
        form.addRow("TIP library folder", lib)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addLayout(form)
        col.addWidget(self.message)
        col.addWidget(buttons)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "TIP library folder", self.library.text())
        if folder:
            self.library.setText(folder)

    def settings(self) -> TipSettings:
        chosen = tuple(c for c, box in self.cats.items() if box.isChecked())
        return TipSettings(self.enabled.isChecked(), int(self.rate.value()),
                           () if len(chosen) == len(CATEGORIES) else chosen, self.library.text().strip())

    def submit(self) -> bool:
        """Check the password, then save (the change is logged); refused: the reason stays on the dialog."""
        try:
            self.saved = self._save()
        except (TipSettingsError, ValueError) as exc:
            self.message.setText(f"Not saved: {exc}")
            self.password.clear()
            return False
        self.accept()
        return True

    def _save(self) -> TipSettings:
        who, pw, new, again = (self.who.text(), self.password.text(), self.new_password.text(), self.repeat.text())
        if not self.who.text().strip():
            raise TipSettingsError("the supervisor's name is required (it goes into the change log)")
        s = self.settings().checked()  # a bad setting is refused before any password is set
        if s.enabled:
            from xscreen.tip import TipError, load_library
            try:
                lib = load_library(s.library)
            except TipError as exc:
                raise TipSettingsError(f"TIP library unusable: {exc}") from exc
            if not lib.ftis:
                raise TipSettingsError(f"{s.library}: the TIP library holds no threat images")
        if self.first:
            if pw != again:
                raise TipSettingsError("the two passwords differ")
            self.store.set_password(pw, old=None, who=who, operator=self.operator)
        saved = self.store.save(s, password=pw, who=who, operator=self.operator)
        if not self.first and new:
            if new != again:
                raise TipSettingsError("setting saved; the two new passwords differ, password unchanged")
            self.store.set_password(new, old=pw, who=who, operator=self.operator)
        return saved


def _rate_text(rate: float, lo: float, hi: float) -> str:
    return "-" if math.isnan(rate) else f"{rate:.2f} [{lo:.2f}, {hi:.2f}]"


def stats_table_rows(stats: TipStats) -> list[list[str]]:
    """Per group: operator, category, TIP events, hit rate [95 % Wilson], false alarms / bags,
    false-alarm rate [95 %], d', warning ('*' = all)."""
    return [[g.operator, g.category, str(g.events), _rate_text(g.hit.rate, g.hit.lo, g.hit.hi),
             f"{g.false_alarm.k}/{g.false_alarm.n}",
             _rate_text(g.false_alarm.rate, g.false_alarm.lo, g.false_alarm.hi),
             "-" if math.isnan(g.d_prime) else f"{g.d_prime:.2f}", g.warning] for g in stats.groups]


HEADERS = ["operator", "category", "TIP events", "hit rate [95% CI]", "false alarms / real bags",
           "false-alarm rate [95% CI]", "d'", "note"]


class TipStatsDialog(QDialog):
    """The TIP statistics page of the audit database at ``db_path``."""

    def __init__(self, stats: TipStats, db_path: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("TIP statistics")
        self.rows = stats_table_rows(stats)
        self.table = QTableWidget(len(self.rows), len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        for i, row in enumerate(self.rows):
            for j, text in enumerate(row):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        notes = QLabel("\n".join([f"Audit database: {db_path}", "'*' = all. Hit rate on TIP images; false-alarm "
                                  "rate on real bags (suspect or unresolved)."] + stats.notes))
        notes.setWordWrap(True)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addWidget(self.table, 1)
        col.addWidget(notes)
        col.addWidget(close)
        self.resize(1000, 420)
