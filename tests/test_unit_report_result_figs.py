"""Unit tests of the per-result figures (fig_summary, fig_breakdown, fig_layers, fig_memory, fig_compare) on a
hand-built SimResult: figures are written, titles/labels carry the data, bar heights and the rows handed to the
CSV are the hand-computed numbers. Agg backend, low dpi."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from _hwsim_fixtures import assert_figure_written, figure_texts  # noqa: E402

from hwsim.report import fig_breakdown, fig_compare, fig_layers, fig_memory, fig_summary  # noqa: E402
from hwsim.report.inputs import ResultEntry  # noqa: E402
from hwsim.report.style import canvas_overflow, percent, times  # noqa: E402
from hwsim.results import CycleBreakdown, EnergyBreakdown, LayerPassResult, SimResult, VariantResult  # noqa: E402

MULTS = 4




def _v(compute: int, stall: int = 0, *, mac: float = 0.0, dram: float = 0.0, macs: int = 0,
       dram_bytes: float | None = None) -> VariantResult:
    acts = {} if dram_bytes is None else {"dram_bytes": dram_bytes}
    return VariantResult(cycle_breakdown=CycleBreakdown(compute=compute, memory_stall=stall),
                         energy_breakdown=EnergyBreakdown(mac=mac, dram=dram), macs=macs, multipliers=MULTS,
                         actions=acts)


# (layer, pass): (sparse compute, sparse stall, dense compute, sparse pJ, dense pJ, dram bytes sparse/dense)
SPEC = {
    ("fc1", "forward"): (10, 2, 40, 100.0, 400.0, 240.0, 480.0),
    ("fc1", "backward_weight"): (6, 0, 40, 60.0, 400.0, 120.0, 480.0),
    ("fc2", "forward"): (5, 5, 20, 50.0, 200.0, 200.0, 400.0),
    ("fc2", "backward_data"): (4, 0, 20, 40.0, 200.0, 80.0, 400.0),
    ("fc2", "backward_weight"): (0, 0, 20, 0.0, 200.0, 0.0, 400.0),  # no effectual work: ∞ speed-up
}
EFF = {"forward": 24, "backward_data": 12, "backward_weight": 16}


def _result(scale: float = 1.0, *, with_dram: bool = True) -> SimResult:
    lps = []
    for (layer, p), (sc, ss, dc, se, de, sb, db) in SPEC.items():
        sc = int(sc * scale)
        eff = EFF[p] if sc else 0
        lps.append(LayerPassResult(
            name=layer, pass_name=p, macs_dense=dc * MULTS, macs_effectual=eff,
            sparse=_v(sc, ss, mac=se * scale, macs=eff, dram_bytes=sb if with_dram else None),
            dense=_v(dc, mac=de, macs=dc * MULTS, dram_bytes=db if with_dram else None),
            dense_gated=_v(dc, mac=de / 2, macs=dc * MULTS),
            ideal=_v(max(1, sc // 2) if sc else 0, mac=se / 2, macs=eff),
            density={"dz": 0.25, "a": 0.5, "w": 1.0}))
    return SimResult(trace={"model": "toy", "method": "dither", "iteration": 3},
                     arch={"name": "scnn", "params": {"memory": {"dram_bytes_per_cycle": 8.0}}}, layers=tuple(lps))


def _entry(label="toy·dither", **kw) -> ResultEntry:
    return ResultEntry(label=label, source=Path(f"{label}.json"), result=_result(**kw))


def _tot(variant_idx: int, passes=None) -> float:
    return sum(v[variant_idx] + (v[1] if variant_idx == 0 else 0) for (_, p), v in SPEC.items()
               if passes is None or p in passes)


# ----------------------------------------------------------------------------- fig_summary


def test_overview_bars_are_the_speedups_of_each_result(tmp_path):
    a, b = _entry("A net"), _entry("B net", scale=2.0)
    p = fig_summary.overview([a, b], name="ov")
    assert p.name == "ov" and p.section == "Overview"
    assert len(p.rows) == 2 * 4 and {r["result"] for r in p.rows} == {"A net", "B net"}
    ax_s, ax_e = p.figure.axes[:2]
    assert [t.get_text() for t in ax_s.get_xticklabels()] == ["A net", "B net"]
    dense, sparse_a = _tot(2), _tot(0)
    sparse_b = sum(2 * v[0] + v[1] for v in SPEC.values())
    want_iter = [dense / sparse_a, dense / sparse_b]
    heights = [b.get_height() for b in ax_s.patches]
    assert heights[3 * 2:4 * 2] == pytest.approx(want_iter)  # scope order forward, bwd-data, bwd-weight, iteration
    fwd = [(40 + 20) / (12 + 10), (40 + 20) / (22 + 15)]
    assert heights[:2] == pytest.approx(fwd)
    labels = [t.get_text() for t in ax_s.texts]
    assert times(want_iter[0]) in labels and times(want_iter[1]) in labels
    en = [b.get_height() for b in ax_e.patches]
    assert en[6] == pytest.approx(sum(v[4] for v in SPEC.values()) / sum(v[3] for v in SPEC.values()))
    row = next(r for r in p.rows if r["result"] == "A net" and r["scope"] == "iteration")
    assert row["speedup_sparse"] == pytest.approx(want_iter[0]) and row["dz_density"] == pytest.approx(0.25)
    assert_figure_written(p.figure, tmp_path, "ov")


def test_overview_of_one_result_keeps_its_title_on_the_canvas():
    """One results file makes the narrowest overview (6.8 in): its long title is wrapped, not clipped."""
    p = fig_summary.overview([_entry("lenet5 dither @ scnn")], name="ov")
    assert canvas_overflow(p.figure) == []
    assert "whole-run results" in p.figure.get_suptitle()


def test_overview_wraps_long_labels_and_rotates_when_crowded():
    entries = [_entry(f"net{i} @ scnn [x]") for i in range(7)]
    p = fig_summary.overview(entries, name="ov")
    ticks = p.figure.axes[0].get_xticklabels()
    assert ticks[0].get_text() == "net0\n@ scnn\n[x]"
    assert ticks[0].get_rotation() == 30


# ----------------------------------------------------------------------------- fig_breakdown


def test_cycle_breakdown_stacks_add_up_to_the_cycles(tmp_path):
    e = _entry()
    p = fig_breakdown.breakdown(e, kind="cycles", name="bc")
    left, right = p.figure.axes[:2]
    assert left.get_ylabel() == "cycles"  # peak < 10⁴: no scaling
    text = figure_texts(p.figure)
    assert "Cycle breakdown — toy·dither" in text and "training iteration 3" in text
    assert p.title == "Cycle breakdown — toy·dither"
    # left: 3 passes × 4 variants per part; stacked tops of the sparse forward bar = 12 + 15 cycles
    n = 12
    tops = {}
    for i, patch in enumerate(left.patches):
        j = i % n
        tops[j] = max(tops.get(j, 0.0), patch.get_y() + patch.get_height())
    # order per pass: dense, dense_gated, sparse, ideal
    assert tops[2] == pytest.approx(12 + 10)  # sparse forward: fc1 (10 + 2 stall) + fc2 (5 + 5)
    assert tops[0] == pytest.approx(60)  # dense forward
    assert tops[4 + 2] == pytest.approx(4)  # sparse backward-data
    assert [t.get_text() for t in right.get_xticklabels()] == ["fc1", "fc2"]
    rtops = {}
    for i, patch in enumerate(right.patches):
        rtops[i % 2] = max(rtops.get(i % 2, 0.0), patch.get_y() + patch.get_height())
    assert rtops == {0: pytest.approx(12 + 6), 1: pytest.approx(10 + 4 + 0)}
    tot = next(r for r in p.rows if r["layer"] == "total" and r["scope"] == "iteration" and r["variant"] == "sparse")
    assert tot["cycles_compute"] == 25 and tot["cycles_memory_stall"] == 7
    assert_figure_written(p.figure, tmp_path, "bc")


def test_energy_breakdown_units_and_thousands_of_cycles():
    e = ResultEntry(label="big", source=Path("b.json"), result=_result(scale=1000.0))
    p = fig_breakdown.breakdown(e, kind="energy", name="be")
    assert p.figure.axes[0].get_ylabel() == "energy (nJ)"  # peak sparse 250·1000 pJ
    assert "Energy breakdown — big" in p.figure.get_suptitle()
    c = fig_breakdown.breakdown(e, kind="cycles", name="bc")
    assert c.figure.axes[0].get_ylabel() == "cycles (thousands)"


# ----------------------------------------------------------------------------- fig_layers


def test_speedup_bars_heights_na_and_infinity(tmp_path):
    p = fig_layers.speedup_bars(_entry(), name="sp")
    axes = p.figure.axes
    assert [ax.get_title() for ax in axes] == ["forward", "backward-data", "backward-weight", "whole iteration"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["fc1", "fc2", "total"]
    fwd = axes[0]
    # bars: for each variant (dense, dense_gated, sparse, ideal) one bar per layer (fc1, fc2, total)
    sparse = [b.get_height() for b in fwd.patches[6:9]]
    assert sparse == pytest.approx([40 / 12, 20 / 10, 60 / 22])
    assert [b.get_height() for b in fwd.patches[0:3]] == pytest.approx([1.0, 1.0, 1.0])
    bd = [t.get_text() for t in axes[1].texts]
    assert "n/a" in bd  # fc1 has no backward-data pass
    bw = [t.get_text() for t in axes[2].texts]
    assert "∞" in bw  # fc2's backward-weight has no effectual work
    assert "Per-layer speed-up over dense — toy·dither" in p.figure.get_suptitle()
    row = next(r for r in p.rows if r["layer"] == "fc1" and r["scope"] == "iteration" and r["variant"] == "sparse")
    assert row["speedup_vs_dense"] == pytest.approx(80 / 18)
    assert_figure_written(p.figure, tmp_path, "sp")


def test_energy_bars_are_normalised_to_dense():
    p = fig_layers.energy_bars(_entry(), name="en")
    fwd = p.figure.axes[0]
    assert [b.get_height() for b in fwd.patches[3:6]] == pytest.approx([0.5, 0.5, 0.5])  # dense-gated: half
    assert [b.get_height() for b in fwd.patches[6:9]] == pytest.approx([100 / 400, 50 / 200, 150 / 600])
    assert fwd.get_ylabel() == "energy ÷ dense energy"
    assert fwd.get_yscale() == "linear"


# ----------------------------------------------------------------------------- fig_memory


def test_memory_rows_by_hand():
    rows = fig_memory.memory_rows(_entry())
    assert len(rows) == len(SPEC) * 2
    r = next(r for r in rows if r["layer"] == "fc1" and r["pass"] == "forward" and r["variant"] == "sparse")
    assert r["dram_bytes"] == 240.0 and r["cycles"] == 12 and r["memory_stall_cycles"] == 2
    assert r["required_bytes_per_cycle"] == pytest.approx(240 / 10)
    assert r["available_bytes_per_cycle"] == 8.0
    assert r["macs_per_dram_byte"] == pytest.approx(24 / 240)
    assert r["effectual_macs_per_cycle"] == pytest.approx(24 / 12)
    assert r["utilization"] == pytest.approx(24 / (12 * MULTS))
    z = next(r for r in rows if r["layer"] == "fc2" and r["pass"] == "backward_weight" and r["variant"] == "sparse")
    assert z["required_bytes_per_cycle"] is None and z["macs_per_dram_byte"] is None
    assert z["effectual_macs_per_cycle"] is None


def test_bandwidth_figure(tmp_path):
    p = fig_memory.bandwidth_figure(_entry(), name="bw")
    text = figure_texts(p.figure)
    assert "available: 8 B/cycle" in text and "roof: min(4 multipliers, 8 B/cycle × intensity)" in text
    assert "DRAM bandwidth per layer — toy·dither" in text
    # memory stall share of the sparse backward cycles: 0 of 10
    assert "Memory stall is 0% of the sparse backward cycles" in p.caption
    assert_figure_written(p.figure, tmp_path, "bw")


def _with_update(sparse_update_cycles: int = 0, **kw) -> ResultEntry:
    """The toy result plus a weight update of fc1: 30 cycles of memory stall on both sides, no MACs."""
    e = _entry(**kw)
    upd = LayerPassResult(name="fc1", pass_name="update", macs_dense=0, macs_effectual=0,
                          sparse=_v(sparse_update_cycles, 30, dram_bytes=300.0), dense=_v(0, 30, dram_bytes=300.0),
                          dense_gated=_v(0, 30), ideal=_v(0))
    return ResultEntry(label=e.label, source=e.source, result=replace(e.result, layers=(*e.result.layers, upd)))


def test_bandwidth_caption_counts_backward_passes_not_the_weight_update():
    # backward-data and backward-weight: 10 sparse cycles, no stall; the update's 30 stall cycles are not backward
    p = fig_memory.bandwidth_figure(_with_update(), name="bw")
    assert "Memory stall is 0% of the sparse backward cycles" in p.caption


def test_bandwidth_caption_explains_points_above_the_roof():
    # At the toy's 8 B/cycle every point with effectual MACs is above the roof min(4, 8 B/cycle × MACs/B): e.g. fc1
    # forward sparse does 24 MACs in 12 cycles (2/cycle) over 240 B, roof 8 × 0.1 = 0.8; dense 24 / 40 = 0.6 over
    # 480 B, roof 0.4. Four layer-passes with effectual MACs × (sparse, dense) = 8 points (fc2 backward-weight has
    # none). At 1000 B/cycle the roof is the 4 multipliers and no point (at most 3 MACs/cycle) passes it.
    p = fig_memory.bandwidth_figure(_entry(), name="bw")
    assert "8 point(s) sit above the roof" in p.caption and "memory.schedule: iteration" in p.caption
    e = _entry()
    wide = replace(e.result, arch={"name": "scnn", "params": {"memory": {"dram_bytes_per_cycle": 1000.0}}})
    assert "above the roof" not in fig_memory.bandwidth_figure(replace(e, result=wide), name="bw").caption


def test_bandwidth_figure_skipped_without_dram_bytes():
    assert fig_memory.bandwidth_figure(_entry(with_dram=False), name="bw") is None


def test_utilisation_figure_bars(tmp_path):
    p = fig_memory.utilisation_figure(_entry(), name="ut")
    fwd = p.figure.axes[0]
    # dense bars first (fc1, fc2), then sparse
    assert [b.get_height() for b in fwd.patches[:2]] == pytest.approx([1.0, 1.0])
    assert [b.get_height() for b in fwd.patches[2:4]] == pytest.approx([24 / 48, 24 / 40])
    assert "50%" in [t.get_text() for t in fwd.texts]
    assert "n/a" in [t.get_text() for t in p.figure.axes[1].texts]  # fc1 backward-data
    assert_figure_written(p.figure, tmp_path, "ut")


# ----------------------------------------------------------------------------- fig_compare


def _cmp_rows():
    rows = []
    cyc = {"dense": 1000, "a": 400, "b": 200}
    for scope in ("forward", "iteration"):
        for arch, c in cyc.items():
            k = 1 if scope == "forward" else 3
            rows.append({"layer": "*", "scope": scope, "arch": arch, "cycles": k * c, "energy_pj": k * c * 2e3,
                         "cycles_compute": k * c * 0.75, "cycles_memory_stall": k * c * 0.25,
                         "energy_mac": k * c * 2e3, "speedup_vs_ref": cyc["a"] / c,
                         "energy_vs_ref": cyc["a"] / c})
    rows.append({"layer": "fc1", "scope": "forward", "arch": "a", "cycles": 1})  # per-layer rows are left out
    return rows


def test_compare_figure(tmp_path):
    p = fig_compare.compare_figure(_cmp_rows(), title="toy on 2 archs", name="cmp")
    assert p.title == "toy on 2 archs" and p.figure.get_suptitle() == "toy on 2 archs"
    assert len(p.rows) == 6 and all(r["layer"] == "*" for r in p.rows)
    assert "ratio to a's sparse run" in p.caption
    ax_c, ax_e = p.figure.axes[:2]
    assert [t.get_text() for t in ax_c.get_xticklabels()] == ["dense", "a", "b"] * 2
    tops = {}
    for i, patch in enumerate(ax_c.patches):
        tops[i % 6] = max(tops.get(i % 6, 0.0), patch.get_y() + patch.get_height())
    assert [tops[i] for i in range(6)] == pytest.approx([1.0, 0.4, 0.2, 3.0, 1.2, 0.6])  # thousands
    texts = [t.get_text() for t in ax_c.texts]
    assert {"0.40×", "1.00×", "2.00×", "forward", "whole iteration"} <= set(texts)
    assert ax_e.get_ylabel() == "energy (µJ)"  # peak 6·10⁶ pJ
    assert_figure_written(p.figure, tmp_path, "cmp")


def test_cycle_breakdown_hatches_the_waits_on_other_passes_and_names_the_passes_it_sums():
    """The memory stall's share spent waiting on other layer-passes' DRAM transfers (memory_stall_foreign) is drawn
    hatched inside the memory stall, per pass and per layer; the per-layer panel says which passes it sums."""
    base = _result()
    layers = []
    for lp in base.layers:  # fc2 forward: 3 of its 5 stall cycles wait on other passes
        if (lp.name, lp.pass_name) == ("fc2", "forward"):
            cb = replace(lp.sparse.cycle_breakdown, memory_stall_foreign=3)
            lp = replace(lp, sparse=replace(lp.sparse, cycle_breakdown=cb))
        layers.append(lp)
    e = ResultEntry(label="w", source=Path("w.json"), result=replace(base, layers=tuple(layers)))
    p = fig_breakdown.breakdown(e, kind="cycles", name="bc")
    left, right = p.figure.axes[:2]
    hatched = [(b.get_x() + b.get_width() / 2, b.get_y(), b.get_height()) for b in left.patches if b.get_hatch()]
    # one hatched bar per pass × variant; only the sparse forward's is tall: 3 cycles from where its stall starts
    # (compute 10 + 5 = 15; stall 2 + 5 = 7 above it)
    tall = [h for h in hatched if h[2] > 0]
    assert len(tall) == 1 and tall[0][1:] == pytest.approx((15.0, 3.0))
    rh = [(b.get_y(), b.get_height()) for b in right.patches if b.get_hatch() and b.get_height() > 0]
    assert rh == [pytest.approx((5.0 + 4.0 + 0.0, 3.0))]  # fc2: compute 5 + 4 + 0 over its three passes
    assert "memory stall: waits on other passes" in figure_texts(p.figure)
    assert "Hatched, inside the memory stall" in p.caption
    assert right.get_title() == "sparse, per layer, 3 passes"
    plain = fig_breakdown.breakdown(_entry(), kind="cycles", name="bc")
    assert not any(b.get_hatch() for b in plain.figure.axes[0].patches) and "Hatched" not in plain.caption


def test_bandwidth_caption_says_how_much_of_the_backward_stall_waits_on_other_passes():
    base = _result()
    layers = []
    for lp in base.layers:  # fc2 backward-data: 4 stall cycles, 2 of them on other passes' transfers
        if (lp.name, lp.pass_name) == ("fc2", "backward_data"):
            cb = replace(lp.sparse.cycle_breakdown, memory_stall=4, memory_stall_foreign=2)
            lp = replace(lp, sparse=replace(lp.sparse, cycle_breakdown=cb))
        layers.append(lp)
    e = ResultEntry(label="w", source=Path("w.json"), result=replace(base, layers=tuple(layers)))
    cap = fig_memory.bandwidth_figure(e, name="bw").caption
    # backward sparse cycles: fc1 bwd-weight 6 + fc2 bwd-data 4 + 4 + fc2 bwd-weight 0 = 14; stall 4, waits 2
    assert (f"Memory stall is {percent(4 / 14)} of the sparse backward cycles, {percent(2 / 14)} of them spent "
            "waiting while the DRAM channel carried other layer-passes' transfers (part of that stall") in cap
    assert "of them spent waiting" not in fig_memory.bandwidth_figure(_entry(), name="bw").caption
