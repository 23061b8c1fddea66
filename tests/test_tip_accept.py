"""The site acceptance test (issue 29): TIP images of a site's own benign bags, per-category detection."""
import json

import numpy as np
import pytest
import torch

from screen_fixtures import tiny_model, with_calibration
from xscreen.cli import main
from xscreen.config import ScreenConfig
from xscreen.evaluate.tip_accept import (TipAcceptConfig, TipAcceptResult, read_id_file, run_tip_accept,
                                         tip_accept)
from xscreen.scan import save_h5
from xscreen.scoring import PatchScores, Scorer
from xscreen.synth import synth_bag
from xscreen.tip import build_library


class PeakScorer(Scorer):
    """Score = the patch's peak attenuation in model space ([0, 1]): every threshold has a known answer."""

    def score(self, patches: torch.Tensor, keep_reconstructions: bool = True) -> PatchScores:
        s = ((patches.float() + 1) / 2).amax(dim=(1, 2, 3))
        return PatchScores(s, s, torch.zeros_like(s), patches.float() if keep_reconstructions else None)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("tiplib") / "lib", per_category=2, seed=3)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("site")
    for i in range(3):
        save_h5(synth_bag(40 + i, threat=False, width=160).scan, d / f"b{i}.h5")
    return d


def scorer(threshold: float = 0.5):
    return PeakScorer(with_calibration(tiny_model(size=32), threshold, threshold), device="cpu")


def drain(gen):
    items = list(gen)
    assert isinstance(items[-1], TipAcceptResult)
    return items[:-1], items[-1]


def cfg(threshold, **kw):
    return TipAcceptConfig(screen=ScreenConfig(stride=16, threshold=threshold), **kw)


def test_an_always_alarming_threshold_flags_every_tip_image_and_every_benign_bag(library, site):
    progress, r = drain(tip_accept(scorer(), library, site, cfg(1e-6, per_bag=2)))
    assert [p.done for p in progress] == [1, 2, 3] and all(p.ok and p.split == "tip" for p in progress)
    assert r.n_benign_bags == 3 and r.benign_alarm.k == 3 and r.benign_alarm.rate == 1.0
    n = sum(c.instances for c in r.categories)
    assert n + len(r.failures) == 6 and n >= 4
    for c in r.categories:
        assert c.flagged.k == c.review.k == c.bags_alarmed.k == c.instances
        if c.instances:
            assert c.flagged.hi == 1.0 and 0 < c.flagged.lo < 1
    assert {c.category for c in r.categories} == set(library.categories())


def test_a_never_reached_threshold_flags_nothing_and_the_intervals_say_so(library, site):
    _, r = drain(tip_accept(scorer(), library, site, cfg(5.0)))
    assert r.benign_alarm.k == 0 and r.benign_alarm.lo == 0.0 and r.benign_alarm.hi > 0.5  # 0 of 3: wide
    assert all(c.flagged.k == 0 and c.review.k == 0 for c in r.categories)
    assert any("only 3 benign bags" in w and "interval" in w for w in r.warnings)


def test_the_draw_is_seeded_and_excluded_ftis_are_never_projected(library, site, tmp_path):
    keep = [f.fti_id for f in library.ftis if f.category == "knife"]
    excluded = {f.fti_id for f in library.ftis} - set(keep)
    (tmp_path / "ids.json").write_text(json.dumps({"fti_ids": sorted(excluded)}))
    ids = read_id_file(tmp_path / "ids.json")
    assert ids == excluded
    _, a = drain(tip_accept(scorer(), library, site, cfg(1e-6, per_bag=2, seed=7, exclude_ids=ids)))
    _, b = drain(tip_accept(scorer(), library, site, cfg(1e-6, per_bag=2, seed=7, exclude_ids=ids)))
    assert a.fti_ids_used == b.fti_ids_used and set(a.fti_ids_used) <= set(keep)
    assert [c.category for c in a.categories] == ["knife"] and a.n_excluded == len(excluded)
    with pytest.raises(ValueError, match="no FTI left"):
        drain(tip_accept(scorer(), library, site, cfg(1e-6, exclude_ids=frozenset(f.fti_id for f in library.ftis))))


def test_bad_inputs_are_refused_by_name(library, site, tmp_path):
    (tmp_path / "one").mkdir()
    save_h5(synth_bag(1, threat=False, width=160).scan, tmp_path / "one" / "b.h5")
    with pytest.raises(ValueError, match="at least 2 benign bags, found 1"):
        drain(tip_accept(scorer(), library, tmp_path / "one", cfg(0.5)))
    uncal = PeakScorer(tiny_model(size=32), device="cpu")
    with pytest.raises(ValueError, match="not calibrated"):
        drain(tip_accept(uncal, library, site, TipAcceptConfig(screen=ScreenConfig(stride=16))))
    (tmp_path / "bad.json").write_text('{"fti_ids": [1, 2]}')
    with pytest.raises(ValueError, match="bad.json.*list of FTI id"):
        read_id_file(tmp_path / "bad.json")
    (tmp_path / "ids.txt").write_text("# head\nabc\n\n def # why\n")
    assert read_id_file(tmp_path / "ids.txt") == {"abc", "def"}


def test_outputs_are_written(library, site, tmp_path):
    r = run_tip_accept(scorer(), library, site, cfg(1e-6), out=tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["n_benign_bags"] == 3 and doc["benign_alarm"]["k"] == 3
    md = (tmp_path / "out" / "results.md").read_text()
    assert "in alarm region" in md and "Benign bags that alarm: 3/3" in md
    assert r.files == [str(tmp_path / "out" / "results.json"), str(tmp_path / "out" / "results.md")]


def test_cli_runs_without_threat_data(library, site, tmp_path, capsys):
    from screen_fixtures import save_tiny_model

    model = save_tiny_model(tmp_path / "m.xsm", calibration=with_calibration(tiny_model(size=32), 1e-6, 1e-6).meta.calibration)
    rc = main(["evaluate", "--model", str(model), "--tip", str(library.path), "--benign", str(site),
               "--out", str(tmp_path / "o"), "--stride", "16", "--seed", "1", "-q"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Site acceptance test" in out.out and (tmp_path / "o" / "results.md").is_file()
    assert "only 3 benign bags" in out.err
    rc = main(["evaluate", "--model", str(model), "--benign", str(site), "--out", str(tmp_path / "p"), "-q"])
    assert rc == 2 and "--threat" in capsys.readouterr().err
