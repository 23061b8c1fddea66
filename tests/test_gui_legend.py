"""The alarm banner, colour bar, material key and image-function indicator (issue 14 item 4):
verdicts differ in word, icon shape and colour; the widgets follow the bag and the keys; image
functions start from the default in every session."""
import os
from types import SimpleNamespace

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model, window  # noqa: E402,F401
from xscreen.gui import legend, verdict  # noqa: E402
from xscreen.gui.app import MainWindow  # noqa: E402


def _screening(alarm, n_regions, rel=1.5):
    return SimpleNamespace(alarm=alarm, regions=[object()] * n_regions, scan_rel=rel)


def test_verdicts_differ_in_word_shape_and_colour_not_colour_alone():
    cases = {"alarm": _screening(True, 2), "attention": _screening(False, 1, 0.8),
             "no_alarm": _screening(False, 0, 0.5), "unscored": None}
    got = {k: verdict.verdict_for(s) for k, s in cases.items()}
    assert {k: v.kind for k, v in got.items()} == {k: k for k in cases}
    assert got["alarm"].headline == "ALARM" and got["no_alarm"].headline == "NO ALARM"
    for attr in ("headline", "shape", "background"):
        values = [getattr(v, attr) for v in got.values()]
        assert len(set(values)) == len(values), attr
    assert "2 regions drawn" in got["alarm"].detail and "1.50 × alarm" in got["alarm"].detail
    assert "machine verdict NO ALARM" in got["attention"].detail  # below the alarm: attention, never a threat
    assert verdict.verdict_for(None, loaded=False).kind == "none"
    failed = verdict.failed_verdict("bag.h5: 3 patch scores are not finite\ntraceback")
    assert failed.kind == "error" and "not cleared" in failed.detail and "traceback" not in failed.detail
    assert failed.shape not in {v.shape for v in got.values()}


def test_icons_differ_in_shape(qtbot):
    shapes = ("triangle", "diamond", "circle", "square", "cross")
    imgs = {s: legend.icon(s, 34, "#ffffff").toImage() for s in shapes}
    masks = {s: bytes(img.convertToFormat(img.Format.Format_Alpha8).constBits()) for s, img in imgs.items()}
    assert len(set(masks.values())) == len(shapes) and all(any(m) for m in masks.values())


def test_banner_legend_and_function_strip_follow_the_bag(qtbot, window, bag_dir, tiny_model):  # noqa: F811
    tab = window.tab
    assert tab.banner.verdict.kind == "none"
    window.set_model(str(tiny_model))
    window.open_path(bag_dir / "a_threat.h5")
    qtbot.waitUntil(lambda: tab.screening is not None and window.runner.running is None, timeout=TIMEOUT)
    assert tab.screening.alarm and tab.banner.verdict.kind == "alarm"
    assert tab.banner.headline.text() == "ALARM" and "ALARM" not in tab.title.text()
    assert tab.legend.colour_bar.isVisible() and tab.legend.materials.isVisible()
    assert tab.functions.active == ("pseudo",)
    bold = tab.functions.labels["pseudo"].styleSheet()
    assert "font-weight: bold" in bold and "border-bottom: 3px solid #" in bold  # not colour alone
    window.dispatch("view.negative")
    window.dispatch("view.edge")
    assert tab.functions.active == ("negative", "edge")
    assert not tab.legend.materials.isVisible()  # no material colours in the negative view
    window.dispatch("layer.overlay")
    assert not tab.legend.colour_bar.isVisible()
    window.dispatch("layer.overlay")
    window.dispatch("threshold.up")  # the live threshold is marked on the one scale, beside the review level
    labels = [text for _, text, _ in tab.legend.colour_bar.ticks]
    assert "1.00 = alarm" in labels and f"shown ≥ {tab.scale.live:.2f}" in labels
    assert f"review {tab.scale.review:.2f}" in labels
    window.set_model("")  # unscored: the banner says so, never a clear
    qtbot.waitUntil(lambda: tab.outcome is not None and window.runner.running is None, timeout=TIMEOUT)
    assert tab.banner.verdict.kind == "unscored"


def test_image_functions_start_from_the_default_each_session(qtbot, tmp_path):
    ini = tmp_path / "gui.ini"
    first = MainWindow(settings_path=ini, audit_path=tmp_path / "a.sqlite")
    qtbot.addWidget(first)
    first.sign_in("ana")
    first.tab.set_view_state(first.tab.state.__class__(view="organic", edge=True, opacity=0.3))
    first.settings.sync()
    second = MainWindow(settings_path=ini, audit_path=tmp_path / "a.sqlite")
    qtbot.addWidget(second)
    assert (second.tab.state.view, second.tab.state.edge) == ("pseudo", False)
    assert second.tab.state.opacity == pytest.approx(0.3)  # other preferences still persist
    assert second.tab.functions.active == ("pseudo",)
