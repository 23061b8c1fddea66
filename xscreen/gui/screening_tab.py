"""The screening tab: one bag, its views and the detector's layers, driven by ``ViewState``.

The tab owns the display state and the current ``probe.Outcome``; each change goes through
``set_view_state`` which redraws only what the change touches (a new threshold re-runs
``heatmap.find_regions`` on the stored grid - no rescoring; an opacity change only sets the
layer's opacity).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QSplitter, QVBoxLayout, QWidget

from xscreen.gui import probe
from xscreen.gui import state as st
from xscreen.gui.controls import DecisionBar, ModelPanel, ProgressRow, QueuePanel
from xscreen.gui.legend import AlarmBanner, FunctionStrip, LegendRow
from xscreen.gui.notices import ElidedLabel, ErrorPanel
from xscreen.gui.verdict import failed_verdict, mode_text, verdict_for
from xscreen.gui.panels import DetectorPanel, DisplayPanel, RegionPanel
from xscreen.gui.scan_view import PAN_FRACTION, ZOOM_STEP, ScanView
from xscreen.gui.tab_images import ImageLayers
from xscreen.gui.wheel import scroll_not_change
from xscreen.gui.worker import JobRunner

_IMAGE_FIELDS = ("view", "edge", "window", "level", "gamma", "layer")
_NAV = {"nav.zoom_in": ("zoom", ZOOM_STEP), "nav.zoom_out": ("zoom", 1 / ZOOM_STEP),
        "nav.pan_left": ("pan", (-PAN_FRACTION, 0)), "nav.pan_right": ("pan", (PAN_FRACTION, 0)),
        "nav.pan_up": ("pan", (0, -PAN_FRACTION)), "nav.pan_down": ("pan", (0, PAN_FRACTION))}


class ScreeningTab(ImageLayers, QWidget):
    status = Signal(str)  # cursor probe text for the status bar
    state_changed = Signal(object)  # ViewState, so the window can persist preferences

    def __init__(self, state: st.ViewState | None = None, parent=None):
        super().__init__(parent)
        self.state = state or st.ViewState()
        self.outcome: probe.Outcome | None = None
        self.renderer: probe.Renderer | None = None
        self.recon_renderer: probe.Renderer | None = None
        self.regions: list = []
        self.selected: int | None = None
        self._residual_rgb: np.ndarray | None = None
        self._residual_scale: float | None = None
        self._build()
        self._sync_panels()

    def _build(self) -> None:
        self.view = ScanView()
        self.title = ElidedLabel("Open a scan (Ctrl+O) or a folder (Ctrl+Shift+O), or drop files here")
        self.title.setStyleSheet("font-weight: bold; padding: 4px;")
        self.models, self.display, self.queue_panel = ModelPanel(), DisplayPanel(), QueuePanel()
        self.detector, self.region_panel = DetectorPanel(), RegionPanel()
        self.progress, self.decisions, self.errors = ProgressRow(), DecisionBar(), ErrorPanel()
        self.banner, self.legend, self.functions = AlarmBanner(), LegendRow(), FunctionStrip()
        side = QWidget()
        col = QVBoxLayout(side)
        for w in (self.queue_panel, self.errors, self.models, self.detector, self.region_panel, self.display):
            col.addWidget(w)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(400)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.side_scroll, self.wheel = scroll, scroll_not_change(scroll)  # the wheel scrolls the panel
        left = QWidget()
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.functions)
        lcol.addLayout(header)
        lcol.addWidget(self.banner)
        lcol.addWidget(self.view, 1)
        lcol.addWidget(self.legend)
        lcol.addWidget(self.progress)
        lcol.addWidget(self.decisions)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(scroll)
        split.setStretchFactor(0, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(split)
        self.display.edit.connect(self._on_panel_edit)
        self.display.action.connect(self.handle)
        self.detector.edit.connect(self._on_panel_edit)
        self.region_panel.selected.connect(self.select_region)
        self.view.cursor_moved.connect(self._on_view_cursor_moved)
        self.renderer_jobs = JobRunner(self)
        self.renderer_jobs.done.connect(self._on_render_done)
        self.renderer_jobs.failed.connect(lambda key, msg: self.progress.set_busy(None))

    # --- data down -----------------------------------------------------------------------------
    def set_outcome(self, outcome: probe.Outcome | None, info: str = "") -> None:
        """Show a loaded (and possibly screened) scan; None clears the tab."""
        self.outcome = outcome
        self.selected = None
        self._residual_rgb = self._residual_scale = None
        self.renderer = self.recon_renderer = None
        self.status.emit("")  # the last bag's cursor readout must not stand for this one
        self.detector.set_mode(mode_text(self.screening))
        if outcome is None:
            self.banner.set_verdict(verdict_for(None, loaded=False))
            self.regions = []
            self.view.set_image(None)
            self.view.set_side(None)
            self.region_panel.set_regions([])
            self.title.setText(info or "no scan")
            self._sync_panels()
            return
        from xscreen.materials import available_views

        self.renderer, self.recon_renderer = outcome.renderer, outcome.recon_renderer
        self._residual_rgb = outcome.residual_rgb
        views = available_views(outcome.scan)
        self.display.set_available(views)
        self.state = st.for_scan(self.state, views)
        self.title.setText(info or outcome.scan.scan_id)
        self._redraw(image=True, layer=True, regions=True)
        self.view.fit()

    def set_failed(self, info: str, message: str) -> None:
        """The bag could not be read or scored: nothing shown, and the banner says it is not cleared."""
        self.set_outcome(None, info)
        self.banner.set_verdict(failed_verdict(message))

    @property
    def screening(self):
        return self.outcome.screening if self.outcome is not None else None

    @property
    def scale(self) -> probe.Scale | None:
        """The one scale (× alarm) with the live threshold on it; None before scoring."""
        s = self.screening
        return None if s is None else probe.scale_for(s, self.state.rel_threshold)

    # --- intent from keys and panels ----------------------------------------------------------------
    def handle(self, action: str) -> bool:
        """Apply a registry action that concerns this tab; False if it is not one of ours."""
        if action in _NAV:
            kind, arg = _NAV[action]
            self.view.zoom(arg) if kind == "zoom" else self.view.pan(*arg)
        elif action == "nav.fit":
            self.view.fit()
        elif action in ("region.next", "region.prev"):
            self._step_region(1 if action == "region.next" else -1)
        elif action.split(".")[0] in ("view", "layer", "threshold"):
            views = self.display_views()
            self.set_view_state(st.apply_action(self.state, action, views))
        else:
            return False
        return True

    def display_views(self) -> tuple[str, ...]:
        if self.outcome is None:
            return st.IMAGE_VIEWS
        from xscreen.materials import available_views

        return available_views(self.outcome.scan)

    def set_view_state(self, new: st.ViewState) -> None:
        old, self.state = self.state, new
        changed = {f.name for f in dataclasses.fields(new) if getattr(old, f.name) != getattr(new, f.name)}
        if not changed:
            return
        if changed == {"opacity"}:
            self.view.set_layer_opacity(new.opacity)
        else:
            self._redraw(image=bool(changed & set(_IMAGE_FIELDS)),
                         layer=bool(changed & {"overlay", "overlay_mode", "rel_threshold", "layer"}),
                         regions=bool(changed & {"rel_threshold", "boxes", "attention"}))
        self._sync_panels()
        self.state_changed.emit(new)

    def _on_panel_edit(self, changes: dict) -> None:
        self.set_view_state(dataclasses.replace(self.state, **changes))

    def _sync_panels(self) -> None:
        self.display.set_state(self.state)
        scale = self.scale
        self.detector.set_state(self.state, scale)
        self.legend.set_state(self.state, scale, self.outcome is not None)
        self.functions.set_state(self.state.view, self.state.edge, self.display_views())

    # --- drawing ---------------------------------------------------------------------------------
    def _redraw(self, image: bool, layer: bool, regions: bool) -> None:
        if self.outcome is None:
            return
        if image:
            self._draw_image()
        if layer:
            self._draw_layer()
        if regions:
            s = self.screening
            self.regions = probe.rethreshold(s, self.state.rel_threshold) if s is not None else []
            if not self.state.attention:  # the operator chose to see only what raises the alarm
                self.regions = [r for r in self.regions if r.level == "alarm"]
            self.selected = None
            self.region_panel.set_regions(self.regions)
            self.view.set_regions(self.regions, self.state.boxes)
            # the banner counts what is drawn; its headline stays the calibrated rule's
            self.banner.set_verdict(verdict_for(s, shown=self.regions, scale=self.scale))
        self._sync_panels()

    def overlay_shown(self) -> bool:
        return self.screening is not None and self.state.overlay and self.state.layer != "residual"

    def _draw_layer(self) -> None:
        if not self.overlay_shown():
            self.view.set_layer(None)
            return
        s = self.screening
        step = probe.layer_step(s.height, s.width)
        rgba = probe.overlay_rgba(s.heat, self.scale, self.state.overlay_mode, step)
        self.view.set_layer(rgba, self.state.opacity, (s.width, s.height))

    # --- regions ---------------------------------------------------------------------------------
    def _step_region(self, delta: int) -> None:
        if not self.regions:
            return
        rank = 1 if self.selected is None else (self.selected - 1 + delta) % len(self.regions) + 1
        self.select_region(rank)

    def select_region(self, rank: int) -> None:
        """Zoom to region ``rank`` (1-based) and show it in the patch inspector."""
        region = next((r for r in self.regions if r.rank == rank), None)
        if region is None:
            return
        self.selected = rank
        s = self.screening
        self.view.zoom_to(*probe.zoom_rect(region, s.width, s.height))
        self.view.set_regions(self.regions, self.state.boxes, selected=rank)
        self.region_panel.select_rank(rank)
        self.inspection = self.inspect(region)
        self.region_panel.set_inspection(self.inspection)

    def inspect(self, region) -> probe.Inspection:
        """Patch inspector content, rendered from the region's box only."""
        st_, box = self.state, (region.x, region.y, region.w, region.h)
        args = (st_.view, st_.window, st_.level, st_.gamma, st_.edge)
        recon = self.recon_renderer.crop(box, *args) if self.recon_renderer is not None else None
        x, y, w, h = box
        resid = probe.residual_rgb(self.screening.residual[y:y + h, x:x + w], self.residual_scale())
        return probe.Inspection(box, self.renderer.crop(box, *args), recon, resid, region.max_rel, region.mean_rel)

    def regions_shown(self) -> list[dict]:
        """The regions on screen as the audit row records them: rank, box, score × alarm, level."""
        return [{"rank": r.rank, "box": [r.x, r.y, r.w, r.h], "x_alarm": round(r.max_rel, 4), "level": r.level}
                for r in self.regions]

    def _on_view_cursor_moved(self, x: float, y: float) -> None:
        if self.outcome is None:
            return
        s, scale = self.screening, self.scale
        info = probe.cursor_info(self.outcome.scan, x, y, None if s is None else s.heat,
                                 1.0 if scale is None else scale.review)
        if info is not None:
            self.status.emit(info.text(self.outcome.scan.kind))
