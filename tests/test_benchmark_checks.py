"""The IED part labelling of benchmarks/checks/ied_components.py: the same bag, its IED split by part."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "checks"))
from ied_components import PARTS, render_parts  # noqa: E402

from xscreen.synth import bags, threats  # noqa: E402


def _seed_with_ied() -> int:
    for seed in range(200):
        if "ied" in [t.type for t in bags.synth_bag(seed, threat=True).threats]:
            return seed
    raise AssertionError("no IED in 200 bags")


def test_parts_relabel_the_same_bag_and_leave_the_generator_as_it_was():
    seed = _seed_with_ied()
    plain = bags.synth_bag(seed, threat=True)
    parts = render_parts(seed)
    np.testing.assert_array_equal(parts.scan.channels, plain.scan.channels)  # the image is untouched
    k = 1 + [t.type for t in plain.threats].index("ied")
    labels = set(np.unique(parts.mask[parts.mask > 10]).tolist())
    assert {10 * k + 1 + j for j in range(4)} <= labels <= {10 * k + 1 + j for j in range(len(PARTS))}
    # the parts cover what the whole IED covered (a later threat may overwrite either alike)
    assert ((parts.mask > 10) == (plain.mask == k)).mean() > 0.999
    # the wrappers are gone again
    assert threats.THREATS["ied"] is threats.ied and bags.synth_bag(seed, threat=True).mask.max() < 10
