"""Unit tests of hwsim.sim.passes: one layer-pass on one arch — MAC passes, role masks and the action
counts that flow to the energy model (hwsim.results.actions.Actions)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.arch import dense_gated_variant, dense_systolic_variant, dense_variant, load_arch
from hwsim.results.actions import Actions
from hwsim.sim import operands, passes
from hwsim.sim.operands import Operands, operand_passes
from hwsim.sim.passes import run_pass


def _ops(density: float = 0.3, *, seed: int = 0, dz_bits: int = 8, n: int = 4) -> Operands:
    rng = np.random.default_rng(seed)
    u = rng.random((n, 8, 10, 10))
    return Operands(name="conv", w=rng.random((16, 8, 3, 3)) < 0.6, w_struct=np.ones((16, 8, 3, 3), bool),
                    a=u < density, dz=rng.random((n, 16, 10, 10)) < density / 3, dz_bits=dz_bits, groups=1,
                    stride=(1, 1), padding=(1, 1), dilation=(1, 1), out_density=0.5)


def _run(ops, pname, arch, **kw):
    eff = passes.effectual_macs(ops, pname)
    return run_pass(ops, pname, arch, rng=np.random.default_rng(0), macs_dense=16 * 8 * 9 * 100 * ops.a.shape[0],
                    macs_effectual=eff, **kw)


def test_operand_passes_by_hand():
    assert operand_passes("forward", 20, 8) == 1
    assert operand_passes("backward_data", 8, 8) == 1
    assert operand_passes("backward_data", 9, 8) == 2
    assert operand_passes("backward_weight", 17, 8) == 3


@pytest.mark.parametrize("pname", passes.PASSES)
def test_cartesian_actions_are_consistent(pname):
    arch = load_arch("scnn")
    t = _run(_ops(), pname, arch)
    a = t.actions
    assert isinstance(a, Actions)
    assert a["mult"] == a["add"] == a["acc_access"] == a["reg_read"] == a["xbar"] > 0
    assert a["sram_global_bytes"] == a["dram_bytes"] > 0            # the global buffer stages DRAM tiles only
    assert "bit_ops" not in a and "leak_cycles" not in a
    assert "red_add" in a   # δW reduction in backward-weight, output halos in forward / backward-data (hwsim.sim.halo)
    assert t.makespan >= int(t.mult_cycles.max(axis=1).sum())


@pytest.mark.parametrize("pname", passes.PASSES)
def test_dense_issues_more_and_gating_toggles_less(pname):
    arch = load_arch("scnn")
    ops = _ops()
    sparse, dense = _run(ops, pname, arch).actions, _run(ops, pname, dense_variant(arch)).actions
    gated = _run(ops, pname, dense_gated_variant(arch), timing=False)
    assert dense["xbar"] == dense["reg_read"] > 0                     # the same crossbar, without skipping too
    assert dense["reg_read"] >= sparse["reg_read"]
    assert gated.actions["mult"] < gated.actions["reg_read"] == dense["reg_read"]
    assert gated.makespan == gated.analytical == 0                   # actions only
    assert dense["dram_bytes"] >= sparse["dram_bytes"]               # uncompressed


def test_systolic_operands_go_through_the_global_buffer():
    sys_arch = dense_systolic_variant(load_arch("scnn"))
    ops = _ops()
    t = _run(ops, "forward", sys_arch)
    a = t.actions
    assert a["xbar"] == a["reg_read"] == 16 * 8 * 9 * 100 * 4         # every im2col MAC, zeros included
    assert a["sram_global_bytes"] > a["dram_bytes"]
    assert a["sram_input_bytes"] == a["sram_weight_bytes"] == a["sram_output_bytes"] == 0.0
    assert t.mult_cycles.shape[1] == 1 and not t.conflict.any()


def test_wide_gradients_multiply_cycles_and_products():
    arch = load_arch("scnn")
    one = _run(_ops(dz_bits=8), "backward_data", arch)
    two = _run(_ops(dz_bits=16), "backward_data", arch)
    assert two.actions["mult"] == 2 * one.actions["mult"]
    assert two.mult_cycles.sum() == 2 * one.mult_cycles.sum()


def test_sparse_work_grows_with_density():
    arch = load_arch("scnn")
    mult = [_run(_ops(d), "forward", arch).actions["mult"] for d in (0.05, 0.2, 0.5, 0.9)]
    assert mult == sorted(mult) and mult[0] < mult[-1]


def test_residency_removes_reads_and_sets_the_write():
    from hwsim.sim.traffic import Residency

    arch = load_arch("scnn")
    ops = _ops()
    base = _run(ops, "forward", arch).actions["dram_bytes"]
    resident = _run(ops, "forward", arch, residency=Residency(stream_on_chip=True, out_bytes=0.0))
    assert resident.actions["dram_bytes"] < base


def test_variant_macs_dense_vs_effectual():
    arch = load_arch("scnn")
    ops = _ops()
    cache: dict = {}
    dense = passes.variant_macs(ops, "forward", dense_variant(arch), macs_dense=0, cache=cache)
    sparse = passes.variant_macs(ops, "forward", arch, macs_dense=0, cache=cache)
    assert sparse == passes.effectual_macs(ops, "forward") < dense
    assert passes.variant_macs(ops, "forward", dense_systolic_variant(arch), macs_dense=123, cache=cache) == 123


def test_role_density_is_an_exact_count_within_the_connectivity():
    ops = _ops()
    assert operands.role_density(ops, "a") == np.count_nonzero(ops.a) / ops.a.size
    assert operands.role_density(ops, "w") == np.count_nonzero(ops.w) / ops.w.size


def test_precision_path_without_levels_names_the_layer():
    from hwsim.sim import precision

    arch = load_arch("scnn_bitserial")
    ops = _ops()
    with pytest.raises(ValueError, match=r"layer 'conv': pe.mac=bit_serial needs the δ̃z levels"):
        precision.precision_work(ops, "forward", arch, (ops.w, ops.a))


@pytest.mark.parametrize("name", ["systolic32", "systolic32_os"])
def test_systolic_global_buffer_bytes_by_hand(name):
    """Forward 3×3 conv (16 × 8 channels, 4 × 10 × 10) on a 32×32 array: M = 400 pixels, Kr = 72, N = 16.

    WS: A (M×Kr) streamed once per column fold, B (Kr×N) loaded once, partial sums per row fold;
    OS: A per column fold, B per row fold (M / rows of them), outputs once.
    """
    arch = load_arch(name)
    a = _run(_ops(), "forward", arch).actions
    mb, ab = arch.pe.mac_bits, arch.pe.accumulator_bits
    m, kr, ncol = 400, 72, 16
    if arch.dataflow == "systolic_ws":      # rows hold Kr (3 folds of 32), columns N (1 fold)
        els = (1 * m * kr * mb, kr * ncol * mb, 3 * m * ncol * ab)
    else:                                   # rows hold M (13 folds of 32), columns N (1 fold)
        els = (1 * m * kr * mb, 13 * kr * ncol * mb, m * ncol * ab)
    assert a["sram_global_bytes"] - a["dram_bytes"] == pytest.approx(sum(els) / 8, rel=1e-12)


@pytest.mark.parametrize("pname", passes.PASSES)
def test_dense_work_is_counted_once_per_shape(pname):
    """A GEMM with every role streamed dense (the dense baseline) is the same work for any masks of the same shapes:
    counted once (shared, read-only) and equal to counting it again; other shapes, or another mapping, count anew."""
    arch = dense_variant(load_arch("scnn"))
    passes._DENSE_WORK.clear()
    first, other = _ops(0.3, seed=1), _ops(0.7, seed=2)           # different masks, the same shapes

    def work(ops, a=arch):
        masks = passes._role_masks(ops, pname, a.zero_skip, lazy=True)
        kc = passes.capacity.group_kc(ops, pname, a, masks)
        return passes._cartesian_cached(ops, pname, a, np.random.default_rng(0), a.zero_skip, sample=False, kc=kc), \
            passes._counts(ops, pname, a, masks, kc).work

    cached, fresh = work(first)
    assert work(other)[0] is cached and len(passes._DENSE_WORK) == 1
    assert np.array_equal(cached.mult_cycles, fresh.mult_cycles) and cached.products == fresh.products
    assert not cached.mult_cycles.flags.writeable
    assert work(_ops(0.3, seed=1, n=2))[0] is not cached                      # another batch: other shapes
    wide = dense_variant(load_arch("scnn", {"pe_array.rows": 4}))
    assert work(first, wide)[0] is not cached and len(passes._DENSE_WORK) == 3  # another array
    assert work(first, wide)[0].products == cached.products                    # the same GEMM, mapped otherwise
