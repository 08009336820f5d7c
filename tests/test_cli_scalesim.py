"""SCALE-Sim from the command line (issue 18 item 6): ``hwsim synth --scalesim-csv FILE && hwsim simulate …`` gives
SCALE-Sim v3's own per-layer cycles on ResNet-18, 32×32, WS and OS: 42 of 42 layers, the reference numbers of
``tests/test_sim_costs_scalesim.py`` (fixture: ``tests/data/scalesim_v3``), for its convolution file and for the same
layers written as SCALE-Sim GEMM rows. SCALE-Sim's reference has no memory stalls (``InterfaceBandwidth: CALC``), so
the replay gets unbounded DRAM bandwidth; SCALE-Sim simulates inference, so ``--inference`` (the forward pass)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.trace import load

DATA = Path(__file__).parent / "data" / "scalesim_v3"
TOPO = DATA / "resnet18.csv"
REF = {r["layer"]: r for r in csv.DictReader((DATA / "resnet18_32x32.csv").open())}
ARCHS = {"systolic32": "ws_total_cycles", "systolic32_os": "os_total_cycles"}   # shipped 32×32 WS and OS arrays


def _hwsim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim", *args], capture_output=True, text=True, timeout=300)


def _forward_dense_cycles(trace: Path, arch: str, out: Path) -> dict[str, int]:
    p = _hwsim("simulate", str(trace), "--arch", arch, "--set", "memory.dram_bytes_per_cycle=.inf", "--inference",
               "--quiet", "--out", str(out))
    assert p.returncode == 0, p.stderr
    layers = json.loads(out.read_text())["layers"]
    return {x["name"]: x["dense"]["cycles"] for x in layers if x["pass"] == "forward"}


def _within(got: dict[str, int]) -> dict[str, int]:
    """Layers within 1 % of SCALE-Sim's cycles, per shipped architecture."""
    return {arch: sum(abs(got[arch][n] / int(REF[n][col]) - 1) <= 0.01 for n in REF) for arch, col in ARCHS.items()}


def test_synth_then_simulate_matches_scalesim_on_42_of_42_layers(tmp_path):
    p = _hwsim("synth", "--scalesim-csv", str(TOPO), "--out", str(tmp_path / "t"))
    assert p.returncode == 0, p.stderr
    geo = {g.name: g for g in load(tmp_path / "t").layers}
    for name, ref in REF.items():   # SCALE-Sim's output sizes, e.g. Conv1 ⌈(224 − 7 + 2)/2⌉ = 110, not 109
        assert (geo[name].P, geo[name].Q) == (int(ref["ofmap_h"]), int(ref["ofmap_w"])), name
    got = {arch: _forward_dense_cycles(tmp_path / "t", arch, tmp_path / f"{arch}.json") for arch in ARCHS}
    assert _within(got) == {"systolic32": 21, "systolic32_os": 21}
    for arch, col in ARCHS.items():   # the fold model is SCALE-Sim's exactly, not just within 1 %
        assert got[arch] == {n: int(r[col]) for n, r in REF.items()}, arch


def test_conv_arithmetic_flag_gives_the_unpadded_output_sizes(tmp_path):
    p = _hwsim("synth", "--scalesim-csv", str(TOPO), "--conv-arithmetic", "--out", str(tmp_path / "t"))
    assert p.returncode == 0, p.stderr
    t = load(tmp_path / "t")
    assert t.meta["synthetic"]["scalesim_conventions"] == "conv"
    strided = 0
    for g in t.layers:   # ⌊(H − R)/s⌋ + 1: one row and column fewer where the stride does not divide H − R
        ref = int(REF[g.name]["ofmap_h"])
        if g.stride[0] > 1 and (g.H - g.R) % g.stride[0]:
            assert g.P == (g.H - g.R) // g.stride[0] + 1 == ref - 1, g.name
            strided += 1
        else:
            assert g.P == ref, g.name
    assert strided == 7   # Conv1, Conv3_1a, Conv3_s, Conv4_1a, Conv4_s, Conv5_1a, Conv5_s
    got = {arch: _forward_dense_cycles(tmp_path / "t", arch, tmp_path / f"{arch}.json") for arch in ARCHS}
    assert all(n < 21 for n in _within(got).values())   # the command path before issue 18 item 6


