"""The GUI's logic without Qt: shortcut registry, view-state transitions, settings, session."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from xscreen.gui import session, shortcuts, state
from xscreen.gui.shortcuts import Shortcut


def test_registry_has_no_conflicts_and_covers_operator_actions():
    assert shortcuts.conflicts() == []
    actions = shortcuts.by_action()
    for needed in ("decide.clear", "decide.suspect", "decide.unresolved", "layer.overlay", "help.keys",
                   "queue.next", "queue.prev", "nav.fit", "threshold.up", "region.next"):
        assert needed in actions
    # every image view has a key, so the view-switch transitions are all reachable
    assert {f"view.{v}" for v in state.IMAGE_VIEWS} <= set(actions)


def test_conflict_check_catches_duplicates_after_normalising():
    table = (Shortcut("a", "Ctrl+Shift+O", "A", "g"), Shortcut("b", "shift+ctrl+o", "B", "g"),
             Shortcut("a", "X", "A again", "g"))
    problems = shortcuts.conflicts(table)
    assert any("'a' defined twice" in p for p in problems)
    assert any("'a'" in p and "'b'" in p and "bound to both" in p for p in problems)
    assert shortcuts.normalise("PageDown") == shortcuts.normalise("PgDown")
    assert shortcuts.normalise("Ctrl++") == "CTRL++"
    with pytest.raises(ValueError, match="unknown modifier"):
        shortcuts.normalise("Hyper+X")


def test_registry_imports_without_qt_and_makes_a_readme_table():
    code = ("import sys, xscreen.gui.shortcuts, xscreen.gui.state, xscreen.gui.session\n"
            "assert not [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    table = shortcuts.markdown_table()
    assert "| `S` | Decision: suspect | Decide |" in table
    assert table.count("\n") == len(shortcuts.SHORTCUTS) + 2


def test_view_transitions():
    s = state.ViewState()
    assert s.view == "pseudo" and s.overlay and s.layer == "image"
    s2 = state.apply_action(s, "view.gray")
    assert s2.view == "gray"
    # two-energy views are refused for an RGB image: state unchanged
    assert state.apply_action(s, "view.organic", available_views=("pseudo", "gray", "negative")) == s
    assert state.apply_action(s, "layer.overlay").overlay is False
    assert state.apply_action(state.apply_action(s, "layer.mode"), "layer.mode").overlay_mode == "fill"
    assert state.apply_action(s, "layer.mode").overlay_mode == "contour"
    r = state.apply_action(s, "layer.residual")
    assert r.layer == "residual" and state.apply_action(r, "layer.residual").layer == "image"
    # switching the image view brings the image layer back
    assert state.apply_action(r, "view.negative").layer == "image"
    assert state.apply_action(s, "unknown.action") == s


def test_opacity_gamma_threshold_window_are_bounded_and_reset():
    s = state.ViewState(opacity=0.95)
    assert state.apply_action(s, "layer.opacity_up").opacity == 1.0
    assert state.apply_action(state.ViewState(opacity=0.05), "layer.opacity_down").opacity == 0.0
    g = state.ViewState()
    for _ in range(50):
        g = state.apply_action(g, "view.gamma_up")
    assert g.gamma == state.GAMMA_RANGE[1]
    t = state.apply_action(state.ViewState(), "threshold.up")
    assert t.rel_threshold == pytest.approx(1.1)
    assert state.apply_action(t, "threshold.reset").rel_threshold == 1.0
    w = state.apply_action(state.ViewState(), "view.window_narrower", auto_window=2.4)
    assert w.window == pytest.approx(2.0)
    back = state.apply_action(w, "view.reset_display")
    assert (back.window, back.level, back.gamma) == (None, None, 1.0)


def test_for_scan_picks_a_supported_view():
    s = state.ViewState(view="organic", layer="residual", rel_threshold=2.0)
    n = state.for_scan(s, ("pseudo", "gray"))
    assert (n.view, n.layer, n.rel_threshold) == ("pseudo", "image", 1.0)


def test_settings_roundtrip_and_bad_values():
    s = state.ViewState(overlay=False, overlay_mode="contour", opacity=0.3, boxes=False)
    stored = {k: str(v) for k, v in state.state_to_settings(s).items()}  # QSettings INI: strings
    assert state.state_from_settings(stored) == s
    bad = {"view/overlay_mode": "nonsense", "view/opacity": "abc"}
    got = state.state_from_settings(bad)
    assert (got.overlay_mode, got.opacity) == ("fill", 0.5)


def test_image_functions_start_from_the_default_each_session():
    s = state.ViewState(view="negative", edge=True, gamma=2.0, window=0.3, level=0.4)
    stored = {k: str(v) for k, v in state.state_to_settings(s).items()}
    stored.update({"view/name": "organic", "view/edge": "true"})  # written by older versions
    got = state.state_from_settings(stored)
    assert (got.view, got.edge, got.gamma, got.window, got.level) == ("pseudo", False, 1.0, None, None)
    assert state.coerce_setting("view/opacity", "7") == 1.0
    assert state.coerce_setting("files/recent", "/a.h5") == ["/a.h5"]
    assert state.coerce_setting("session/idle_lock_minutes", None) == 5.0
    assert state.coerce_setting("session/idle_lock_minutes", "0.5") == 0.5
    assert "operator/name" not in state.SETTINGS_SCHEMA  # the operator signs in at every launch


def test_bag_queue(tmp_path):
    files = [tmp_path / f"bag{i}.h5" for i in range(3)]
    q = session.BagQueue.from_folder(tmp_path, lister=lambda folder: files)
    assert q.current == files[0] and q.position() == "1/3"
    assert q.peek_next() == files[1]
    assert q.step(-1) is None and q.index == 0
    assert q.step(1) == files[1] and q.step(1) == files[2]
    assert q.step(1) is None and q.current == files[2] and q.peek_next() is None
    assert session.BagQueue().current is None and session.BagQueue().position() == "-"


def test_recent_files():
    r = []
    for p in ["/a", "/b", "/a", "/c"]:
        r = session.add_recent(r, p, limit=2)
    assert r == [str(Path("/c")), str(Path("/a"))]


def test_decision_timer_and_decision():
    now = [100.0]
    timer = session.DecisionTimer(clock=lambda: now[0])
    assert timer.elapsed() is None
    timer.start("bag1")
    now[0] = 103.25
    assert timer.elapsed() == pytest.approx(3.25) and timer.scan_key == "bag1"
    d = session.make_decision("decide.suspect", operator=" ana ", scan_id="bag1", file_sha256="ab" * 32,
                              model_id="m-1", threshold=0.5, regions_shown=[1, 2], seconds=3.25)
    assert (d.decision, d.operator, d.regions_shown, d.decision_seconds) == ("suspect", "ana", [1, 2], 3.25)
    with pytest.raises(ValueError, match="operator"):
        session.make_decision("decide.clear", operator=" ", scan_id="b", file_sha256="", model_id="m",
                              threshold=1, regions_shown=[], seconds=1)
    with pytest.raises(ValueError, match="not a decision"):
        session.make_decision("view.gray", operator="x", scan_id="b", file_sha256="", model_id="m",
                              threshold=1, regions_shown=[], seconds=1)


def test_result_cache_and_scoring_plan():
    c = session.ResultCache(size=2)
    c.put("a", "m", 1)
    c.put("b", "m", 2)
    assert c.get("a", "m") == 1  # touch a: b is now the oldest
    c.put("c", "m", 3)
    assert c.get("b", "m") is None and c.get("a", "m") == 1 and c.get("a", "other") is None
    assert session.plan_scoring("a", cached=True, running=None) == "show"
    assert session.plan_scoring("a", cached=False, running="a") == "wait"
    assert session.plan_scoring("a", cached=False, running="b") == "preempt"
    assert session.plan_scoring("a", cached=False, running=None) == "start"


def test_keys_act_only_where_they_may():
    ctx = shortcuts.KeyContext(signed_in=True, screening_shown=True, scored=True, text_focus=False)
    sc = shortcuts.by_action()
    on = lambda action, **kw: shortcuts.enabled(sc[action], dataclasses.replace(ctx, **kw))  # noqa: E731
    assert on("decide.suspect") and on("view.gray") and on("file.open")
    assert not on("decide.suspect", screening_shown=False) and not on("view.gray", screening_shown=False)
    assert on("tab.screening", screening_shown=False) and on("file.open", screening_shown=False)
    assert not on("decide.clear", scored=False) and on("view.gray", scored=False)
    # a text field keeps plain keys (letters, digits, arrows, Esc) but not Ctrl shortcuts or F-keys
    assert not on("decide.clear", text_focus=True) and not on("nav.pan_left", text_focus=True)
    assert not on("score.cancel", text_focus=True)
    assert on("file.open", text_focus=True) and on("help.keys", text_focus=True)
    signed_out = {a for a in sc if on(a, signed_in=False)}
    assert signed_out == {"file.quit", "help.keys"}
    assert [shortcuts.is_plain(k) for k in ("S", "+", "Ctrl++", "F1", "Shift+X", "PgDown", "Ctrl+Shift+U")] == \
        [True, True, False, False, True, True, False]


def test_a_decision_key_records_repeats_nothing_or_amends():
    assert session.plan_decision("decide.suspect", None) == "record"
    rows = [{"id": 4, "scan_id": "bag1", "decision": "suspect", "operator": "ana",
             "time": "2026-11-29T08:10:02.123+00:00", "amends": None},
            {"id": 9, "scan_id": "bag1", "decision": "clear", "operator": "bo",
             "time": "2026-11-29T08:12:00.000+00:00", "amends": 4}]
    assert session.bag_decision(rows[:1], "bag1") == session.BagDecision(4, "suspect", "ana", rows[0]["time"])
    now = session.bag_decision(rows, "bag1")
    assert (now.row, now.decision, now.amends, now.label()) == (9, "clear", 4, "CLEAR (amended)")
    assert now.describe() == "CLEAR (amended) by bo at 08:12:00 UTC (audit #9, amends #4)"
    assert session.bag_decision(rows, "other") is None
    assert session.plan_decision("decide.clear", now) == "same"
    assert session.plan_decision("decide.suspect", now) == "amend"
    q = session.BagQueue([Path("a.h5"), Path("b.h5")], 0)
    q.mark(Path("a.h5"), now)
    assert q.decision("a.h5") == now and q.decision(Path("b.h5")) is None and q.decision(None) is None
    assert q.go(1) == Path("b.h5") and q.go(5) is None and q.index == 1
    q.mark("a.h5", None)
    assert q.decided == {}


def test_operator_session_signs_in_out_and_expires_when_idle():
    now = [0.0]
    op = session.OperatorSession(60, clock=lambda: now[0])
    assert not op.signed_in and not op.idle_expired()
    with pytest.raises(ValueError, match="name"):
        op.sign_in("   ")
    assert op.sign_in("  Ana   Lee ") == "Ana Lee" and op.signed_in
    now[0] = 59
    assert not op.idle_expired()
    op.touch()
    now[0] = 118
    assert not op.idle_expired()
    now[0] = 119
    assert op.idle_expired()
    op.sign_out()
    assert op.name == "" and not op.idle_expired()
    never = session.OperatorSession(0, clock=lambda: now[0])
    never.sign_in("bo")
    now[0] = 1e9
    assert not never.idle_expired()
