"""Per-op profile (grouped by input shape) of one bf16 train step, ngf 32, batch 64, 1 thread; run from the repo root."""
import torch, sys
sys.path.insert(0, "benchmarks")
from bench_train import _models
from xscreen.config import NetConfig
from xscreen.runtime import precision_for
from xscreen.train.step import GanPair, train_step
torch.set_num_threads(1)
net = NetConfig(size=64, channels=2, ngf=32, ndf=32, nz=100)
g, d, og, od = _models(net, True)
pair = GanPair(g, d, og, od, torch.amp.GradScaler("cpu", enabled=False))
prec = precision_for("cpu", "bf16")
x = torch.rand(64, 2, 64, 64) * 2 - 1
for _ in range(2): train_step(pair, x, prec)
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
    for _ in range(3): train_step(pair, x, prec)
print(p.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=40, max_shapes_column_width=90))
