"""Lane throughput and latency: N bags fed into an inbox (or over DICOS C-STORE) at a set rate.

A feeder thread writes bag i at t0 + i / rate like a renaming sender (``.part`` then the final
name; over the network: a C-STORE to the receiver, which writes the inbox); the lane loop
(``intake.run_lane``, the code ``xscreen watch`` and the GUI's arrivals feed run) screens them.
Per bag: arrival (rename done / C-STORE answered) to scored (result handed over) latency. Per rate:
median and p95 latency, the sustained rate (bags / (last scored - first arrival)), the most bags
waiting at once, and whether the backlog grows (latency of the last third of bags over the first
third > 2 with more than one bag waiting): the rate at which it starts to grow is the lane's
capacity on this machine.

    python benchmarks/bench_intake.py [--n 20] [--rates 0.5,1,2,4] [--model M | --tiny]
                                      [--width 512] [--via inbox|network] [--threads T] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def tiny_scorer(kind: str):
    """Random ngf = ndf = 8 model with a calibration (speed does not depend on the weights)."""
    import torch

    from xscreen.checkpoint import LoadedModel, ModelCard, ModelMeta
    from xscreen.config import Calibration, NetConfig, PatchConfig, Preprocess, TrainConfig
    from xscreen.network import Discriminator, Generator
    from xscreen.scoring import Scorer

    torch.manual_seed(0)
    pre = Preprocess(kind=kind)
    net = NetConfig(size=32, channels=pre.channels, ngf=8, ndf=8, nz=16)
    meta = ModelMeta(net, pre, PatchConfig(size=32, stride=16), TrainConfig(), Calibration(1.0, 0.01, 1.0, 0.05),
                     ModelCard(name="bench-tiny"))
    g, d = Generator(net).eval(), Discriminator(net).eval()
    return Scorer(LoadedModel(g, d, meta, "bench-tiny", "0" * 64, Path("tiny.xsm")), device="cpu")


def make_bags(n: int, width: int, folder: Path) -> list[Path]:
    """N distinct HDF5 bags (a few synthetic bags, each saved under its own id: distinct contents,
    since identical bytes are one bag to the inbox)."""
    from xscreen.scan import save_h5
    from xscreen.synth import synth_bag

    base = [synth_bag(seed, threat=seed % 3 == 0, width=width).scan for seed in range(min(n, 4))]
    out = []
    for i in range(n):
        scan = base[i % len(base)]
        scan.scan_id = f"bench-{i:04d}"
        out.append(folder / f"src{i:04d}.h5")
        save_h5(scan, out[-1])
    return out


def feed_inbox(bags: list[Path], inbox: Path, rate: float, arrived: dict[str, float]) -> None:
    t0 = time.perf_counter()
    for i, src in enumerate(bags):
        time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        name = f"bag{i:04d}.h5"
        shutil.copy(src, inbox / f"{name}.part")
        arrived[name] = time.perf_counter()  # set first: the lane may take the bag the moment it is renamed
        (inbox / f"{name}.part").rename(inbox / name)


def feed_network(n: int, port: int, rate: float, arrived: dict[str, float], sample: Path) -> None:
    import pydicom
    from pynetdicom import AE

    ds = pydicom.dcmread(sample)
    ae = AE(ae_title="BENCH")
    ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="XSCREEN")
    t0 = time.perf_counter()
    for i in range(n):
        time.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        ds.SOPInstanceUID = pydicom.uid.generate_uid()  # distinct bytes: a distinct bag
        arrived[str(ds.SOPInstanceUID)] = time.perf_counter()  # the send starts: transfer counts as latency
        status = assoc.send_c_store(ds)
        if int(status.Status) != 0:
            raise RuntimeError(f"C-STORE refused: 0x{int(status.Status):04X}")
    assoc.release()


def run_rate(rate: float, n: int, scorer, args, work: Path, bags: list[Path]) -> dict:
    from xscreen.config import ScreenConfig
    from xscreen.intake import Inbox, IntakeResult, Rules, run_lane

    inbox = work / f"inbox-{rate:g}"
    inbox.mkdir()
    arrived: dict[str, float] = {}
    receiver = None
    if args.via == "network":
        from xscreen.intake.receiver import Receiver, ReceiverConfig

        receiver = Receiver(ReceiverConfig(inbox=inbox, port=0, bind="127.0.0.1", pair_wait=0, min_free_bytes=0))
        receiver.start()
        feeder = threading.Thread(target=feed_network, args=(n, receiver.port, rate, arrived, Path(args.sample)))
    else:
        feeder = threading.Thread(target=feed_inbox, args=(bags, inbox, rate, arrived))
    lat, done_at, waiting_max = [], [], 0
    cfg = ScreenConfig(stride=args.stride, maps=False)
    feeder.start()
    with Inbox(inbox, rules=Rules(settle=args.settle)) as box:
        for item in run_lane(box, {scorer.kind: scorer}, cfg, poll=0.02, max_bags=n):
            if not isinstance(item, IntakeResult):
                continue
            now = time.perf_counter()
            key = item.record.names[0] if args.via == "inbox" else item.scan.metadata.get("SOPInstanceUID", "")
            lat.append(now - arrived[key])
            done_at.append(now)
            waiting_max = max(waiting_max, len(arrived) - len(done_at))
    feeder.join()
    if receiver is not None:
        receiver.stop()
    third = max(1, n // 3)
    growth = statistics.median(lat[-third:]) / max(statistics.median(lat[:third]), 1e-9)
    return {"rate": rate, "n": n, "median_s": statistics.median(lat), "p95_s": float(np.percentile(lat, 95)),
            "max_s": max(lat), "sustained_per_s": n / (max(done_at) - min(arrived.values())),
            "max_waiting": waiting_max, "latency_growth": growth, "backlog_grows": growth > 2 and waiting_max > 1}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--rates", default="0.5,1,2,4", help="arrival rates to try, bags per second")
    p.add_argument("--model", help="model file (default: the shipped default model)")
    p.add_argument("--tiny", action="store_true", help="random ngf-8 model (smoke test)")
    p.add_argument("--width", type=int, default=512, help="bag width in pixels (synthetic bags)")
    p.add_argument("--stride", type=int, default=32)
    p.add_argument("--settle", type=float, default=0.0, help="inbox settle time (0: the feeder renames)")
    p.add_argument("--via", choices=("inbox", "network"), default="inbox")
    p.add_argument("--sample", default=str(Path(__file__).resolve().parents[2] / "shared" / "realdata" /
                                           "dicos_samples" / "SimpleProcessingDX.dcs"))
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from xscreen.paths import default_model
    from xscreen.scoring import Scorer

    kind = "gray" if args.via == "network" else "dual"
    scorer = tiny_scorer(kind) if args.tiny or kind == "gray" else Scorer(args.model or default_model(), device="cpu")
    out = {"model": scorer.model_id, "via": args.via, "width": args.width, "threads": torch.get_num_threads(),
           "rates": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        bags = make_bags(args.n, args.width, work) if args.via == "inbox" else []
        for rate in (float(r) for r in args.rates.split(",")):
            row = run_rate(rate, args.n, scorer, args, work, bags)
            out["rates"].append(row)
            print(f"rate {rate:5.2f}/s: latency median {row['median_s']:.2f} s, p95 {row['p95_s']:.2f} s; "
                  f"sustained {row['sustained_per_s']:.2f}/s; most waiting {row['max_waiting']}; "
                  f"backlog {'GROWS' if row['backlog_grows'] else 'steady'}", flush=True)
    grows = [r["rate"] for r in out["rates"] if r["backlog_grows"]]
    out["backlog_grows_from"] = min(grows) if grows else None
    print(f"backlog grows from {out['backlog_grows_from']}/s" if grows else "backlog steady at every rate tried")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
