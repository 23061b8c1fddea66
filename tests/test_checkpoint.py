"""The model file: round trip, safe loading, refusal of tampered / truncated / foreign files."""
import json
import os

import pytest
import torch

from xscreen.checkpoint import (
    FORMAT, ModelCard, ModelError, ModelMeta, library_versions, load_model, read_meta, save_model,
    update_model_meta,
)
from xscreen.config import Calibration, NetConfig, PatchConfig, Preprocess, TrainConfig
from xscreen.network import Discriminator, Generator

NET = NetConfig(size=32, channels=2, ngf=4, ndf=4, nz=8)


def _meta(calibration=None):
    card = ModelCard(name="tiny", created="2026-01-01T00:00:00+00:00", seed=3, data_manifest_sha256="ab" * 32,
                     n_train_patches=10, n_val_patches=4, n_train_scans=2, n_val_scans=1,
                     versions=library_versions(), train_seconds=1.5, command="xscreen train x")
    return ModelMeta(NET, Preprocess(kind="dual"), PatchConfig(size=32, stride=16), TrainConfig(epochs=2),
                     calibration, card)


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    g, d = Generator(NET), Discriminator(NET)
    g(torch.rand(4, 2, 32, 32))  # move BN running stats off their defaults so they must round-trip
    path = tmp_path / "m.xsm"
    cal = Calibration(patch_threshold=0.3, patch_far=0.01, scan_threshold=0.5, scan_far=0.05,
                      quantiles={"0.5": 0.1, "0.99": 0.3}, n_patches=100, n_scans=5)
    checksum = save_model(path, g.to(memory_format=torch.channels_last), d, _meta(cal))
    return path, g, d, checksum


def test_round_trip(model_file):
    path, g, d, checksum = model_file
    m = load_model(path)
    assert m.checksum == checksum and m.model_id == f"tiny-{checksum[:12]}"
    assert not m.generator.training and not m.discriminator.training
    for a, b in [(g.state_dict(), m.generator.state_dict()), (d.state_dict(), m.discriminator.state_dict())]:
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert m.meta == _meta(m.meta.calibration)
    assert m.meta.calibration.quantiles == {"0.5": 0.1, "0.99": 0.3}
    assert m.meta.patch.stride == 16 and m.meta.train.epochs == 2


def test_update_meta_rewrites_and_rechecksums(model_file):
    path, _, _, checksum = model_file
    new_cal = Calibration(patch_threshold=0.7, patch_far=0.02, scan_threshold=0.9, scan_far=0.1)
    new = update_model_meta(path, calibration=new_cal, evaluation={"patch_auc": 0.91}, description="x")
    meta, ck = read_meta(path)
    assert ck == new != checksum
    assert meta.calibration == new_cal and meta.card.evaluation == {"patch_auc": 0.91}
    assert meta.card.description == "x" and meta.card.seed == 3
    with pytest.raises(ValueError, match="bogus"):
        update_model_meta(path, bogus=1)


def _corrupt(path, data):
    path.write_bytes(data)
    with pytest.raises(ModelError) as err:
        load_model(path)
    assert str(path) in str(err.value)
    return err.value.fault


def test_corrupted_files_are_refused(model_file, tmp_path):
    path, g, _, _ = model_file
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[len(data) - 50] ^= 0x01  # one bit in the tensor data
    assert "checksum mismatch" in _corrupt(tmp_path / "flip.xsm", bytes(flipped))
    assert "truncated" in _corrupt(tmp_path / "trunc.xsm", data[: len(data) - 100])
    assert "not a readable" in _corrupt(tmp_path / "rand.xsm", os.urandom(4096))
    pickle = tmp_path / "pickle.pt"
    torch.save(g.state_dict(), pickle)
    assert "not a readable" in _corrupt(tmp_path / "pickle.xsm", pickle.read_bytes())
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "absent.xsm")


def test_metadata_tamper_is_detected(model_file, tmp_path):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    path = model_file[0]
    with safe_open(str(path), framework="pt") as fh:
        header = dict(fh.metadata())
    tensors = load_file(str(path))
    meta = json.loads(header["meta"])
    meta["calibration"]["patch_threshold"] = 99.0  # loosen the threshold without re-signing
    header["meta"] = json.dumps(meta, sort_keys=True)
    save_file(tensors, str(tmp_path / "t.xsm"), metadata=header)
    with pytest.raises(ModelError, match="checksum mismatch"):
        load_model(tmp_path / "t.xsm")


