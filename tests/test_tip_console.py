"""TIP at the console without Qt: the supervisor setting behind a hashed password with its change log,
the per-bag draw, responses (unresolved counts as detected), and the proof that a TIP image never
reaches a real bag's report, summary or decision row."""
import json
import random
import re
import secrets

import numpy as np
import pytest

from xscreen.audit import AuditLog, Decision, TipEvent
from xscreen.tip import build_library
from xscreen.tip.console import TipConsole, feedback_text, overlap
from xscreen.tip.fti import TipError
from xscreen.tip.supervisor import (SupervisorStore, TipSettings, TipSettingsError, WrongPassword,
                                    hash_password, password_matches)

PW = "correct horse 42"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("tiplib") / "lib", per_category=1, seed=0)


@pytest.fixture
def store(tmp_path):
    s = SupervisorStore(tmp_path / "tip_supervisor.jsonl")
    s.set_password(PW, old=None, who="sam (supervisor)", operator="ana")
    return s


def test_password_is_stored_salted_and_hashed_never_in_clear(store):
    text = store.path.read_text()
    assert PW not in text and PW.encode().hex() not in text
    entry = store.entries()[0]["password"]
    assert len(bytes.fromhex(entry["salt"])) == 16 and entry["n"] == 2 ** 14
    assert password_matches(PW, entry) and not password_matches(PW + "x", entry)
    # the same password under another salt hashes differently
    assert hash_password(PW)["hash"] != hash_password(PW)["hash"]


def test_only_the_supervisor_password_changes_the_setting_and_every_change_is_logged(store, library):
    with pytest.raises(WrongPassword, match="wrong supervisor password"):
        store.save(TipSettings(True, 30, (), str(library.path)), password="guess", who="ana")
    with pytest.raises(WrongPassword):
        store.save(TipSettings(True, 30, (), str(library.path)), password="", who="ana")
    assert store.settings() == TipSettings()  # refused: TIP stays off
    saved = store.save(TipSettings(True, 30, ("knife", "handgun"), str(library.path)), password=PW,
                       who="sam", operator="ana")
    assert store.settings() == saved and saved.categories == ("knife", "handgun")
    store.save(TipSettings(False, 50, (), str(library.path)), password=PW, who="kim")
    log = store.entries()
    assert [(e["action"], e["who"]) for e in log] == [("password", "sam (supervisor)"), ("settings", "sam"),
                                                      ("settings", "kim")]
    assert log[1]["console_operator"] == "ana" and log[2]["settings"]["rate"] == 50 and log[2]["time"]
    assert store.settings().enabled is False
    with pytest.raises(WrongPassword):  # a second 'first password' is refused: the old one is needed
        store.set_password("another password", old=None, who="ana")
    store.set_password("another password", old=PW, who="sam")
    with pytest.raises(WrongPassword):
        store.check_password(PW)


def test_bad_settings_are_refused_by_name(store, library):
    for bad, msg in [(TipSettings(True, 0, (), "x"), "rate"), (TipSettings(True, 30, ("pistol",), "x"), "pistol"),
                     (TipSettings(True, 30, (), ""), "library")]:
        with pytest.raises(TipSettingsError, match=msg):
            store.save(bad, password=PW, who="sam")
    with pytest.raises(TipSettingsError, match="too short"):
        store.set_password("short", old=PW, who="sam")


