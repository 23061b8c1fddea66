"""The main window's bag flow (a mixin of ``MainWindow``): opening files, folders and drops, the
queue with background pre-scoring of the next bag, the screening mode (exact or fast, coarse-to-fine),
and worker results (decisions: ``deciding``)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from xscreen.gui import probe, session

SCAN_FILTER = "Scans (*.h5 *.hdf5 *.tif *.tiff *.png *.jpg *.jpeg *.bmp *.dcs *.dcm);;All files (*)"
FAST_TIP = ("Scores fewer patches: coarse first, then only around suspect areas. Same regions in our "
            "checks; the heat map is coarse away from them. Keep off for evaluation.")


class FileHandling:
    """Expects the attributes MainWindow sets up (queue, cache, runner, tab, timer, settings...)."""

    # --- opening -------------------------------------------------------------------------------
    def ask_open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open scan", self.setting("files/last_folder"), SCAN_FILTER)
        if path:
            self.open_path(path)

    def ask_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open folder of scans", self.setting("files/last_folder"))
        if path:
            self.open_path(path)

    def ask_open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", "Models (*.xsm);;All files (*)")
        if path:
            self.set_model(path)

    def open_path(self, path: str | Path) -> None:
        """A folder becomes the bag queue; a file a one-bag queue. A missing or empty folder is an
        error dialog, never an exception."""
        p = Path(path)
        if p.is_dir():
            try:
                queue = session.BagQueue.from_folder(p)
            except Exception as exc:  # ScanError / OSError naming the folder
                self.show_error("Cannot open folder", str(exc))
                return
            if not queue.paths:
                self.show_error("Cannot open folder", f"{p}: no scan files in this folder")
                return
            self.put_setting("files/last_folder", str(p))
        else:
            queue = session.BagQueue([p], 0)
            self.put_setting("files/last_folder", str(p.parent))
            self.put_setting("files/recent", session.add_recent(self.setting("files/recent"), p))
            self._update_recent_menu()
        self.queue = queue
        self.look_up_queue()
        self.request(queue.current)

    def open_paths(self, paths: list[Path]) -> None:
        """Dropped items: one folder opens as a queue, several files become the queue."""
        if len(paths) == 1:
            self.open_path(paths[0])
        elif paths:
            self.queue = session.BagQueue([Path(p) for p in paths], 0)
            self.look_up_queue()
            self.request(self.queue.current)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.open_paths([Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()])
        event.acceptProposedAction()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        for p in self.setting("files/recent"):
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, path=p: self.open_path(path))
        self.recent_menu.setEnabled(bool(self.setting("files/recent")))

    def step_queue(self, delta: int) -> None:
        path = self.queue.step(delta)
        if path is None:
            self.statusBar().showMessage("no more bags in this direction", 3000)
            return
        self.request(path)

    # --- scoring -----------------------------------------------------------------------------------
    def scoring_id(self) -> str:
        """What a result depends on besides the bag: the model and the screening mode (a bag
        screened fast must never be shown as the exact result, nor the other way round)."""
        return f"{self.model_path}#fast" if self.model_path and self.setting("screening/fast") else self.model_path

    def screen_config(self):
        """ScreenConfig of the screening mode: exact (default) or coarse-to-fine (cascade.py)."""
        from xscreen.cascade import AUTO
        from xscreen.config import ScreenConfig

        return ScreenConfig(cascade=AUTO if self.setting("screening/fast") else 0.0)

    def _build_fast_action(self, menu) -> QAction:
        """The screening mode switch: a setting, not a key (the registry holds keys)."""
        act = QAction("Fast screening (coarse-to-fine)", self)
        act.setCheckable(True)
        act.setChecked(self.setting("screening/fast"))
        act.setStatusTip(FAST_TIP)
        act.setToolTip(FAST_TIP)
        act.toggled.connect(self.set_fast_screening)
        menu.addSeparator()
        menu.addAction(act)
        return act

    def set_fast_screening(self, on: bool) -> None:
        """Switch the screening mode (kept in the settings); the bag on screen is screened in it."""
        self.put_setting("screening/fast", bool(on))
        self.fast_action.blockSignals(True)  # the menu follows a switch made from code, once
        self.fast_action.setChecked(bool(on))
        self.fast_action.blockSignals(False)
        if self.queue.current is not None:
            self.request(self.queue.current)

    def job_key(self, path: Path | str) -> str:
        return f"{path}|{self.scoring_id()}"

    def request(self, path: Path | str | None, force: bool = False) -> None:
        """Show ``path``: from the cache, by waiting for the pre-scoring job, or by starting a job."""
        if path is None:
            return
        self.failed_path = None
        self.target = self.job_key(path)
        cached = None if force else self.cache.get(path, self.scoring_id())
        plan = session.plan_scoring(self.target, cached is not None, self.runner.running)
        if plan == "show":
            self._show(cached)
            self._prescore_next()
            return
        self.tab.set_outcome(None, f"loading {Path(path).name} …")
        self.show_decisions()
        self.update_actions()
        if plan != "wait":
            self.runner.start(self.target, self._job(path))
        self.tab.progress.set_busy(f"{Path(path).name}", 0.0)

    def _job(self, path):
        scorer, cfg, view = self.scorer_factory(), self.screen_config(), self.tab.state.view
        return lambda: probe.screen_job(path, scorer, cfg, view=view)

    def rescore(self) -> None:
        self.request(self.queue.current, force=True)

    def cancel_scoring(self) -> None:
        self.runner.cancel()
        self.tab.progress.set_busy(None)

    def _prescore_next(self) -> None:
        nxt = self.queue.peek_next()
        if nxt is None or str(nxt) in self.tab.errors.paths():
            return  # a failed file is not cached: retrying it here would loop on every idle
        if self.runner.running is None and self.cache.get(nxt, self.scoring_id()) is None:
            self.runner.start(self.job_key(nxt), self._job(nxt))

    def _on_job_item(self, key: str, item) -> None:
        if key != getattr(self, "target", None):
            return  # pre-scoring in the background: nothing to show yet
        if isinstance(item, probe.JobStep):
            stage = {"load": "loading", "score": "scoring", "done": "done"}[item.stage]
            self.tab.progress.set_busy(f"{stage} {Path(item.path).name}", None if item.stage == "score" else item.fraction)
        elif isinstance(item, probe.Outcome) and item.screening is None and self.tab.outcome is None:
            self._show(item)  # the plain image first, the detector's layers when scoring ends

    def _on_job_done(self, key: str, outcome) -> None:
        if isinstance(outcome, probe.Outcome):
            self.cache.put(outcome.path, key.rsplit("|", 1)[1], outcome)
            if key == getattr(self, "target", None):
                self._show(outcome)
                self.tab.progress.set_busy(None)

    def _on_job_failed(self, key: str, message: str) -> None:
        """A bad file goes to the tab's non-modal list (a queue of bad files is one list, not a
        dialog each) and out of the recent files; the window carries on."""
        path = key.rsplit("|", 1)[0]
        self.tab.errors.add(path, message)
        self.forget_recent(path)
        if key != getattr(self, "target", None):
            return  # pre-scoring the next bag: listed now, shown when the operator gets to it
        self.tab.progress.set_busy(None)
        self.tab.set_failed(f"{Path(path).name}   [{self.queue.position()}]   could not open",
                            message.removeprefix(f"{path}: "))
        self.failed_path = path  # X disposes of it: unreadable -> re-scan / hand search
        self.timer.start(path)
        self.statusBar().showMessage(f"could not open {Path(path).name} (listed under 'Could not open')", 10000)
        self.show_decisions()
        self.update_actions()

    def forget_recent(self, path: str | Path) -> None:
        recent = self.setting("files/recent")
        kept = [p for p in recent if Path(p) != Path(path)]
        if kept != recent:
            self.put_setting("files/recent", kept)
            self._update_recent_menu()

    def _on_job_cancelled(self, key: str) -> None:
        if key == getattr(self, "target", None):
            self.tab.progress.set_busy(None)
            self.statusBar().showMessage("scoring cancelled", 3000)

    def _show(self, outcome: probe.Outcome) -> None:
        first_view = self.tab.outcome is None or self.tab.outcome.path != outcome.path
        info = f"{outcome.scan.scan_id}   [{self.queue.position()}]"  # the verdict: the tab's banner
        self.tab.set_outcome(outcome, info)
        if first_view:
            self.timer.start(outcome.path)  # the clock runs from the bag first being shown
        self.load_bag_decision()  # also after scoring: the decision bar says what a key will do
        self.update_actions()
