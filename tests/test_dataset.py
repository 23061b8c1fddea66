import pickle

import cv2
import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from xscreen.config import PatchConfig, Preprocess
from xscreen.dataset import (BlockBatchSampler, ImageFolderPatches, PatchStoreDataset, build_patch_store,
                             split_scans, store_info, tile_origins)
from xscreen.preprocess import model_input
from xscreen.scan import Scan, ScanError

PATCH = PatchConfig(size=16, stride=8)


def dual_scan(seed: int, h=48, w=72, i0=60000.0) -> Scan:
    """Air background with one attenuating block whose place depends on the seed."""
    rng = np.random.default_rng(seed)
    ch = np.full((2, h, w), i0, dtype=np.float64)
    y, x = rng.integers(0, h - 20), rng.integers(0, w - 30)
    ch[0, y:y + 20, x:x + 30] *= 0.3
    ch[1, y:y + 20, x:x + 30] *= 0.15
    ch = np.clip(ch * rng.normal(1.0, 0.01, ch.shape), 0, 65535).astype(np.uint16)
    return Scan(f"bag{seed}", "dual", ch, i0)


def build(scans, out, patch=PATCH, **kw):
    reports = list(build_patch_store(scans, out, patch, **kw))
    assert reports[-1].done and out.exists()
    return reports


def expected_non_air(scan: Scan, patch: PatchConfig) -> list[tuple[int, int]]:
    t = scan.transmission().mean(axis=0)
    s = patch.size
    return [(y, x) for y, x in tile_origins(scan.height, scan.width, s, patch.stride)
            if t[y:y + s, x:x + s].mean() < patch.air_threshold]


def test_tile_origins_cover_every_pixel():
    o = tile_origins(50, 70, 16, 12)
    cover = np.zeros((50, 70), bool)
    for y, x in o:
        cover[y:y + 16, x:x + 16] = True
    assert cover.all() and o[:, 0].max() == 34 and o[:, 1].max() == 54


def test_store_splits_by_scan_and_skips_air(tmp_path):
    scans = [dual_scan(i) for i in range(5)]
    out = tmp_path / "store.h5"
    reports = build(scans, out, val_fraction=0.4, seed=3)
    assert [r.scan for r in reports[:-1]] == [1, 2, 3, 4, 5]
    info = store_info(out)
    assert info.n_train_scans == 3 and info.n_val_scans == 2
    with h5py.File(out) as f:
        assert f["train/patches"].dtype == np.uint16 and f["train/patches"].chunks[1:] == (2, 16, 16)
        train_rows, val_rows = set(f["train/scan_index"][()]), set(f["val/scan_index"][()])
        origins = {split: f[f"{split}/origin"][()] for split in ("train", "val")}
        index = {split: f[f"{split}/scan_index"][()] for split in ("train", "val")}
    assert train_rows.isdisjoint(val_rows) and train_rows | val_rows == set(range(5))
    assert {i for i, s in enumerate(info.scans) if s.split == "val"} == val_rows
    for i, scan in enumerate(scans):  # exactly the non-air tiles, nothing else
        split = info.scans[i].split
        got = sorted(map(tuple, origins[split][index[split] == i]))
        assert got == sorted(expected_non_air(scan, PATCH)) and info.scans[i].n_patches == len(got)
    assert reports[-1].skipped_air == 0 and sum(r.skipped_air for r in reports) > 0
    assert info.n_train + info.n_val == sum(len(expected_non_air(s, PATCH)) for s in scans)


def test_no_skip_air_and_max_per_scan(tmp_path):
    scans = [dual_scan(i) for i in range(3)]
    all_tiles = len(tile_origins(48, 72, 16, 8))
    build(scans, tmp_path / "a.h5", PatchConfig(16, 8, skip_air=False), val_fraction=0.0)
    assert store_info(tmp_path / "a.h5").n_train == 3 * all_tiles
    build(scans, tmp_path / "b.h5", PatchConfig(16, 8, skip_air=False), val_fraction=0.0, max_per_scan=5)
    assert [s.n_patches for s in store_info(tmp_path / "b.h5").scans] == [5, 5, 5]


