"""The one registry of operator shortcuts (plain data, importable without Qt).

Every operator action in the GUI is a row here; menus, toolbar, the F1 cheat sheet and the README
keys table are all generated from this table, so a key can never be documented one way and bound
another. ``conflicts()`` is what the conflict test runs.
"""
from __future__ import annotations

from dataclasses import dataclass

_MODIFIERS = ("Ctrl", "Alt", "Shift", "Meta")
# Qt spells some keys differently from how people type them; normalise before comparing.
_ALIASES = {"PAGEDOWN": "PGDOWN", "PAGEUP": "PGUP", "ESCAPE": "ESC", "ENTER": "RETURN",
            "CONTROL": "CTRL", "PLUS": "+", "MINUS": "-", "DEL": "DELETE"}


@dataclass(frozen=True)
class Shortcut:
    """One operator action: ``action`` is the id the GUI binds, ``keys`` a Qt key-sequence string."""

    action: str
    keys: str
    label: str
    group: str


SHORTCUTS: tuple[Shortcut, ...] = (
    # File / queue
    Shortcut("file.open", "Ctrl+O", "Open scan file", "File"),
    Shortcut("file.open_folder", "Ctrl+Shift+O", "Open folder as bag queue", "File"),
    Shortcut("file.open_model", "Ctrl+M", "Open model file", "File"),
    Shortcut("file.quit", "Ctrl+Q", "Quit", "File"),
    Shortcut("queue.next", "PgDown", "Next bag in queue", "Queue"),
    Shortcut("queue.prev", "PgUp", "Previous bag in queue", "Queue"),
    # Decisions (single keys: the operator's hands stay on the keyboard)
    Shortcut("decide.clear", "C", "Decision: clear", "Decide"),
    Shortcut("decide.suspect", "S", "Decision: suspect", "Decide"),
    Shortcut("decide.unresolved", "U", "Decision: unresolved", "Decide"),
    Shortcut("decide.unreadable", "X", "Decision: unreadable -> re-scan / hand search", "Decide"),
    # Image views
    Shortcut("view.pseudo", "1", "Pseudo-colour view", "View"),
    Shortcut("view.gray", "2", "Grey view", "View"),
    Shortcut("view.negative", "3", "Negative view", "View"),
    Shortcut("view.high_pen", "4", "High-penetration view", "View"),
    Shortcut("view.organic", "5", "Organic-only view", "View"),
    Shortcut("view.inorganic", "6", "Inorganic-only view", "View"),
    Shortcut("view.edge", "E", "Edge enhancement on/off", "View"),
    Shortcut("view.reset_display", "0", "Reset window/level and gamma", "View"),
    Shortcut("view.gamma_up", "Ctrl+Up", "Gamma up", "View"),
    Shortcut("view.gamma_down", "Ctrl+Down", "Gamma down", "View"),
    Shortcut("view.window_wider", "Ctrl+Right", "Window wider (less contrast)", "View"),
    Shortcut("view.window_narrower", "Ctrl+Left", "Window narrower (more contrast)", "View"),
    # Navigation in the image
    Shortcut("nav.zoom_in", "+", "Zoom in", "Navigate"),
    Shortcut("nav.zoom_out", "-", "Zoom out", "Navigate"),
    Shortcut("nav.fit", "F", "Fit to window", "Navigate"),
    Shortcut("nav.pan_left", "Left", "Pan left", "Navigate"),
    Shortcut("nav.pan_right", "Right", "Pan right", "Navigate"),
    Shortcut("nav.pan_up", "Up", "Pan up", "Navigate"),
    Shortcut("nav.pan_down", "Down", "Pan down", "Navigate"),
    # Detector layers
    Shortcut("layer.overlay", "H", "Heatmap overlay on/off", "Detector"),
    Shortcut("layer.mode", "M", "Heatmap fill / contour", "Detector"),
    Shortcut("layer.opacity_up", "]", "Overlay opacity up", "Detector"),
    Shortcut("layer.opacity_down", "[", "Overlay opacity down", "Detector"),
    Shortcut("layer.image", "I", "Show the scan image", "Detector"),
    Shortcut("layer.reconstruction", "R", "Show the model's reconstruction", "Detector"),
    Shortcut("layer.residual", "D", "Show the residual (difference)", "Detector"),
    Shortcut("layer.side", "V", "Scan and reconstruction side by side", "Detector"),
    Shortcut("layer.boxes", "B", "Region boxes on/off", "Detector"),
    Shortcut("threshold.up", ".", "Raise threshold (fewer regions)", "Detector"),
    Shortcut("threshold.down", ",", "Lower threshold (more regions)", "Detector"),
    Shortcut("threshold.reset", "T", "Threshold back to the model's", "Detector"),
    Shortcut("region.next", "J", "Next region (zoom + inspect)", "Detector"),
    Shortcut("region.prev", "K", "Previous region", "Detector"),
    Shortcut("score.run", "Ctrl+Return", "Score this bag again", "Detector"),
    Shortcut("score.cancel", "Esc", "Cancel scoring", "Detector"),
    # Windows and help
    Shortcut("tab.screening", "Ctrl+1", "Screening tab", "Window"),
    Shortcut("tab.training", "Ctrl+2", "Training tab", "Window"),
    Shortcut("model.card", "Ctrl+I", "Full model card (all fields)", "Window"),
    Shortcut("audit.stats", "Ctrl+Shift+S", "Operator statistics (supervisor)", "Window"),
    Shortcut("operator.change", "Ctrl+Shift+U", "Sign out / switch operator", "Window"),
    Shortcut("help.keys", "F1", "Keyboard cheat sheet", "Window"),
)


