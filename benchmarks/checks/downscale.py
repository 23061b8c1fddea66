"""Write a ×0.5 copy of a synthetic dataset folder (scans area-averaged, masks 2×2 max)."""
import sys, json, shutil
from pathlib import Path
import numpy as np, cv2
from xscreen.scan import load_scan, save_h5, list_scans

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
f = 2
for label in ("benign", "threat"):
    if not (src / label).is_dir():
        continue
    (dst / label).mkdir(parents=True, exist_ok=True)
    for p in list_scans(src / label):
        s = load_scan(p)
        c = s.channels.astype(np.float32)
        h, w = (s.height // f) * f, (s.width // f) * f
        c = c[:, :h, :w].reshape(c.shape[0], h // f, f, w // f, f).mean((2, 4))
        s.channels = np.round(c).astype(s.channels.dtype)
        s.pixel_pitch_mm = (s.pixel_pitch_mm or 1.0) * f
        save_h5(s, dst / label / p.name)
        m = src / "masks" / f"{p.stem}.png"
        if m.exists():
            mk = cv2.imread(str(m), cv2.IMREAD_UNCHANGED)[:h, :w]
            mk = mk.reshape(h // f, f, w // f, f).max((1, 3))
            (dst / "masks").mkdir(exist_ok=True)
            cv2.imwrite(str(dst / "masks" / m.name), mk)
        b = src / "boxes" / f"{p.stem}.json"
        if b.exists():
            d = json.loads(b.read_text())
            d["width"], d["height"] = w // f, h // f
            for t in d["threats"]:
                t["box"] = [v // f for v in t["box"]]
            (dst / "boxes").mkdir(exist_ok=True)
            (dst / "boxes" / b.name).write_text(json.dumps(d))
if (src / "labels.csv").exists():
    shutil.copy(src / "labels.csv", dst / "labels.csv")
print("done", dst)