def test_reads_normalise_with_each_scans_i0(tmp_path):
    scans = [dual_scan(0, i0=60000.0), dual_scan(1, i0=40000.0), dual_scan(2, i0=50000.0)]
    out = tmp_path / "s.h5"
    build(scans, out, val_fraction=0.34, seed=1)
    for split in ("train", "val"):
        ds = PatchStoreDataset(out, split)
        with h5py.File(out) as f:
            origins, index = f[f"{split}/origin"][()], f[f"{split}/scan_index"][()]
        for i in (0, len(ds) // 2, len(ds) - 1):
            y, x = origins[i]
            want = model_input(scans[index[i]], Preprocess("dual"))[:, y:y + 16, x:x + 16]
            item = ds[i]
            assert item.dtype == torch.float32 and item.shape == (2, 16, 16)
            np.testing.assert_allclose(item.numpy(), want, atol=1e-6)
            np.testing.assert_allclose(ds.read(i, i + 1)[0].numpy(), want, atol=1e-6)
        np.testing.assert_array_equal(ds.scan_index, index)
        np.testing.assert_allclose(ds.read(0, len(ds)).numpy(), torch.stack(ds.__getitems__(list(range(len(ds))))))


def test_dataset_is_lazy_and_fork_safe(tmp_path):
    scans = [dual_scan(i, h=160, w=240) for i in range(3)]
    out = tmp_path / "big.h5"
    build(scans, out, PatchConfig(16, 4, skip_air=False), val_fraction=0.0)
    ds = PatchStoreDataset(out)
    assert len(ds) == 3 * len(tile_origins(160, 240, 16, 4))  # ~6 MB of patches on disk
    first = ds[0]  # opens a handle in the parent before forking
    assert len(pickle.dumps(ds)) < 5000
    assert not [k for k, v in vars(ds).items() if isinstance(v, (np.ndarray, torch.Tensor))]
    sampler = BlockBatchSampler(len(ds), batch_size=64, block=16, shuffle=False)
    loader = DataLoader(ds, batch_sampler=sampler, num_workers=2)
    got = torch.cat(list(loader))
    assert got.shape == (len(ds), 2, 16, 16)
    torch.testing.assert_close(got[0], first)
    torch.testing.assert_close(got[-1], ds[len(ds) - 1])


def test_block_batch_sampler_covers_once_in_contiguous_runs():
    s = BlockBatchSampler(1000, batch_size=64, block=16, seed=5)
    batches = list(s)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000)) and len(batches) == len(s) == 16
    assert all(np.all(np.diff(b[k:k + 16]) == 1) for b in batches[:-1] for k in (0, 16, 32, 48))
    s.set_epoch(1)
    assert [i for b in s for i in b] != flat
    assert len(list(BlockBatchSampler(1000, 64, drop_last=True))) == 15


def test_augment_gives_a_dihedral_copy(tmp_path):
    build([dual_scan(0), dual_scan(1)], tmp_path / "s.h5", val_fraction=0.5)
    plain = PatchStoreDataset(tmp_path / "s.h5")[3]
    variants = [torch.rot90(v, k, (1, 2)) for v in (plain, torch.flip(plain, (2,))) for k in range(4)]
    aug = PatchStoreDataset(tmp_path / "s.h5", augment=True)
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        x = aug[3]
        match = [j for j, v in enumerate(variants) if torch.equal(x, v)]
        assert match
        seen.add(match[0])
    assert len(seen) >= 6


def test_manifest_is_reproducible_and_tracks_content(tmp_path):
    scans = [dual_scan(i) for i in range(4)]
    a = build(scans, tmp_path / "a.h5", seed=0)[-1].manifest_sha256
    b = build(scans, tmp_path / "b.h5", seed=0)[-1].manifest_sha256
    c = build(scans, tmp_path / "c.h5", seed=1, val_fraction=0.5)[-1].manifest_sha256
    assert a == b == store_info(tmp_path / "a.h5").manifest_sha256 and a != c and len(a) == 64


def test_cancel_leaves_no_file_and_bad_input_is_refused(tmp_path):
    out = tmp_path / "s.h5"
    gen = build_patch_store([dual_scan(i) for i in range(4)], out, PATCH)
    next(gen)
    gen.close()
    assert list(tmp_path.iterdir()) == []
    rgb = Scan("photo", "rgb", np.zeros((3, 48, 48), np.uint8), 255.0)
    with pytest.raises(ScanError, match="photo.*'rgb' scan but this store holds 'dual'"):
        build([dual_scan(0), rgb], out, val_fraction=0.0)
    with pytest.raises(ValueError, match="at least 2 scans"):
        build([dual_scan(0)], out)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="cannot open patch store"):
        PatchStoreDataset(tmp_path / "junk.h5")


def test_split_scans_is_seeded_and_keeps_both_sides():
    assert split_scans(10, 0.2, 0).sum() == 2
    assert np.array_equal(split_scans(10, 0.2, 7), split_scans(10, 0.2, 7))
    assert split_scans(3, 0.9, 0).sum() == 2 and split_scans(2, 0.01, 0).sum() == 1


def test_small_scan_is_padded_with_air(tmp_path):
    small = Scan("small", "dual", np.full((2, 64, 64), 30000, np.uint16), 60000.0)
    build([small], tmp_path / "s.h5", PatchConfig(size=128, stride=64), val_fraction=0.0)
    x = PatchStoreDataset(tmp_path / "s.h5")[0]
    assert x.shape == (2, 128, 128) and float(x[0, 100, 100]) == -1.0 and float(x[0, 10, 10]) > -1.0


