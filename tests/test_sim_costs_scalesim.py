"""SCALE-Sim v3 cross-check: ResNet-18 on a 32×32 array, WS and OS, 42/42 layers (fixture: tests/data/scalesim_v3)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from hwsim.arch import load_arch
from hwsim.sim import simulate
from hwsim.sim.scalesim import layer_compute_cycles, scalesim_ofmap, scalesim_padding, topology_layers
from hwsim.trace.synth import synthesize

DATA = Path(__file__).parent / "data" / "scalesim_v3"
TOPO = DATA / "resnet18.csv"
REF = {r["layer"]: r for r in csv.DictReader((DATA / "resnet18_32x32.csv").open())}
DATAFLOWS = {"systolic_ws": "ws_total_cycles", "systolic_os": "os_total_cycles"}


def test_fixture_is_the_whole_network():
    assert len(REF) == 21 and len(topology_layers(TOPO)) == 21
    # where SCALE-Sim's full cycle-by-cycle run was made, it reports the same totals
    full = [(r[c], r[c.replace("total_cycles", "full_simulator")]) for r in REF.values() for c in DATAFLOWS.values()
            if r[c.replace("total_cycles", "full_simulator")]]
    assert len(full) >= 4 and all(a == b for a, b in full)


@pytest.mark.parametrize("dataflow", sorted(DATAFLOWS))
def test_all_layers_within_one_percent_with_scalesim_conventions(dataflow):
    col = DATAFLOWS[dataflow]
    specs = topology_layers(TOPO, "scalesim")
    within = 0
    for spec in specs:
        ref = int(REF[spec.name][col])
        g = spec.geometry(1)
        assert [g.P, g.Q] == [int(REF[spec.name]["ofmap_h"]), int(REF[spec.name]["ofmap_w"])], spec.name
        got = layer_compute_cycles(spec, dataflow, 32, 32)
        within += abs(got / ref - 1) <= 0.01
        assert got == ref, (spec.name, got, ref)     # the fold model is SCALE-Sim's exactly
    assert within == 21


def test_conv_arithmetic_is_the_default_and_differs_only_on_strided_layers():
    conv = {s.name: s for s in topology_layers(TOPO)}
    fewer = 0
    for name, spec in conv.items():
        for dataflow, col in DATAFLOWS.items():
            got, ref = layer_compute_cycles(spec, dataflow, 32, 32), int(REF[name][col])
            stride = spec.stride if isinstance(spec.stride, int) else spec.stride[0]
            if stride == 1 or (spec.H - spec.R) % stride == 0:
                assert got == ref, (name, dataflow)
            else:   # hwsim's ⌊(H − R)/s⌋ + 1 is one row and column smaller than SCALE-Sim's ⌈(H − R + s)/s⌉
                # (fewer output rows can still need as many OS folds: Conv5_1a's 36 vs 49 rows on 32)
                assert got <= ref and spec.geometry(1).P == scalesim_ofmap(spec.H, spec.R, stride) - 1
                fewer += got < ref
    assert fewer == 7 + 5     # the issue's −1.8 … −9.5 % on every strided WS layer, and most OS ones
    assert (scalesim_ofmap(56, 3, 2), scalesim_padding(56, 3, 2), scalesim_padding(28, 3, 1)) == (28, 1, 0)


def test_serial_os_drain_option_is_hwsims_former_fold():
    spec = next(s for s in topology_layers(TOPO, "scalesim") if s.name == "Conv3_s")
    ref = int(REF["Conv3_s"]["os_total_cycles"])
    serial = layer_compute_cycles(spec, "systolic_os", 32, 32, os_drain="serial")
    assert serial > 1.01 * ref                       # +R cycles per fold: well outside 1 %
    assert layer_compute_cycles(spec, "systolic_ws", 32, 32, os_drain="serial") == int(REF["Conv3_s"]["ws_total_cycles"])


@pytest.mark.parametrize("arch_name", ["systolic32", "systolic32_os"])
def test_simulator_reproduces_scalesim_on_strided_layers(tmp_path, arch_name):
    """End to end: a trace synthesised from the topology with SCALE-Sim's conventions, through the simulator."""
    names = ("Conv3_1a", "Conv3_s")
    specs = [s for s in topology_layers(TOPO, "scalesim") if s.name in names]
    t = synthesize(tmp_path / "t", layers=specs, a_density=0.5, dz_density=0.1, dense_first_input=False)
    arch = load_arch(arch_name, {"memory.dram_bytes_per_cycle": math.inf})
    col = DATAFLOWS[arch.dataflow]
    r = simulate(t, arch, training=False)
    for name in names:
        assert r.layer(name, "forward").dense.cycles == int(REF[name][col]), name