def test_an_edited_log_is_refused_naming_the_line(store, library):
    store.save(TipSettings(False, 30, (), str(library.path)), password=PW, who="sam")
    lines = store.path.read_text().splitlines()
    lines[1] = lines[1].replace('"rate":30', '"rate":1')  # someone makes every bag TIP by hand
    store.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TipSettingsError, match=r"line 2: the hash chain is broken"):
        store.settings()
    with pytest.raises(TipSettingsError):  # a broken log is never extended
        store.save(TipSettings(), password=PW, who="sam")
    forged = SupervisorStore(store.path.parent / "forged.jsonl")
    forged.set_password(PW, old=None, who="sam")
    entry = json.loads(forged.path.read_text())
    entry["password"]["n"] = 2 ** 30  # a forged cost: 1 TiB of scrypt memory per try
    entry["hash"] = _rehash(entry)
    forged.path.write_text(json.dumps(entry) + "\n")
    with pytest.raises(TipSettingsError, match="malformed password entry"):
        forged.check_password(PW)
    store.path.write_text("not json\n")
    with pytest.raises(TipSettingsError, match="line 1: not JSON"):
        store.settings()


def _rehash(entry):
    from xscreen.tip.supervisor import GENESIS, _entry_hash

    return _entry_hash(GENESIS, entry)


def test_the_draw_is_one_in_rate_once_per_undecided_bag_and_unpredictable_by_default(library):
    settings = TipSettings(True, 30, (), str(library.path))
    assert TipConsole(settings)._chance is secrets.randbelow  # the live draw: the OS's randomness
    console = TipConsole(settings, chance=random.Random(7).randrange)
    hits = sum(console.wants_tip(f"bag{i}", decided=False) for i in range(3000))
    assert 60 <= hits <= 140  # expected 100 (binomial sd ~10)
    always = TipConsole(TipSettings(True, 1, (), str(library.path)), chance=lambda n: 0)
    assert always.wants_tip("a", decided=False) and not always.wants_tip("a", decided=False)  # once per bag
    assert always.drawn == {"a"}  # drawn, not shown yet: the bag shows its TIP image when it comes
    assert not always.wants_tip("b", decided=True)  # a decided bag never gets one
    assert not TipConsole(TipSettings(False, 1), chance=lambda n: 0).wants_tip("c", decided=False)


def test_overlap_of_the_selected_region_with_the_threat_mask():
    mask = np.zeros((20, 30), bool)
    mask[5:8, 10:14] = True
    assert overlap(mask, None) is None
    assert overlap(mask, (12, 6, 5, 5)) is True and overlap(mask, (0, 0, 5, 5)) is False
    assert overlap(mask, (-5, -5, 3, 3)) is False


def _scan(tmp_path):
    from xscreen.scan import file_sha256, load_scan, save_scan
    from xscreen.synth import synth_bag

    path = tmp_path / "bag.h5"
    save_scan(synth_bag(5, threat=False, width=192).scan, path)
    return path, load_scan(path), file_sha256(path)


def test_responses_unresolved_counts_as_detected_and_the_real_scan_is_untouched(tmp_path, library):
    path, scan, sha = _scan(tmp_path)
    before = scan.channels.copy()
    console = TipConsole(TipSettings(True, 1, (), str(library.path)), chance=lambda n: 0,
                         rng=np.random.default_rng(0))
    with pytest.raises(TipError, match="no TIP image"):
        console.respond("decide.clear", operator="ana", seconds=1, model_id="m", threshold=1.0)
    for action, response, detected, head in [("decide.suspect", "suspect", True, "TIP detected"),
                                             ("decide.unresolved", "unresolved", True, "TIP detected"),
                                             ("decide.clear", "clear", False, "TIP missed")]:
        trial = console.project(str(path), scan, sha)
        console.begin(trial)
        assert console.drawn == set()
        assert np.array_equal(scan.channels, before)  # projection works on a copy
        assert trial.tip.projected.mask.any() and not np.array_equal(trial.tip.projected.scan.channels, before)
        x, y, w, h = trial.tip.projected.box
        r = console.respond(action, operator="ana", seconds=2.5, model_id="m", threshold=1.0,
                            selected_box=(x, y, w, h))
        assert (r.response, r.detected, r.overlap) == (response, detected, True)
        assert feedback_text(r)[0] == head and console.on_screen().phase == "feedback"
        ev = TipEvent(**r.event_fields())
        assert ev.tip_field()["detected"] is detected and ev.fti_id == trial.tip.fti.fti_id
        assert console.finish() == str(path) and console.on_screen() is None