def test_foreign_safetensors_files_are_refused(model_file, tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelError, match="not an xscreen model file"):
        load_model(tmp_path / "other.safetensors")
    save_file({"w": torch.zeros(3)}, str(tmp_path / "v2.xsm"), metadata={"xscreen_format": "xscreen-model/2"})
    with pytest.raises(ModelError, match="xscreen-model/2"):
        load_model(tmp_path / "v2.xsm")
    save_file({"generator.w": torch.zeros(3)}, str(tmp_path / "half.xsm"),
              metadata={"xscreen_format": FORMAT, "meta": "{}", "checksum": "0"})
    with pytest.raises(ModelError, match="lacks generator or discriminator"):
        load_model(tmp_path / "half.xsm")


def _resign(src, dst, edit_meta=None, edit_tensors=None):
    """What someone who edits a model file would do: change it, then recompute the plain SHA-256."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from xscreen.checkpoint import _checksum

    with safe_open(str(src), framework="pt") as fh:
        header = dict(fh.metadata())
    tensors = load_file(str(src))
    meta = json.loads(header["meta"])
    if edit_meta:
        edit_meta(meta)
    if edit_tensors:
        edit_tensors(tensors)
    header["meta"] = json.dumps(meta, sort_keys=True)
    header["checksum"] = _checksum(tensors, header["meta"])
    save_file(tensors, str(dst), metadata=header)
    return dst


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("section, key, value, fault", [
    ("calibration", "patch_threshold", INF, "calibration.patch_threshold"),
    ("calibration", "scan_threshold", NAN, "calibration.scan_threshold"),
    ("calibration", "patch_threshold", 0.0, "calibration.patch_threshold"),
    ("calibration", "scan_aggregation", "mean", "calibration.scan_aggregation"),
    ("calibration", "quantiles", {"0.5": NAN}, "calibration.quantiles"),
    ("preprocess", "a_max", 0.0, "preprocess.a_max"),
    ("preprocess", "a_max", NAN, "preprocess.a_max"),
    ("preprocess", "kind", "ct", "preprocess.kind"),
    ("train", "lam", NAN, "train.lam"),
    ("train", "lam", 1.5, "train.lam"),
    ("train", "recon", "l3", "train.recon"),
    ("net", "ngf", 100000, "net.ngf"),
    ("net", "nz", 0, "net.nz"),
    ("net", "ndf", 4.0, "net.ndf"),
    ("net", "ngf", True, "net.ngf"),
    ("net", "channels", 3, "net.channels 3 does not match"),
    ("patch", "size", 64, "patch.size 64 differs"),
    ("card", "seed", "zero", "card.seed"),
    ("card", "versions", {"torch": 2}, "card.versions"),
])
def test_resigned_invalid_metadata_is_refused(model_file, tmp_path, section, key, value, fault):
    def edit(meta):
        meta[section][key] = value

    bad = _resign(model_file[0], tmp_path / "bad.xsm", edit_meta=edit)
    for load in (load_model, read_meta):
        with pytest.raises(ModelError, match="invalid model metadata") as err:
            load(bad)
        assert fault in err.value.fault and str(bad) in str(err.value)


def test_resigned_bad_weights_are_refused(model_file, tmp_path):
    def first(tensors, part):
        return next(k for k in sorted(tensors) if k.startswith("generator.") and k.endswith(part))

    cases = {"nan": (lambda t: t[first(t, "weight")].view(-1).__setitem__(0, NAN), "NaN or infinite"),
             "inf": (lambda t: t[first(t, "bias")].view(-1).__setitem__(0, INF), "NaN or infinite"),
             "var": (lambda t: t[first(t, "running_var")].view(-1).__setitem__(0, -1.0), "negative"),
             "f64": (lambda t: t.__setitem__(first(t, "weight"), t[first(t, "weight")].double()), "float64")}
    for name, (edit, fault) in cases.items():
        bad = _resign(model_file[0], tmp_path / f"{name}.xsm", edit_tensors=edit)
        with pytest.raises(ModelError, match="invalid weights") as err:
            load_model(bad)
        assert fault in err.value.fault


def test_architecture_is_compared_before_anything_is_allocated(model_file, tmp_path, monkeypatch):
    import xscreen.checkpoint as ck

    devices = []

    build = ck.build_generator

    def spy(net):
        devices.append(torch.get_default_device().type)
        return build(net)

    monkeypatch.setattr(ck, "build_generator", spy)

    def widen(meta):
        meta["net"]["ngf"] = 512  # in range, but not the file's weights: would be ~1 GB for real

    bad = _resign(model_file[0], tmp_path / "wide.xsm", edit_meta=widen)
    with pytest.raises(ModelError, match="weights do not match the recorded architecture"):
        load_model(bad)
    assert devices == ["meta"]
    load_model(model_file[0])
    assert devices == ["meta", "meta", "cpu"]


def test_unetpp_model_round_trips_and_is_checked_against_its_architecture(tmp_path, capsys):
    """A model file records its generator: a UNet++ model loads as one with the same outputs, and
    the same weights relabelled as the UNet are refused by the shape check (nothing executes)."""
    import dataclasses

    from xscreen.network import NestedGenerator, build_generator

    net = dataclasses.replace(NET, generator="unetpp")
    torch.manual_seed(0)
    g, d = build_generator(net), Discriminator(net)
    g(torch.rand(4, 2, 32, 32))
    g.eval()
    meta = dataclasses.replace(_meta(), net=net)
    path = tmp_path / "pp.xsm"
    save_model(path, g, d, meta)
    m = load_model(path)
    assert isinstance(m.generator, NestedGenerator) and m.meta.net.generator == "unetpp"
    x = torch.rand(3, 2, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(m.generator(x), g(x), atol=1e-6)
    from xscreen.cli import main as cli_main
    from xscreen.gui.probe import describe_model  # the GUI's model panel (no Qt needed to read it)

    assert "patch 32px, ngf 4 (UNet++ generator)" in describe_model(path)
    assert cli_main(["model", "info", str(path)]) == 0
    assert "network    UNet++ ngf 4 ndf 4 nz 8;" in capsys.readouterr().out

    def as_unet(meta):
        meta["net"]["generator"] = "unet"

    with pytest.raises(ModelError, match="weights do not match the recorded architecture"):
        load_model(_resign(path, tmp_path / "relabelled.xsm", edit_meta=as_unet))

    def unknown(meta):
        meta["net"]["generator"] = "../../etc/passwd"

    with pytest.raises(ModelError):
        load_model(_resign(path, tmp_path / "unknown.xsm", edit_meta=unknown))


def test_attention_discriminator_round_trips_and_is_checked_against_its_architecture(tmp_path, capsys):
    """NetConfig.d_attention (with spectral norm: the second anchor's D) is stored in the model file
    and named by `model info` and the GUI panel; the same weights labelled without it are refused."""
    import dataclasses

    from xscreen.network import SelfAttention, build_generator

    net = dataclasses.replace(NET, d_attention=True, d_spectral_norm=True)
    torch.manual_seed(0)
    g, d = build_generator(net), Discriminator(net)
    with torch.no_grad():
        next(m for m in d.modules() if isinstance(m, SelfAttention)).gamma.fill_(0.5)
    d.eval(), g.eval()
    path = tmp_path / "att.xsm"
    save_model(path, g, d, dataclasses.replace(_meta(), net=net))
    m = load_model(path)
    assert m.meta.net.d_attention and m.meta.net.d_spectral_norm
    x = torch.rand(3, 2, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(m.discriminator(x)[1], d(x)[1], atol=1e-6)
    from xscreen.cli import main as cli_main
    from xscreen.gui.probe import describe_model

    assert "ngf 4 (D spectral norm, D self-attention)" in describe_model(path)
    assert cli_main(["model", "info", str(path)]) == 0
    assert "ndf 4 nz 8 (D spectral norm, D self-attention); score" in capsys.readouterr().out

    def without(meta):
        meta["net"]["d_attention"] = False

    with pytest.raises(ModelError, match="weights do not match the recorded architecture"):
        load_model(_resign(path, tmp_path / "relabelled.xsm", edit_meta=without))

    def not_bool(meta):
        meta["net"]["d_attention"] = "yes"

    with pytest.raises(ModelError, match="d_attention"):
        load_model(_resign(path, tmp_path / "notbool.xsm", edit_meta=not_bool))
