"""Every record a replay returns is priced from its final action counts (hwsim.sim.replay: the records of one
iteration's masks are priced once, by charges.finish, after the stages that add actions)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import load_arch
from hwsim.results import EnergyBreakdown
from hwsim.sim import energy, replay, shape_memo
from hwsim.trace.nongemm import NonGemmWork
from hwsim.trace.schema import LayerGeometry, LayerSample


def _samples(seed: int) -> dict[str, LayerSample]:
    rng = np.random.default_rng(seed)
    conv = LayerGeometry(name="c", kind="conv2d", N=2, C=3, K=4, H=4, W=4, P=2, Q=2, R=3, S=3, stride=(2, 2),
                         padding=(1, 1))
    fc = LayerGeometry(name="fc", kind="linear", N=2, C=16, K=5)
    return {g.name: LayerSample(geometry=g, delta=0.1, dz_levels=rng.integers(-3, 4, g.output_shape),
                                a_mask=rng.random(g.input_shape) < 0.5, w_mask=rng.random(g.weight_shape) < 0.5,
                                w_density=0.5) for g in (conv, fc)}


WORK = NonGemmWork.from_rows([("c", "batchnorm", [1, 32, 40, 32, 1, 32, 72, 32]),
                              ("c", "relu", [1, 32, 32, 32, 1, 32, 64, 32]),
                              ("fc", "softmax", [1, 10, 10, 10, 1, 10, 20, 10])])


@pytest.mark.parametrize("schedule", ["iteration", "isolated"])
@pytest.mark.parametrize("name", ["scnn", "scnn_bitserial", "training"])
def test_every_returned_record_is_priced_from_its_final_counts(name, schedule):
    arch = load_arch(name, {"memory.schedule": schedule})
    dense, gated, systolic, equal_area = replay.baselines(arch)
    archs = {"sparse": arch, "dense": dense, "dense_gated": gated, "ideal": arch, "dense_systolic": systolic,
             "dense_equal_area": equal_area}
    shape_memo.clear()
    for seed in (1, 2):  # the second replay's baseline records are the first one's (remembered, derived)
        # dither: the NSD unit adds its actions to the sparse record of each layer's first δ̃z consumer
        layers = replay.replay(_samples(seed), arch, nongemm_work=WORK, method="dither", first_input_grad=True)
        assert {lp.pass_name for lp in layers} == {"forward", "backward_data", "backward_weight", "update"}
        for lp in layers:
            for v, a in archs.items():
                vr = lp.variant(v)
                assert vr.energy_breakdown == energy.price(vr.actions, a), (lp.name, lp.pass_name, v)
                assert vr.energy_breakdown != EnergyBreakdown()            # none left unpriced
        nsd = [lp for lp in layers if lp.sparse.actions.get("nsd_quantize")]
        assert nsd and all(lp.sparse.energy_breakdown.nsd > 0 for lp in nsd)
        charged = [lp for lp in layers if lp.sparse.cycle_breakdown.nongemm]
        assert charged and all(lp.sparse.energy_breakdown.vector > 0 for lp in charged)
