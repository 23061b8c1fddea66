"""TIP at the operator console (a mixin of ``MainWindow``, first in its bases): some bags are first
shown as TIP images; the operator's decision key on one is a TIP response, recorded as a TIP event,
answered with feedback, and followed by the real bag for the real decision.

It wraps three of the window's methods and calls through to them for everything else: ``request``
(a bag drawn for TIP is screened as its TIP image by a runner of its own; its result never enters
the window's cache), ``decide`` (a key on a TIP image never reaches the bag's decision) and
``sign_out`` (a trial in progress is dropped; the real bag stays undecided and comes back as itself).
The core of it, without Qt, is ``xscreen.tip.console``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QKeySequence, QShortcut

from xscreen.gui import session
from xscreen.gui.tip_feedback import TipFeedbackPanel, outline_items
from xscreen.gui.worker import JobRunner
from xscreen.tip.console import TipConsole
from xscreen.tip.supervisor import SupervisorStore, TipSettings, TipSettingsError


class TipHandling:
    """Expects MainWindow's ``tab``, ``queue``, ``cache``, ``timer``, ``operator``, ``audit_path``,
    ``model_path`` and the bag flow of ``files.FileHandling`` / ``deciding.DecisionHandling``."""

    tip_console: TipConsole | None = None
    tip_pending: str | None = None  # the bag whose TIP image is being screened
    tip_row: int | None = None  # the last TIP event written (tests read it)
    _tip_outcome = None  # the last TIP image shown (probe.Outcome)

    def _build_tip(self, store_path: str | Path | None = None) -> None:
        self.tip_store = SupervisorStore(store_path)
        self.tip_runner = JobRunner(self)
        self.tip_runner.done.connect(self._on_tip_job_done)
        self.tip_runner.failed.connect(self._on_tip_job_failed)
        self.tip_runner.cancelled.connect(lambda key: self._tip_pre.pop(key, None))
        self.tip_runner.idle.connect(self._prescore_next)
        self.tip_panel = TipFeedbackPanel()
        self.tip_panel.real_bag.connect(self._on_tip_panel_real_bag)
        column = self.tab.banner.parentWidget().layout()
        column.insertWidget(column.indexOf(self.tab.banner) + 1, self.tip_panel)
        self._tip_items: list = []
        self._tip_pre: dict[str, tuple[str, str]] = {}  # job key -> (bag, scoring id) of TIP images made ahead
        self._tip_ready: dict[str, tuple[str, object]] = {}  # bag -> (scoring id, tip_job.TipShown)
        self.tip_keys = [QShortcut(QKeySequence(k), self) for k in ("Return", "Enter")]
        for key in self.tip_keys:
            key.setEnabled(False)
            key.activated.connect(self._on_tip_panel_real_bag)
        menu = self.menuBar().addMenu("TIP")
        menu.addAction("TIP settings (supervisor password)…").triggered.connect(self.show_tip_settings)
        menu.addAction("TIP statistics…").triggered.connect(self.show_tip_stats)
        self.load_tip_settings()

    def load_tip_settings(self) -> None:
        """The supervisor's setting in force; an unusable file switches TIP off (and says so)."""
        try:
            settings = self.tip_store.settings()
        except TipSettingsError as exc:
            settings = TipSettings()
            self.statusBar().showMessage(f"TIP off: {exc}", 15000)
        if self.tip_console is None:
            self.tip_console = TipConsole(settings)
        else:  # in place: the trial on screen and the bags drawn so far stay as they are
            self.tip_console.settings, self.tip_console._library = settings, None

    # --- the bag flow ---------------------------------------------------------------------------
    def request(self, path, force: bool = False) -> None:
        c = self.tip_console
        if path is None or c is None:
            return super().request(path, force)
        key, trial = str(path), c.on_screen()
        if trial is not None and trial.bag == key:
            return  # the TIP image (or its feedback) stays until the operator moves on
        if trial is not None or (self.tip_pending and self.tip_pending != key):
            self._drop_tip()  # another bag chosen: the trial goes, its bag stays undecided
        if self.tip_pending == key:
            return
        if key in c.drawn or self._tip_draw(path):
            return self._show_tip(path)
        super().request(path, force)

    def _tip_draw(self, path) -> bool:
        """The draw for ``path`` (once per bag): only signed in, with a model, for an undecided bag."""
        return bool(self.operator.signed_in and self.model_path) and \
            self.tip_console.wants_tip(str(path), decided=self.queue.decision(path) is not None)

    def _prescore_next(self) -> None:
        """The next bag is drawn when it is pre-scored, and its TIP image made then: a TIP bag comes
        up as fast as any pre-scored bag (a slower one would tell it apart)."""
        super()._prescore_next()
        c, nxt = self.tip_console, self.queue.peek_next()
        if c is None or nxt is None or self.tip_runner.running is not None or self.tip_pending is not None:
            return
        key = str(nxt)
        if key not in self._tip_ready and (key in c.drawn or self._tip_draw(nxt)):
            job = f"pre|{key}"
            self._tip_pre[job] = (key, self.scoring_id())
            self._run_tip_job(job, nxt, None)

    def _show_tip(self, path) -> None:
        key = str(path)
        self.failed_path, self.target = None, f"tip|{key}"  # the real bag's own results are not shown meanwhile
        sid, shown = self._tip_ready.pop(key, (None, None))
        if shown is not None and sid == self.scoring_id():
            return self._begin_tip(shown)
        self.tip_pending = key
        self.tab.set_outcome(None, f"loading {Path(path).name} …")  # as for any bag being scored
        self.show_decisions()
        self.update_actions()
        self.tab.progress.set_busy(Path(path).name, 0.0)
        if self.tip_runner.running != f"pre|{key}":  # else the image being made ahead is this one
            self._run_tip_job(self.target, path, self.cache.get(path, self.scoring_id()))

    def _run_tip_job(self, key: str, path, cached) -> None:
        from xscreen.gui import tip_job

        scorer, cfg, view, console = self.scorer_factory(), self.screen_config(), self.tab.state.view, self.tip_console
        self.tip_runner.start(key, lambda: tip_job.tip_screen_job(path, console, scorer, cfg, view, cached))

    def _on_tip_job_done(self, key: str, shown) -> None:
        if key in self._tip_pre:  # made ahead for the next bag
            bag, sid = self._tip_pre.pop(key)
            if bag != self.tip_pending:  # (its bag already waiting on screen: shown at once below)
                self._tip_ready = {bag: (sid, shown)}  # one at most: a Screening is large
                return
        elif key != getattr(self, "target", None) or self.tip_pending is None:
            return  # the operator moved on meanwhile
        self.tip_pending = None
        self.tab.progress.set_busy(None)
        self._begin_tip(shown)

    def _begin_tip(self, shown) -> None:
        self.tip_console.begin(shown.trial)
        self._tip_outcome = shown.outcome  # by identity: this image is never decided as a bag
        self._show(shown.outcome)  # shown like any bag: nothing tells it apart until the response
        path = shown.trial.bag
        if self.runner.running is None and self.cache.get(path, self.scoring_id()) is None:
            self.runner.start(self.job_key(path), self._job(path))  # the real bag, scored meanwhile

    def _on_tip_job_failed(self, key: str, message: str) -> None:
        bag = self._tip_pre.pop(key, (None,))[0] or (self.tip_pending if key == getattr(self, "target", None) else None)
        if bag is None:
            return
        self.tip_console.drawn.discard(bag)  # no TIP image for this bag: it comes as itself
        print(f"TIP skipped for {bag}: {message}", file=sys.stderr)  # for the supervisor, not the operator
        if bag == self.tip_pending:
            self.tip_pending = None
            self.request(bag)

    def _drop_tip(self) -> None:
        if self.tip_pending is not None:
            self.tip_runner.cancel()
        self.tip_pending = None
        self.tip_console.abandon()
        self._clear_tip_feedback()

    def _clear_tip_feedback(self) -> None:
        for item in self._tip_items:
            self.tab.view.view.removeItem(item)
        self._tip_items = []
        self.tip_panel.hide()
        for key in self.tip_keys:
            key.setEnabled(False)

    # --- the operator's response ------------------------------------------------------------------
    def decide(self, action: str):
        trial = self.tip_console.on_screen() if self.tip_console is not None else None
        if trial is None and self.tab.outcome is not None and self.tab.outcome is self._tip_outcome:
            self.statusBar().showMessage("decision key ignored", 3000)  # a TIP image is never a bag's decision
            return None
        if trial is None or action not in session.DECISIONS:
            return super().decide(action)
        if trial.phase == "feedback":
            self.statusBar().showMessage("TIP feedback: press Enter for the real bag, then decide", 5000)
            return None
        shown_for = self.timer.elapsed()
        if action == "decide.unreadable" or not self.can_decide(action) or (
                shown_for is not None and shown_for < self.min_view_seconds):
            self.statusBar().showMessage("decision key ignored", 3000)
            return None
        return self._tip_respond(action)

    def _tip_respond(self, action: str) -> int | None:
        from xscreen.audit import AuditLog, TipEvent

        tab, s = self.tab, self.tab.screening
        region = next((r for r in tab.regions if r.rank == tab.selected), None)
        result = self.tip_console.respond(
            action, operator=self.operator.name, seconds=self.timer.elapsed() or 0.0, model_id=s.model_id,
            threshold=s.scan_threshold, live_threshold=tab.scale.live * s.scan_threshold if tab.scale.moved else None,
            regions_shown=tab.regions_shown(), selected_box=None if region is None else (region.x, region.y,
                                                                                       region.w, region.h))
        self.tip_row = None
        try:
            with AuditLog(self.audit_path) as log:
                self.tip_row = log.record_tip(TipEvent(**result.event_fields()))
        except Exception as exc:  # AuditError: the feedback still follows, the loss is said loudly
            self.show_error("TIP event NOT recorded", str(exc))
        p = self.tip_console.on_screen().tip.projected
        self._tip_items = outline_items(p.mask, result.detected, p.box)
        for item in self._tip_items:
            tab.view.view.addItem(item)
        self.tip_panel.show_result(result)
        tab.decisions.set_enabled(False, False)  # the decision keys wait for the real bag
        for key in self.tip_keys:
            key.setEnabled(True)
        return self.tip_row

    def _on_tip_panel_real_bag(self) -> None:
        """After the feedback: the real bag, without the threat, for the real decision."""
        if self.tip_console is None or self.tip_console.on_screen() is None:
            return
        path = self.tip_console.finish()
        self._clear_tip_feedback()
        self.tab.set_outcome(None, f"loading {Path(path).name} …")  # the real bag is timed from its own showing
        self.request(path)

    def sign_out(self, *args, **kwargs) -> None:
        super().sign_out(*args, **kwargs)
        c = self.tip_console
        trial = c.on_screen() if c is not None else None
        path = trial.bag if trial is not None else self.tip_pending
        if path is not None:  # between the TIP image and the real decision: the real bag, undecided
            self._drop_tip()
            self.tab.set_outcome(None, "")
            self.request(path)

    # --- supervisor and statistics ------------------------------------------------------------------
    def show_tip_settings(self) -> None:
        from xscreen.gui.tip_dialogs import TipSettingsDialog

        try:
            self.dialog = TipSettingsDialog(self.tip_store, self.operator.name, self)
        except TipSettingsError as exc:
            self.show_error("TIP settings unusable", str(exc))
            return
        self.dialog.accepted.connect(self.load_tip_settings)
        self.dialog.open()

    def show_tip_stats(self) -> None:
        from xscreen.audit import AuditLog
        from xscreen.gui.tip_dialogs import TipStatsDialog
        from xscreen.tip.stats import tip_stats

        try:
            with AuditLog(self.audit_path) as log:
                stats, where = tip_stats(log.rows()), str(log.path)
        except Exception as exc:
            self.show_error("TIP statistics", str(exc))
            return
        self.dialog = TipStatsDialog(stats, where, self)
        self.dialog.open()
