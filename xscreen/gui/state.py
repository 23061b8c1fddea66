"""Display state of the screening view and its transitions; the settings schema (no Qt).

The widgets only render a ``ViewState``; every key or control produces a new state through
``apply_action`` so the transitions are tested without a display.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

IMAGE_VIEWS = ("pseudo", "gray", "negative", "high_pen", "organic", "inorganic")
LAYERS = ("image", "reconstruction", "residual", "side")
OVERLAY_MODES = ("fill", "contour")
OPACITY_STEP = 0.1
GAMMA_STEP = 1.15  # multiplicative: equal perceived steps up and down
GAMMA_RANGE = (0.2, 5.0)
THRESHOLD_STEP = 1.1  # threshold slider moves in 10 % steps of the model's calibrated threshold
THRESHOLD_RANGE = (0.25, 4.0)
WINDOW_STEP = 1.2


@dataclass(frozen=True)
class ViewState:
    """What the operator sees. ``window``/``level`` are None for the view's automatic range;
    ``rel_threshold`` multiplies the model's calibrated threshold (1.0 = as calibrated)."""

    view: str = "pseudo"
    edge: bool = False
    window: float | None = None
    level: float | None = None
    gamma: float = 1.0
    layer: str = "image"
    overlay: bool = True
    overlay_mode: str = "fill"
    opacity: float = 0.5
    boxes: bool = True
    attention: bool = True  # show regions below the alarm threshold ("attention"), issue 13
    rel_threshold: float = 1.0


def _clip(v: float, lo_hi: tuple[float, float]) -> float:
    return float(min(max(v, lo_hi[0]), lo_hi[1]))


def _cycle(values: tuple[str, ...], current: str) -> str:
    return values[(values.index(current) + 1) % len(values)] if current in values else values[0]


def _set_view(s: ViewState, view: str, available: tuple[str, ...]) -> ViewState:
    # A view the scan cannot show (two-energy views on an RGB image) leaves the state alone.
    return dataclasses.replace(s, view=view, layer="image") if view in available else s


def _scale_window(s: ViewState, factor: float, auto_window: float) -> ViewState:
    window = (s.window if s.window is not None else auto_window) * factor
    return dataclasses.replace(s, window=max(window, 1e-3))


def _transitions(auto_window: float) -> dict[str, Callable[[ViewState], ViewState]]:
    rep = dataclasses.replace
    return {
        "view.edge": lambda s: rep(s, edge=not s.edge),
        "view.reset_display": lambda s: rep(s, window=None, level=None, gamma=1.0),
        "view.gamma_up": lambda s: rep(s, gamma=_clip(s.gamma * GAMMA_STEP, GAMMA_RANGE)),
        "view.gamma_down": lambda s: rep(s, gamma=_clip(s.gamma / GAMMA_STEP, GAMMA_RANGE)),
        "view.window_wider": lambda s: _scale_window(s, WINDOW_STEP, auto_window),
        "view.window_narrower": lambda s: _scale_window(s, 1 / WINDOW_STEP, auto_window),
        "layer.overlay": lambda s: rep(s, overlay=not s.overlay),
        "layer.mode": lambda s: rep(s, overlay_mode=_cycle(OVERLAY_MODES, s.overlay_mode)),
        "layer.opacity_up": lambda s: rep(s, opacity=_clip(round(s.opacity + OPACITY_STEP, 3), (0, 1))),
        "layer.opacity_down": lambda s: rep(s, opacity=_clip(round(s.opacity - OPACITY_STEP, 3), (0, 1))),
        "layer.image": lambda s: rep(s, layer="image"),
        "layer.reconstruction": lambda s: rep(s, layer="image" if s.layer == "reconstruction" else "reconstruction"),
        "layer.residual": lambda s: rep(s, layer="image" if s.layer == "residual" else "residual"),
        "layer.side": lambda s: rep(s, layer="image" if s.layer == "side" else "side"),
        "layer.boxes": lambda s: rep(s, boxes=not s.boxes),
        "threshold.up": lambda s: rep(s, rel_threshold=_clip(s.rel_threshold * THRESHOLD_STEP, THRESHOLD_RANGE)),
        "threshold.down": lambda s: rep(s, rel_threshold=_clip(s.rel_threshold / THRESHOLD_STEP, THRESHOLD_RANGE)),
        "threshold.reset": lambda s: rep(s, rel_threshold=1.0),
    }


def apply_action(state: ViewState, action: str, available_views: tuple[str, ...] = IMAGE_VIEWS,
                 auto_window: float = 1.0) -> ViewState:
    """New state after a shortcut action (ids from ``shortcuts.SHORTCUTS``); unknown ids return
    ``state`` unchanged so non-view actions can pass through safely. ``auto_window`` is the
    automatic window width the first manual window step starts from."""
    if action.startswith("view.") and action[5:] in IMAGE_VIEWS:
        return _set_view(state, action[5:], available_views)
    step = _transitions(auto_window).get(action)
    return step(state) if step else state


def for_scan(state: ViewState, available_views: tuple[str, ...]) -> ViewState:
    """State for a newly opened scan: same preferences, a view the scan supports, plain image."""
    view = state.view if state.view in available_views else available_views[0]
    return dataclasses.replace(state, view=view, layer="image", rel_threshold=1.0)


# --- settings schema: key -> (default, type). QSettings hands back strings on some platforms.
# The image function (view 1-6, edge E) is not stored: every session starts from the default, so
# an operator never inherits a stripped or negative view without noticing (issue 14 item 4).
SETTINGS_SCHEMA: dict[str, tuple[Any, type]] = {
    "view/overlay": (True, bool),
    "view/overlay_mode": ("fill", str),
    "view/opacity": (0.5, float),
    "view/boxes": (True, bool),
    "view/attention": (True, bool),
    # coarse-to-fine scoring (cascade.py): fewer patches scored; off by default, as exactness
    # matters for evaluation and the heat map is coarse away from suspect areas
    "screening/fast": (False, bool),
    "session/idle_lock_minutes": (5.0, float),  # lock (sign out) after this long without input; 0 = never
    "files/last_folder": ("", str),
    "files/recent": ([], list),
    "model/path": ("", str),
}
_STATE_KEYS = {"view/overlay": "overlay", "view/overlay_mode": "overlay_mode", "view/opacity": "opacity",
               "view/boxes": "boxes", "view/attention": "attention"}
_CHOICES = {"view/overlay_mode": OVERLAY_MODES}


def coerce_setting(key: str, raw: Any) -> Any:
    """A stored value as the schema's type; the default when missing or unreadable."""
    default, kind = SETTINGS_SCHEMA[key]
    if raw is None:
        return default
    try:
        if kind is bool:
            value: Any = raw.strip().lower() in ("1", "true", "yes") if isinstance(raw, str) else bool(raw)
        elif kind is list:
            value = [raw] if isinstance(raw, str) else [str(v) for v in raw]
        else:
            value = kind(raw)
    except (TypeError, ValueError):
        return default
    if key in _CHOICES and value not in _CHOICES[key]:
        return default
    if key == "view/opacity":
        value = _clip(value, (0.0, 1.0))
    return value


def state_to_settings(state: ViewState) -> dict[str, Any]:
    return {key: getattr(state, attr) for key, attr in _STATE_KEYS.items()}


def state_from_settings(values: dict[str, Any]) -> ViewState:
    """ViewState from raw stored values (missing or bad ones fall back to defaults)."""
    kwargs = {attr: coerce_setting(key, values.get(key)) for key, attr in _STATE_KEYS.items()}
    return ViewState(**kwargs)
