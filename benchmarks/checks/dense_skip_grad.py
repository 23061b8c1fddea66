"""Round-robin train-step time with and without making the UNet skip concatenation's gradients dense (channels_last) before BatchNorm backward; run from the repo root."""
import torch, sys, time, statistics
sys.path.insert(0, "benchmarks")
from bench_train import _models
from xscreen.config import NetConfig
from xscreen.runtime import precision_for
from xscreen.train.step import GanPair, train_step
import xscreen.network as N
torch.set_num_threads(1)

class DenseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.cl = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return x.view_as(x)
    @staticmethod
    def backward(ctx, g):
        return g.contiguous(memory_format=torch.channels_last if ctx.cl else torch.contiguous_format)

orig = N.UnetBlock.forward
def patched(self, x):
    if self.outermost:
        return self.model(x)
    h = self.act(x)
    if not self.skip:
        return self.model(h)
    y = self.model(h)
    if torch.is_grad_enabled():
        y = DenseGrad.apply(y); h = DenseGrad.apply(h)
    return torch.cat([h, y], 1)

net = NetConfig(size=64, channels=2, ngf=32, ndf=32, nz=100)
x = torch.rand(64, 2, 64, 64) * 2 - 1
variants = {}
for name, prec in (("bf16", precision_for("cpu", "bf16")), ("fp32", precision_for("cpu", "fp32"))):
    for fix in (False, True):
        g, d, og, od = _models(net, True)
        pair = GanPair(g, d, og, od, torch.amp.GradScaler("cpu", enabled=False))
        variants[f"{name} fix={fix}"] = (pair, prec, fix)
times = {k: [] for k in variants}
for r in range(6):
    for k, (pair, prec, fix) in variants.items():
        N.UnetBlock.forward = patched if fix else orig
        t = time.perf_counter(); train_step(pair, x, prec); dt = time.perf_counter() - t
        if r: times[k].append(dt)
for k, v in times.items():
    print(k, round(statistics.median(v), 3))
