"""Training: steps learn, scores are batch-independent, resume is exact, DDP trains and saves."""
import copy
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import TensorDataset

from xscreen.checkpoint import load_model
from xscreen.config import NetConfig, PatchConfig, RunConfig, TrainConfig
from xscreen.network import Discriminator, Generator
from xscreen.runtime import precision_for
from xscreen.train import DataInfo, EpochReport, GanPair, TrainResult, fit, train_step, validation_scores
from xscreen.train import loop as loop_module

NET = NetConfig(size=32, channels=2, ngf=4, ndf=4, nz=8)
FP32 = precision_for("cpu", "fp32")


def _patches(n, seed):
    """(n, 2, 32, 32) smooth random patches in [-1, 1] (a learnable, image-like distribution)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 2, 4, 4, generator=g)
    return (torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False) * 1.6 - 0.8)


def _pair(seed=0):
    torch.manual_seed(seed)
    g = Generator(NET).to(memory_format=torch.channels_last)
    d = Discriminator(NET).to(memory_format=torch.channels_last)
    return GanPair(g, d, torch.optim.Adam(g.parameters(), 2e-3, betas=(0.5, 0.999)),
                   torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999)),
                   torch.amp.GradScaler("cpu", enabled=False))


def _run(**train):
    t = dict(epochs=2, batch_size=8, log_every=2, precision="fp32", device="cpu", deterministic=True)
    t.update(train)
    return RunConfig(net=NET, patch=PatchConfig(size=32, stride=16), train=TrainConfig(**t))


def _fit(tmp, run, name="m", resume=False, n_train=32, n_val=12):
    info = DataInfo(manifest_sha256="x" * 64, n_train_scans=4, n_val_scans=3,
                    val_scan_index=np.repeat([0, 1, 2], n_val // 3))
    return fit(run, TensorDataset(_patches(n_train, 1)), TensorDataset(_patches(n_val, 2)),
               out=tmp / f"{name}.xsm", workdir=tmp / name, resume=resume, info=info)


def test_a_few_steps_lower_the_contextual_loss_on_a_fixed_batch():
    pair, x = _pair(), _patches(8, 0)
    first = train_step(pair, x, FP32)
    for _ in range(15):
        last = train_step(pair, x, FP32)
    assert np.isfinite([last.g_loss, last.d_loss]).all()
    assert last.g_con < 0.7 * first.g_con  # w_con·|x − x̂|₁ falls: G learns to reconstruct


class _Blur(torch.nn.Module):
    """A fixed 'generator' whose output a discriminator can tell from its input: a 4x box blur
    (times a gain the test never changes: G's step needs a parameter to step)."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.gain * torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(x, 4), scale_factor=4.0)


@pytest.mark.parametrize("d_batch", ["separate", "joint"])
def test_discriminator_learns_to_tell_reconstructions_from_real_patches(d_batch):
    """The losses take D's logits. Fed D's sigmoid output instead (the bug until 2026-11-29), L_D
    cannot fall below ln(1 + 1/e) + ln 2 = 1.006, and D stuck at L_D = 2 ln 2 in every real run."""
    pair = _pair(3)
    pair.generator = _Blur()
    pair.opt_g = torch.optim.SGD(pair.generator.parameters(), lr=0.0)
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(16, 2, 32, 32, generator=rng) * 1.6 - 0.8  # sharp noise: blurring it is obvious
    steps = [train_step(pair, x, FP32, d_joint=d_batch == "joint") for _ in range(120)]
    assert steps[-1].d_loss < 0.7 < 1.006 < steps[0].d_loss  # 1.006: the floor of the old mix-up
    assert steps[-1].d_real < 0.5 and steps[-1].d_fake < 0.5  # better than chance (ln 2) on both halves


def test_input_noise_is_real_seeded_gaussian():
    x = _patches(8, 0)
    runs = []
    for noise in (0.0, 0.3, 0.3):
        pair = _pair(5)
        runs.append(train_step(pair, x, FP32, noise_std=noise, noise_gen=torch.Generator().manual_seed(7)))
    assert runs[1] == runs[2]  # same seed, same noise: reproducible (the reference's was uninitialised)
    assert runs[0].g_con != runs[1].g_con


def test_bf16_autocast_step_on_cpu_keeps_fp32_weights():
    pair = _pair()
    r = train_step(pair, _patches(8, 0), precision_for("cpu", "bf16"))
    assert np.isfinite([r.g_loss, r.d_loss]).all()
    assert all(p.dtype == torch.float32 for p in pair.generator.parameters())


def test_discriminator_reinitialised_below_threshold_and_counted():
    pair = _pair()
    before = copy.deepcopy(pair.discriminator.state_dict())
    r = train_step(pair, _patches(8, 0), FP32, d_reinit_below=1e9)  # force the trigger
    assert r.d_reinit
    after = pair.discriminator.state_dict()
    assert not torch.equal(before["features.0.weight"], after["features.0.weight"])
    assert abs(float(after["features.0.weight"].std()) - 0.02) < 0.005  # fresh N(0, 0.02) draw


def test_validation_scores_do_not_depend_on_batch_order_or_size():
    pair, x = _pair(), _patches(8, 0)
    for _ in range(3):  # move BN running statistics away from their initial values
        train_step(pair, x, FP32)
    data = _patches(20, 3)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    a = validation_scores(pair.generator, pair.discriminator, TensorDataset(data), FP32, lam=0.9, recon="l1",
                          batch_size=20)
    b = validation_scores(pair.generator, pair.discriminator, TensorDataset(data[perm]), FP32, lam=0.9,
                          recon="l1", batch_size=3)
    assert a.shape == (20,) and np.allclose(a[perm.numpy()], b, rtol=0, atol=1e-6)
    assert pair.generator.training and pair.discriminator.training  # mode restored


def test_fit_reports_schedule_and_reinit_counts(tmp_path):
    run = _run(lr_schedule="step", lr_step_epochs=1, lr_gamma=0.5, d_reinit_below=1e9)
    reports = list(_fit(tmp_path, run))
    epochs = [r for r in reports if isinstance(r, EpochReport)]
    assert [e.epoch for e in epochs] == [1, 2]
    assert [e.lr for e in epochs] == pytest.approx([2e-4, 1e-4])  # the scheduler is actually stepped
    assert [e.d_reinits for e in epochs] == [4, 4]  # 32 patches / batch 8, trigger forced every step
    assert all(e.checkpoint.is_file() and np.isfinite(e.val_objective) for e in epochs)
    result = reports[-1]
    assert isinstance(result, TrainResult) and result.d_reinits == 8
    cal = result.calibration
    assert cal.n_patches == 12 and cal.n_scans == 3 and cal.patch_threshold > 0
    model = load_model(result.model_path)
    assert model.meta.calibration == cal and model.meta.card.n_val_scans == 3
    assert model.meta.card.evaluation["training"]["best_epoch"] == result.best_epoch


def test_resume_after_interruption_reproduces_the_uninterrupted_run(tmp_path):
    run = _run(epochs=2, input_noise=0.05, lr_schedule="cosine")
    list(_fit(tmp_path, run, "full"))
    gen = _fit(tmp_path, run, "cut")
    for r in gen:  # the interrupted run: stop pulling after epoch 1 (what cancel / Ctrl-C does)
        if isinstance(r, EpochReport):
            break
    gen.close()
    resumed = list(_fit(tmp_path, run, "cut", resume=True))
    assert [r.epoch for r in resumed if isinstance(r, EpochReport)] == [2]
    full = torch.load(tmp_path / "full" / "state.pt", weights_only=True)
    cut = torch.load(tmp_path / "cut" / "state.pt", weights_only=True)
    for part in ("generator", "discriminator"):
        assert full[part].keys() == cut[part].keys()
        assert all(torch.equal(full[part][k], cut[part][k]) for k in full[part])
    a, b = load_file(tmp_path / "full.xsm"), load_file(tmp_path / "cut.xsm")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_selects_the_best_benign_epoch(tmp_path, monkeypatch):
    calls = []

    def rising(*args, **kwargs):  # validation objective gets worse every epoch after the first
        calls.append(1)
        return np.full(12, float(len(calls)))

    monkeypatch.setattr(loop_module, "validation_scores", rising)
    reports = list(_fit(tmp_path, _run(epochs=6, patience=2)))
    result = reports[-1]
    assert result.stopped_early and result.epochs_run == 3 and result.best_epoch == 1
    assert [r.best for r in reports if isinstance(r, EpochReport)] == [True, False, False]
    state = torch.load(tmp_path / "m" / "state.pt", weights_only=True)
    saved = load_file(tmp_path / "m.xsm")
    best_w = state["best"]["generator"]["model.model.0.weight"]
    assert torch.equal(saved["generator.model.model.0.weight"], best_w)
    assert not torch.equal(best_w, state["generator"]["model.model.0.weight"])


def test_fit_refuses_inconsistent_inputs(tmp_path):
    with pytest.raises(ValueError, match="network expects"):
        list(fit(_run(), TensorDataset(torch.zeros(4, 3, 32, 32)), TensorDataset(_patches(4, 0)),
                 out=tmp_path / "x.xsm", workdir=tmp_path))
    with pytest.raises(ValueError, match="no validation patches"):
        list(fit(_run(), TensorDataset(_patches(4, 0)), TensorDataset(torch.zeros(0, 2, 32, 32)),
                 out=tmp_path / "x.xsm", workdir=tmp_path))


def test_resume_refuses_a_state_from_different_settings(tmp_path):
    list(_fit(tmp_path, _run(epochs=1)))
    with pytest.raises(ValueError, match="different settings"):
        list(_fit(tmp_path, _run(epochs=2, lr=1e-3), resume=True))


DDP_SCRIPT = """
import hashlib, sys, torch.distributed as dist
from pathlib import Path
import xscreen.train.loop as loop
from xscreen.config import RunConfig
from xscreen.train.run import distributed_context, train_model

sessions = []
build = loop.build_session
loop.build_session = lambda *a, **k: sessions.append(build(*a, **k)) or sessions[-1]
run = RunConfig.load(sys.argv[1])
with distributed_context("cpu") as device:
    result = list(train_model(run, Path(sys.argv[2])))[-1]
    s = sessions[0]
    params = list(s.generator.parameters()) + list(s.discriminator.parameters())
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in params)).hexdigest()
    Path(sys.argv[2], f"rank{dist.get_rank()}.txt").write_text(
        f"{dist.get_world_size()} {result.model_id} {digest} {len(s.loader)}")
"""


@pytest.fixture
def scan_dir(tmp_path):
    from xscreen.scan import Scan, save_scan

    rng = np.random.default_rng(0)
    for i in range(6):
        t = rng.uniform(0.05, 0.6, (2, 64, 64))
        folder = tmp_path / ("benign" if i < 4 else "val")
        save_scan(Scan(f"s{i}", "dual", (t * 60000).astype(np.uint16), 60000.0), folder / f"s{i}.h5")
    return tmp_path / "benign"


def test_two_process_gloo_ddp_trains_and_saves(tmp_path, scan_dir):
    run = dataclasses.replace(_run(epochs=1, batch_size=4, deterministic=False), benign=(str(scan_dir),),
                              output=str(tmp_path / "ddp.xsm"))
    run.save(tmp_path / "run.json")
    (tmp_path / "ddp_worker.py").write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          str(tmp_path / "ddp_worker.py"), str(tmp_path / "run.json"), str(tmp_path / "work")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = [(tmp_path / "work" / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2" and ranks[0][1] == ranks[1][1]  # both ranks agree on the file
    assert ranks[0][2] == ranks[1][2]  # G (DDP) and D (hand-averaged) weights identical on both ranks
    # 3 train scans x 9 patches = 27; DistributedSampler gives each rank 13 -> 3 batches of 4 (not 6)
    assert int(ranks[0][3]) == int(ranks[1][3]) == 3
    model = load_model(tmp_path / "ddp.xsm")
    assert model.model_id == ranks[0][1] and model.meta.calibration is not None
    assert model.meta.card.n_train_scans == 3 and model.meta.card.n_val_scans == 1  # split by scan


def test_cli_train_with_config_file_and_model_info(tmp_path, scan_dir, capsys):
    from xscreen.cli import main

    cfg = dataclasses.replace(_run(epochs=3), benign=(str(scan_dir),), name="tiny")
    cfg.save(tmp_path / "run.json")
    out = tmp_path / "cli.xsm"
    assert main(["train", "--config", str(tmp_path / "run.json"), "-o", str(out), "--epochs", "1", "-q",
                 "--val", str(scan_dir.parent / "val"),
                 "--save-config", str(tmp_path / "eff.json")]) == 0
    eff = RunConfig.load(tmp_path / "eff.json")
    assert eff.train.epochs == 1 and eff.net.ngf == 4 and eff.output == str(out)  # flag beats file
    capsys.readouterr()
    assert main(["model", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model_id"].startswith("tiny-") and info["card"]["n_train_scans"] == 4
    assert info["train"]["epochs"] == 1 and info["calibration"]["n_scans"] == 2  # the --val scans
    assert info["card"]["n_val_scans"] == 2
    assert main(["model", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "alarm      a bag alarms iff a region reaches the alarm threshold" in text
    assert "review     regions from" in text


def test_cli_errors_name_the_file(tmp_path, capsys):
    from xscreen.cli import main

    assert main(["train", str(tmp_path / "missing"), "-o", str(tmp_path / "m.xsm"), "-q"]) == 2
    assert f"error: {tmp_path / 'missing'}: no such file or folder" in capsys.readouterr().err
    (tmp_path / "bad.xsm").write_bytes(b"not a model")
    assert main(["model", "info", str(tmp_path / "bad.xsm")]) == 2
    assert f"error: {tmp_path / 'bad.xsm'}:" in capsys.readouterr().err


def test_hide_blocks_hides_one_square_per_picked_patch():
    from xscreen.train.step import hide_blocks

    x = torch.rand(64, 2, 32, 32) * 2 - 1
    assert torch.equal(hide_blocks(x, 0.0), x)
    y = hide_blocks(x, 1.0, torch.Generator().manual_seed(1))
    for k in range(64):
        changed = (y[k] != x[k]).any(0)
        rows, cols = changed.any(1).nonzero().flatten(), changed.any(0).nonzero().flatten()
        side_y, side_x = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert 8 <= side_y <= 16 and 8 <= side_x <= 16  # S/4 .. S/2, a square up to ties with the mean
        block = y[k][:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert torch.allclose(block, x[k].mean((1, 2), keepdim=True).expand_as(block))
    half = hide_blocks(x, 0.5, torch.Generator().manual_seed(2))
    share = float((half != x).flatten(1).any(1).float().mean())
    assert 0.3 < share < 0.7


def test_pasted_dataset_is_deterministic_and_pastes_benign_material():
    from xscreen.train.selection import PastedDataset, anomaly_auc

    base = TensorDataset(_patches(10, 3))
    a, b = PastedDataset(base, seed=5), PastedDataset(base, seed=5)
    other = PastedDataset(base, seed=6)
    for i in range(10):
        x, y = base[i][0], a[i]
        assert y.shape == x.shape and torch.equal(y, b[i])
        changed = (y != x).any(0).float().mean()
        assert 0.0 < changed < 0.5  # a rectangle, not the whole patch
        assert y.min() >= -1 and y.max() <= 1
    assert any(not torch.equal(a[i], other[i]) for i in range(10))
    assert anomaly_auc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert anomaly_auc(np.array([0.1, 0.2]), np.array([0.1, 0.2])) == 0.5


def test_fit_with_pasted_selection_minimises_minus_auc(tmp_path):
    run = _run(selection="pasted", epochs=2)
    reports = list(_fit(tmp_path, run))
    epochs = [r for r in reports if isinstance(r, EpochReport)]
    assert all(-1.0 <= e.val_objective <= 0.0 for e in epochs)
    best = min(epochs, key=lambda e: e.val_objective)
    assert reports[-1].best_epoch == best.epoch and reports[-1].best_objective == best.val_objective


@pytest.mark.parametrize("kind", ["dual", "rgb"])
def test_inserted_objects_only_ever_attenuate_and_are_deterministic(kind):
    from xscreen.train.selection import InsertedDataset

    x = _patches(12, 4)[:, :1].repeat(1, 2 if kind == "dual" else 3, 1, 1)
    base = TensorDataset(x)
    a, b = InsertedDataset(base, kind, 9.0, seed=1), InsertedDataset(base, kind, 9.0, seed=1)
    for i in range(12):
        y, x0 = a[i], base[i][0]
        assert torch.equal(y, b[i]) and y.shape == x0.shape
        changed = (y != x0).any(0)
        assert 0 < changed.float().mean() < 0.95  # an object, never the whole patch
        if kind == "dual":  # attenuation (x up = darker) grows, low energy at least as much as high
            assert (y >= x0 - 1e-6).all()
            gain = (y - x0)[:, changed]
            assert (gain[1] >= gain[0] - 1e-6).all()
        else:  # transmission (x down = darker) shrinks
            assert (y <= x0 + 1e-6).all()


def test_fit_with_inserted_selection_minimises_minus_auc(tmp_path):
    reports = list(_fit(tmp_path, _run(selection="inserted", epochs=2)))
    epochs = [r for r in reports if isinstance(r, EpochReport)]
    assert all(-1.0 <= e.val_objective <= 0.0 for e in epochs)
    assert reports[-1].best_objective == min(e.val_objective for e in epochs)


def test_train_model_fits_the_area_alarm_rule_on_the_held_out_scans(tmp_path):
    """A freshly trained model carries the one alarm rule (issue 13), fitted on its held-out benign
    scans screened at the operating stride - not a calibration derived from patch statistics."""
    from screen_fixtures import dual_scan

    from xscreen.checkpoint import load_model
    from xscreen.evaluate.recalibrate import CalibrationProgress
    from xscreen.scan import save_h5
    from xscreen.train.run import train_model, val_scans

    benign, val = tmp_path / "benign", tmp_path / "val"
    for folder, seeds in ((benign, range(4)), (val, range(10, 14))):
        folder.mkdir()
        for s in seeds:
            save_h5(dual_scan(96, 96 + 8 * s % 64, seed=s, box=(8, 8, 60, 50), scan_id=f"b{s}"), folder / f"b{s}.h5")
    run = RunConfig(benign=(str(benign),), val=(str(val),), output=str(tmp_path / "m.xsm"), net=NET,
                    patch=PatchConfig(size=32, stride=16),
                    train=TrainConfig(epochs=1, batch_size=8, precision="fp32", device="cpu", log_every=100))
    assert [p.name for p in val_scans(run, tmp_path / "work")] == ["b10.h5", "b11.h5", "b12.h5", "b13.h5"]
    items = list(train_model(run, tmp_path / "work"))
    result = items[-1]
    assert isinstance(result, TrainResult)
    assert sum(isinstance(i, CalibrationProgress) for i in items) == 4
    cal = load_model(result.model_path).meta.calibration
    assert cal.alarm_rule == "area" and cal.n_scans == 4 and cal == result.calibration
    assert result.model_id.endswith(load_model(result.model_path).checksum[:12])


def test_val_scans_are_the_patch_stores_own_held_out_split(tmp_path):
    from screen_fixtures import dual_scan

    from xscreen.dataset import store_info
    from xscreen.scan import save_h5
    from xscreen.train.run import prepare_stores, val_scans

    scans = tmp_path / "scans"
    scans.mkdir()
    for s in range(10):
        save_h5(dual_scan(64, 64, seed=s, box=(4, 4, 50, 50)), scans / f"s{s}.h5")
    run = RunConfig(benign=(str(scans),), patch=PatchConfig(size=32, stride=16),
                    train=TrainConfig(val_fraction=0.3, seed=3))
    list(prepare_stores(run, tmp_path / "work", reuse=False))
    held_out = sorted(s.name for s in store_info(tmp_path / "work" / "patches.h5").scans if s.split == "val")
    assert len(held_out) == 3 and sorted(p.name for p in val_scans(run, tmp_path / "work")) == held_out
    (scans / "new.h5").write_bytes((scans / "s1.h5").read_bytes())  # a file added after the store was built
    assert sorted(p.name for p in val_scans(run, tmp_path / "work")) == held_out


def test_inserted_objects_follow_the_transmission_range():
    """The criterion's objects are faint by default (t 0.3-0.8); a dense range attenuates more."""
    from xscreen.train.selection import insert_object

    x = _patches(1, 7)[0]
    xs = x.numpy()
    faint = insert_object(xs, "dual", 9.0, np.random.default_rng(3))
    same = insert_object(xs, "dual", 9.0, np.random.default_rng(3), t_range=(0.3, 0.8))
    dense = insert_object(xs, "dual", 9.0, np.random.default_rng(3), t_range=(0.02, 0.3))
    assert np.array_equal(faint, same)  # the default is the faint range
    added_faint, added_dense = (faint - xs).max(), (dense - xs).max()
    # high-energy channel: 2 (-ln t) / a_max at the object's core, t the range's draw
    assert 2 * -np.log(0.8) / 9.0 - 1e-3 <= (faint[0] - xs[0]).max() <= 2 * -np.log(0.3) / 9.0 + 1e-3
    assert added_dense > added_faint


def test_a_step_without_the_discriminator_update_trains_g_only_and_reports_the_same_losses():
    """TrainConfig.d_every: on the steps between D updates G steps exactly as in a full step (same
    losses, same new G weights) while D's weights and optimiser state stay untouched."""
    x = _patches(8, 0)
    full, skip = _pair(4), _pair(4)
    d_before = copy.deepcopy(skip.discriminator.state_dict())
    a = train_step(full, x, FP32)
    b = train_step(skip, x, FP32, d_update=False)
    assert (b.g_loss, b.g_adv, b.g_con, b.g_lat) == pytest.approx((a.g_loss, a.g_adv, a.g_con, a.g_lat), rel=1e-5)
    assert (b.d_loss, b.d_real, b.d_fake) == pytest.approx((a.d_loss, a.d_real, a.d_fake), rel=1e-5)
    for (name, pa), pb in zip(full.generator.state_dict().items(), skip.generator.state_dict().values()):
        torch.testing.assert_close(pa, pb, msg=name)
    after = skip.discriminator.state_dict()
    for k, v in d_before.items():
        if "running" in k or "num_batches" in k:
            continue  # BatchNorm statistics follow the forward passes, as in eval of any step
        torch.testing.assert_close(after[k], v, msg=k)
    assert not skip.opt_d.state  # Adam never stepped
    assert full.discriminator.state_dict()["features.0.weight"].ne(d_before["features.0.weight"]).any()


def test_fit_steps_the_discriminator_on_every_nth_step(tmp_path, monkeypatch):
    seen = []
    real = loop_module.train_step

    def spy(*args, **kw):
        seen.append(kw["d_update"])
        return real(*args, **kw)

    monkeypatch.setattr(loop_module, "train_step", spy)
    reports = list(_fit(tmp_path, _run(epochs=1, batch_size=4, d_every=3), n_train=32))
    assert seen == [True, False, False, True, False, False, True, False]  # 8 steps: D on steps 1, 4, 7
    assert isinstance(reports[-1], TrainResult)
    assert load_model(tmp_path / "m.xsm").meta.train.d_every == 3