# Where a key may act. Keys that act on the bag on screen belong to the screening tab (pressing C
# on the Training tab must not clear the bag behind it); a decision also needs a scored bag; a
# plain key is never taken from a text field; signed out, only these few work.
SCREENING_ONLY = ("queue.", "decide.", "view.", "nav.", "layer.", "threshold.", "region.", "score.")
SIGNED_OUT_OK = ("file.quit", "help.keys")


@dataclass(frozen=True)
class KeyContext:
    """What the window shows when a key arrives."""

    signed_in: bool
    screening_shown: bool  # the screening tab is the visible page
    scored: bool  # a screened bag is on it
    text_focus: bool  # a text field has the keyboard focus
    failed: bool = False  # the bag on screen could not be read or scored (only X disposes of it)


def is_plain(keys: str) -> bool:
    """A key a text field would take as typing or editing: no Ctrl/Alt/Meta, not an F-key."""
    norm = normalise(keys)
    key = "+" if norm.endswith("+") else norm.rsplit("+", 1)[-1]
    mods = set(norm[:-len(key)].split("+")) - {""}
    is_function = key.startswith("F") and key[1:].isdigit()
    return not mods & {"CTRL", "ALT", "META"} and not is_function


def enabled(sc: Shortcut, ctx: KeyContext) -> bool:
    """Whether ``sc`` may fire now (the window enables its action, and so its key, accordingly)."""
    if sc.action in SIGNED_OUT_OK:
        return True
    if not ctx.signed_in or (ctx.text_focus and is_plain(sc.keys)):
        return False
    if sc.action.startswith(SCREENING_ONLY) and not ctx.screening_shown:
        return False
    if sc.action == "decide.unreadable":
        return ctx.failed
    return ctx.scored or not sc.action.startswith("decide.")


def normalise(keys: str) -> str:
    """Canonical form of a key-sequence string: modifiers in a fixed order, key upper-case.

    ``"shift+ctrl+o"`` and ``"Ctrl+Shift+O"`` both become ``"CTRL+SHIFT+O"``. A bare ``+`` key
    is kept (``"Ctrl++"`` -> ``"CTRL++"``).
    """
    text = keys.strip()
    if not text:
        raise ValueError("empty key sequence")
    if text.endswith("++") or text == "+":
        parts = [p for p in text[:-2].split("+") if p]
        key = "+"
    else:
        *parts, key = text.split("+")
    mods = {_ALIASES.get(p.upper(), p.upper()) for p in parts}
    unknown = mods - {m.upper() for m in _MODIFIERS}
    if unknown:
        raise ValueError(f"{keys!r}: unknown modifier(s) {sorted(unknown)}")
    key = _ALIASES.get(key.upper(), key.upper())
    ordered = [m.upper() for m in _MODIFIERS if m.upper() in mods]
    return "+".join(ordered + [key])


def conflicts(table: tuple[Shortcut, ...] = SHORTCUTS) -> list[str]:
    """Human-readable conflicts: a key bound twice, or an action id used twice. [] when clean."""
    problems: list[str] = []
    seen_keys: dict[str, str] = {}
    seen_actions: set[str] = set()
    for sc in table:
        if sc.action in seen_actions:
            problems.append(f"action {sc.action!r} defined twice")
        seen_actions.add(sc.action)
        norm = normalise(sc.keys)
        if norm in seen_keys:
            problems.append(f"{sc.keys!r} bound to both {seen_keys[norm]!r} and {sc.action!r}")
        else:
            seen_keys[norm] = sc.action
    return problems


def by_action(table: tuple[Shortcut, ...] = SHORTCUTS) -> dict[str, Shortcut]:
    return {sc.action: sc for sc in table}


def groups(table: tuple[Shortcut, ...] = SHORTCUTS) -> list[tuple[str, list[Shortcut]]]:
    """Rows grouped for the cheat sheet, groups in first-appearance order."""
    out: dict[str, list[Shortcut]] = {}
    for sc in table:
        out.setdefault(sc.group, []).append(sc)
    return list(out.items())


def markdown_table(table: tuple[Shortcut, ...] = SHORTCUTS) -> str:
    """The README's operator keys table."""
    lines = ["| Key | Action | Group |", "|---|---|---|"]
    for sc in table:
        key = sc.keys.replace("|", "\\|")
        lines.append(f"| `{key}` | {sc.label} | {sc.group} |")
    return "\n".join(lines) + "\n"