def _write_folder(root, counts):
    rng = np.random.default_rng(0)
    for (split, cls), n in counts.items():
        d = root / split / cls
        d.mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(d / f"{i}.png"), rng.integers(0, 256, (20, 30, 3), dtype=np.uint8))


def test_image_folder_layout(tmp_path):
    _write_folder(tmp_path, {("train", "0.normal"): 3, ("test", "0.normal"): 2, ("test", "1.abnormal"): 4})
    train = ImageFolderPatches(tmp_path, "train", size=32, kind="rgb")
    test = ImageFolderPatches(tmp_path, "test", size=32, kind="gray")
    assert len(train) == 3 and list(train.labels) == [0, 0, 0]
    assert list(test.labels) == [0, 0, 1, 1, 1, 1]
    x, y = test[4]
    assert x.shape == (1, 32, 32) and y == 1 and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    x, _ = train[0]
    img = cv2.cvtColor(cv2.imread(str(tmp_path / "train/0.normal/0.png")), cv2.COLOR_BGR2RGB)
    want = cv2.resize(img, (32, 32), interpolation=cv2.INTER_AREA).transpose(2, 0, 1) / 255.0 * 2 - 1
    np.testing.assert_allclose(x.numpy(), want, atol=1e-6)
    with pytest.raises(ValueError, match="no such folder"):
        ImageFolderPatches(tmp_path, "val")
    (tmp_path / "test/1.abnormal/9.png").write_bytes(b"broken")
    with pytest.raises(ScanError, match="9.png: cannot decode"):
        ImageFolderPatches(tmp_path, "test", size=32)[6]


def test_cli_patches_build_and_info(tmp_path, capsys):
    from xscreen.cli import main
    from xscreen.scan import file_sha256, save_h5

    folder = tmp_path / "benign"
    for i in range(5):
        save_h5(dual_scan(i, h=64, w=96), folder / "sub" / f"bag{i}.h5")
    out = tmp_path / "store.h5"
    code = main(["patches", "build", str(folder), "-o", str(out), "--size", "16", "--stride", "8",
                 "--val-fraction", "0.4", "--max-per-scan", "7", "-q"])
    assert code == 0, capsys.readouterr().err
    info = store_info(out)
    assert info.n_train == 3 * 7 and info.n_val == 2 * 7 and info.patch == PatchConfig(16, 8)
    assert sorted(s.name for s in info.scans) == [f"bag{i}.h5" for i in range(5)]
    assert {s.sha256 for s in info.scans} == {file_sha256(folder / "sub" / f"bag{i}.h5") for i in range(5)}
    assert info.manifest_sha256 in capsys.readouterr().out
    assert main(["patches", "info", str(out)]) == 0
    assert "train: 21 patches from 3 scans" in capsys.readouterr().out
    (folder / "broken.h5").write_bytes(b"junk")
    assert main(["patches", "build", str(folder), "-o", str(tmp_path / "x.h5"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "broken.h5" in err and not (tmp_path / "x.h5").exists()
    assert main(["patches", "info", str(tmp_path / "nothing.h5")]) == 2
    assert "cannot open patch store" in capsys.readouterr().err


def test_real_sixray_scans_tile_and_load(realdata, tmp_path):
    """Vendor pseudo-colour JPEGs: a store of rgb uint8 patches, white background skipped as air,
    and the same images through the reference repo's folder layout."""
    from xscreen.scan import list_scans

    neg = list_scans(realdata / "sixray_subset" / "negative")[:3]
    pos = list_scans(realdata / "sixray_subset" / "positive")[:2]
    reports = build([*neg], tmp_path / "s.h5", PatchConfig(64, 64), val_fraction=0.34)
    info = store_info(tmp_path / "s.h5")
    assert info.kind == "rgb" and info.n_train > 50 and info.n_val > 20
    assert sum(r.skipped_air for r in reports) > 0  # the white surround is air
    x = PatchStoreDataset(tmp_path / "s.h5", "val")[0]
    assert x.shape == (3, 64, 64) and -1.0 <= float(x.min()) < float(x.max()) <= 1.0
    for folder, files in (("train/0.normal", neg), ("test/0.normal", neg[:1]), ("test/1.abnormal", pos)):
        (tmp_path / "ref" / folder).mkdir(parents=True)
        for f in files:
            (tmp_path / "ref" / folder / f.name).symlink_to(f)
    test = ImageFolderPatches(tmp_path / "ref", "test", size=64, kind="rgb")
    assert list(test.labels) == [0, 1, 1] and test[2][0].shape == (3, 64, 64)