@pytest.fixture(scope="module")
def tiny_scorer(tmp_path_factory):
    import torch

    from xscreen.checkpoint import ModelCard, ModelMeta, save_model
    from xscreen.config import NetConfig, PatchConfig, Preprocess, TrainConfig
    from xscreen.network import Discriminator, Generator, init_weights
    from xscreen.scoring import Scorer

    torch.manual_seed(0)
    net = NetConfig(size=64, channels=2, ngf=8, ndf=8)
    g, d = Generator(net), Discriminator(net)
    g.apply(init_weights)
    d.apply(init_weights)
    path = tmp_path_factory.mktemp("models") / "tiny.xsm"
    save_model(path, g, d, ModelMeta(net, Preprocess(), PatchConfig(), TrainConfig(), None, ModelCard(name="tiny")))
    return Scorer(path, device="cpu")


def _pngs(folder):
    return sorted(re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", (folder / "report.html").read_text()))


def test_a_tip_image_never_reaches_the_real_bags_report_summary_or_decision(tmp_path, library, tiny_scorer):
    from xscreen.config import ScreenConfig
    from xscreen.pipeline import screen

    CFG = ScreenConfig(threshold=0.05)  # the tiny model is uncalibrated
    from xscreen.report import write_batch_summary, write_reports
    from xscreen.scan import load_scan

    path, scan, sha = _scan(tmp_path)
    console = TipConsole(TipSettings(True, 1, (), str(library.path)), chance=lambda n: 0,
                         rng=np.random.default_rng(3))
    assert console.wants_tip(str(path), decided=False)
    trial = console.project(str(path), scan, sha)
    console.begin(trial)
    s_tip = screen(trial.tip.projected.scan, tiny_scorer, CFG)  # what the operator was shown
    r = console.respond("decide.clear", operator="ana", seconds=3.0, model_id=s_tip.model_id,
                        threshold=s_tip.scan_threshold)
    with AuditLog(tmp_path / "audit.sqlite") as log:
        log.record_tip(TipEvent(**r.event_fields()))
        assert log.latest(sha) is None  # the TIP response decided nothing
        assert console.finish() == str(path)
        real = load_scan(path)  # the real bag, from its file
        s_real = screen(real, tiny_scorer, CFG)
        log.record(Decision("ana", real.scan_id, sha, s_real.model_id, s_real.scan_threshold, "clear", 4.0,
                            bag_score=s_real.scan_score), exclusive=True)
        rows = log.rows()
    fti = trial.tip.fti.fti_id
    out, ref, tip_out = tmp_path / "session", tmp_path / "reference", tmp_path / "tip_image"
    write_reports(s_real, real, out, formats=("html", "json", "csv"))
    write_batch_summary([s_real], out / "summary.csv")
    write_reports(screen(load_scan(path), tiny_scorer, CFG), load_scan(path), ref, formats=("html",))  # no TIP at all
    write_reports(s_tip, trial.tip.projected.scan, tip_out, formats=("html",))
    texts = [p.read_text() for p in out.iterdir()]
    assert len(texts) == 4 and all(fti not in t for t in texts)
    assert _pngs(out) == _pngs(ref)  # every image in the report is the real bag's, pixel for pixel
    assert _pngs(out) != _pngs(tip_out)  # (and a report of the TIP image would differ: the check can fail)
    bag_rows = [x for x in rows if x["kind"] == "bag"]
    assert len(bag_rows) == 1 and bag_rows[0]["bag_score"] == pytest.approx(s_real.scan_score)
    assert fti not in json.dumps(bag_rows, default=str)
    assert [x["kind"] for x in rows] == ["tip", "bag"] and rows[0]["tip"]["fti_id"] == fti