def test_gemm_csv_of_the_same_layers_matches_scalesim(tmp_path):
    """SCALE-Sim reads a GEMM row (M, N, K) as the conv ifmap M × K, filter 1 × K, 1 channel, N filters, stride 1
    (``topology_utils.load_arrays_gemm``); its fold model then sees M output pixels, window K and N filters, as
    for the conv layer with M = ofmap_h·ofmap_w, K = R·S·C, N = filters. So the im2col GEMMs of the 21 layers must
    give the same 42 reference numbers."""
    rows = ["Layer, M, N, K,"]
    for r in csv.DictReader(TOPO.open(), skipinitialspace=True):
        ref = REF[r["Layer name"]]
        m = int(ref["ofmap_h"]) * int(ref["ofmap_w"])
        k = int(r["Filter Height"]) * int(r["Filter Width"]) * int(r["Channels"])
        rows.append(f"{r['Layer name']}, {m}, {r['Num Filter']}, {k},")
    gemm = tmp_path / "resnet18_mnk.csv"
    gemm.write_text("\n".join(rows) + "\n")
    p = _hwsim("synth", "--scalesim-csv", str(gemm), "--out", str(tmp_path / "t"))
    assert p.returncode == 0, p.stderr
    conv2_1a = next(g for g in load(tmp_path / "t").layers if g.name == "Conv2_1a")
    assert (conv2_1a.kind, conv2_1a.N, conv2_1a.C, conv2_1a.K) == ("linear", 54 * 54, 3 * 3 * 64, 64)
    got = {arch: _forward_dense_cycles(tmp_path / "t", arch, tmp_path / f"{arch}.json") for arch in ARCHS}
    for arch, col in ARCHS.items():
        assert got[arch] == {n: int(r[col]) for n, r in REF.items()}, arch


def test_bad_rows_and_flags_are_one_line_errors(tmp_path):
    gemm = tmp_path / "g.csv"
    gemm.write_text("Layer, M, N, K,\nL1, 4, 8, 16,\nL2, 4, 8, x,\n")
    p = _hwsim("synth", "--scalesim-csv", str(gemm), "--out", str(tmp_path / "t"))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert f"{gemm}:3: column 'K' of layer 'L2' is 'x'; allowed: integer >= 1" in p.stderr
    gemm.write_text("Layer, M, N, K,\nL1, 4, 8,\n")
    p = _hwsim("synth", "--scalesim-csv", str(gemm), "--out", str(tmp_path / "t"))
    assert p.returncode == 2 and f"{gemm}:2: expected 4 values (Layer, M, N, K)" in p.stderr
    p = _hwsim("synth", "--model", "lenet5", "--conv-arithmetic", "--out", str(tmp_path / "t"))
    assert p.returncode == 2 and "--conv-arithmetic: allowed with --scalesim-csv only" in p.stderr


def test_sweep_synthetic_spec_takes_the_conventions(tmp_path):
    from hwsim.sweep import parse_sweep
    from hwsim.sweep.spec import SweepError
    from hwsim.sweep.traces import synthetic_kwargs
    from hwsim.trace.synth import synthesize

    def doc(syn: dict) -> dict:
        return {"version": 1, "name": "s", "arch": "systolic32", "list": [{}], "traces": [{"synthetic": syn}]}

    spec = parse_sweep(doc({"scalesim_csv": str(TOPO), "scalesim_conventions": "conv"}))
    t = load(synthesize(tmp_path / "t", **synthetic_kwargs(spec.traces[0].synthetic)))
    assert next(g for g in t.layers if g.name == "Conv1").P == 109            # ⌊(224 − 7)/2⌋ + 1
    spec = parse_sweep(doc({"scalesim_csv": str(TOPO)}))
    t = load(synthesize(tmp_path / "d", **synthetic_kwargs(spec.traces[0].synthetic)))
    assert next(g for g in t.layers if g.name == "Conv1").P == 110            # SCALE-Sim's ⌈(224 − 7 + 2)/2⌉
    for bad in ({"scalesim_csv": str(TOPO), "scalesim_conventions": "floor"},
                {"model": "lenet5", "scalesim_conventions": "conv"}):
        with pytest.raises(SweepError, match=r"synthetic\.scalesim_conventions: .* allowed: scalesim or conv, with "
                                             "scalesim_csv"):
            parse_sweep(doc(bad))
