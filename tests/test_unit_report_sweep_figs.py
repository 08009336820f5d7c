"""Unit tests of the sweep figures (fig_sweep, fig_density) on hand-built SweepEntry rows: swept axes, medians and
ranges, Pareto fronts, density axes, crossovers, titles and the rows handed to the CSV. Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from hwsim.report import fig_density, fig_sweep  # noqa: E402
from hwsim.report.inputs import SweepEntry  # noqa: E402
from hwsim.report.style import save_figure  # noqa: E402


def _sweep(rows, params=("pe_array.rows", "pe.mac_bits"), label="toy", spec=None) -> SweepEntry:
    return SweepEntry(label=label, source=Path("sweep.json"), parameters=tuple(params), rows=tuple(rows),
                      spec=spec or {"arch": "arch_configs/scnn.yaml"})


def _grid_rows():
    rows = []
    cfg = 0
    for r in (4, 8, 16):
        for bits in (8, 16):
            for tr in ("lenet5_dither", "lenet5_none"):
                c = 1000 * 16 / r * bits / 8 * (1 if tr.endswith("dither") else 2)
                rows.append({"config": cfg, "trace": tr, "model": "lenet5", "method": tr.split("_")[1],
                             "pe_array.rows": r, "pe.mac_bits": bits, "pe_array.cols": r, "memory.compression": "none",
                             "cycles_sparse": c, "cycles_dense": 4 * c, "energy_pj_sparse": 2e6 * bits / r,
                             "energy_pj_dense": 8e6 * bits / r, "speedup_sparse": 4.0})
            cfg += 1
    return rows


# ----------------------------------------------------------------------------- fig_sweep


def test_swept_axes_drop_constants_and_merge_keys_moved_together():
    s = _sweep(_grid_rows(), params=("pe_array.rows", "pe.mac_bits", "pe_array.cols", "memory.compression"))
    axes = fig_sweep.swept_axes(s)
    assert [lab for lab, _ in axes] == ["pe_array.rows = pe_array.cols", "pe.mac_bits"]
    assert axes[1][1][:4] == [8, 8, 16, 16]


def test_swept_axes_list_values():
    rows = [{"pe.bit_fusion_widths": [2, 4]}, {"pe.bit_fusion_widths": [2, 4, 8]}]
    (lab, vals), = fig_sweep.swept_axes(_sweep(rows, params=("pe.bit_fusion_widths",)))
    assert lab == "pe.bit_fusion_widths" and vals == [[2, 4], [2, 4, 8]]


def test_parameter_figure_medians_and_ranges(tmp_path):
    s = _sweep(_grid_rows())
    p = fig_sweep.parameter_figure(s, name="par")
    assert p.figure.get_suptitle() == "Sweep 'toy': effect of each parameter"
    assert p.section == "Sweep toy"
    st = {(r["parameter"], r["value"], r["trace"]): r for r in p.rows}
    assert len(st) == (3 + 2) * 2
    r = st[("pe_array.rows", 8, "lenet5_dither")]  # two mac widths: cycles 2000·1 and 2000·2
    assert r["points"] == 2
    assert r["cycles_sparse_min"] == 2000 and r["cycles_sparse_max"] == 4000 and r["cycles_sparse_median"] == 3000
    assert r["energy_pj_sparse_median"] == pytest.approx((2e6 * 8 / 8 + 2e6 * 16 / 8) / 2 * 1e-6)  # in µJ
    m = st[("pe.mac_bits", 16, "lenet5_none")]
    assert m["points"] == 3 and m["cycles_sparse_median"] == 1000 * 16 / 8 * 2 * 2
    axes = p.figure.axes
    assert [t.get_text() for t in axes[4].get_xticklabels()] == ["4", "8", "16"]  # bottom row, first column
    assert axes[4].get_xlabel() == "PE rows (PEs)" and axes[5].get_xlabel() == "MAC width (bit)"
    assert axes[0].get_yscale() == "log"
    png, _ = save_figure(p.figure, out_dir=tmp_path, name="par", dpi=30)
    assert png.stat().st_size > 1000


def test_parameter_figure_none_without_a_swept_parameter():
    rows = [{"trace": "t", "pe_array.rows": 8, "cycles_sparse": 1.0}] * 3
    assert fig_sweep.parameter_figure(_sweep(rows, params=("pe_array.rows",)), name="x") is None


def test_pareto_front_minimises_both():
    pts = [(3, 3), (1, 5), (2, 2), (4, 1), (2, 6), (5, 1)]
    assert fig_sweep.pareto_front(pts) == [1, 2, 3]
    assert fig_sweep.pareto_front([(1, 1), (1, 1)]) == [0]
    assert fig_sweep.pareto_front([]) == []


def test_pareto_figure_marks_the_front(tmp_path):
    rows = [{"config": i, "trace": "t", "model": "m", "pe_array.rows": r, "cycles_sparse": c,
             "energy_pj_sparse": e, "cycles_dense": 2 * c, "energy_pj_dense": 2 * e}
            for i, (r, c, e) in enumerate([(4, 400, 1e6), (8, 200, 2e6), (16, 300, 3e6), (32, 100, 5e6)])]
    p = fig_sweep.pareto_figure(_sweep(rows, params=("pe_array.rows",)), name="par")
    on = [(d["config"], d["front_number"]) for d in p.rows if d["on_front"]]
    assert on == [(0, 3), (1, 2), (3, 1)]  # numbered by ascending cycles
    assert not next(d for d in p.rows if d["config"] == 2)["on_front"]
    assert next(d for d in p.rows if d["config"] == 0)["energy_uj_sparse"] == pytest.approx(1.0)
    assert next(d for d in p.rows if d["config"] == 0)["pe_array.rows"] == 4
    assert "t: [1: PE rows 32], [2: PE rows 8], [3: PE rows 4]" in p.caption
    assert p.figure.axes[0].get_title() == "t"
    save_figure(p.figure, out_dir=tmp_path, name="par", dpi=30)


def test_pareto_figure_none_for_too_few_points_or_one_config():
    one = [{"trace": "t", "pe_array.rows": 4, "cycles_sparse": 1, "energy_pj_sparse": 1}]
    assert fig_sweep.pareto_figure(_sweep(one, params=("pe_array.rows",)), name="x") is None
    same = one * 3
    assert fig_sweep.pareto_figure(_sweep(same, params=("pe_array.rows",)), name="x") is None


def test_config_text_units():
    axes = [("pe_array.rows = pe_array.cols", [16]), ("pe.mac_bits", [8]), ("memory.dram_bytes_per_cycle", [64.0])]
    assert fig_sweep.config_text({}, axes, 0) == "PE rows = PE columns 16, MAC width 8 bit, DRAM bandwidth 64 B/cycle"


# ----------------------------------------------------------------------------- fig_density


def _drow(d, *, cfg=0, model="m", seed=0, cyc_sparse=None, en_sparse=None):
    return {"config": cfg, "model": model, "seed": seed, "trace": f"synth[density={d}]",
            "synthetic_w_density": d, "synthetic_a_density": d, "synthetic_dz_density": d,
            "cycles_dense": 1000.0, "cycles_dense_gated": 1000.0, "cycles_ideal": 1000.0 * d ** 3,
            "cycles_sparse": cyc_sparse if cyc_sparse is not None else 1000.0 * (0.2 + d),
            "energy_pj_dense": 500.0, "energy_pj_dense_gated": 500.0 * (0.5 + 0.5 * d),
            "energy_pj_ideal": 500.0 * d ** 3,
            "energy_pj_sparse": en_sparse if en_sparse is not None else 500.0 * (0.1 + 1.2 * d)}


def test_density_axis():
    rows = [_drow(d) for d in (0.2, 0.5, 1.0)]
    assert fig_density.density_axis(rows) == ("weight = activation = δ̃z density", [0.2, 0.5, 1.0])
    assert fig_density.density_axis(rows[:2]) is None  # fewer than 3 points
    only_dz = [dict(r, synthetic_w_density=1.0, synthetic_a_density=0.5) for r in rows]
    assert fig_density.density_axis(only_dz) == ("δ̃z density", [0.2, 0.5, 1.0])
    mixed = [dict(r, synthetic_w_density=1.0 - r["synthetic_dz_density"] / 2) for r in rows]
    assert fig_density.density_axis(mixed) is None  # two columns vary differently
    assert fig_density.density_axis([dict(r, synthetic_dz_density=None) for r in rows]) is None
    assert fig_density.density_axis([_drow(0.5)] * 3) is None  # nothing varies


def test_crossovers_both_directions_and_touching():
    assert fig_density.crossovers([0, 1, 2], [2.0, 0.5, 2.0]) == [pytest.approx(2 / 3), pytest.approx(1 + 1 / 3)]
    assert fig_density.crossovers([0, 1], [1.0, 1.0]) == []
    assert fig_density.crossovers([0, 1, 2], [0.5, 1.0, 0.5]) == []  # touches 1 without crossing
    assert fig_density.crossovers([0, 1, 2, 3], [0.5, 1.0, 1.0, 1.5]) == [pytest.approx(1.0)]


def test_density_groups_split_by_config_and_sort():
    rows = [dict(_drow(d, cfg=c), **{"pe_array.rows": 4 * (c + 1)}) for c in (0, 1) for d in (1.0, 0.2, 0.5)]
    rows.append(_drow(0.5, cfg=2))  # a single point: no density axis, no group
    s = _sweep(rows, params=("pe_array.rows",), label="dens")
    groups = fig_density.density_groups(s)
    assert len(groups) == 2
    title, xlabel, grows, xs = groups[0]
    assert xs == [0.2, 0.5, 1.0] and [r["synthetic_dz_density"] for r in grows] == xs
    assert title == "m, synthetic density sweep 'dens' on scnn (config 0: pe_array.rows=4)"
    assert groups[1][0].endswith("(config 1: pe_array.rows=8)")
    assert xlabel == "weight = activation = δ̃z density"


def test_density_figure_rows_and_crossovers(tmp_path):
    rows = [_drow(d) for d in (0.2, 0.5, 0.9, 1.0)]
    spec = {"arch": "scnn.yaml", "traces": [{"synthetic": {"batch": 4}}], "training": True}
    s = _sweep(rows, params=(), label="dens", spec=spec)
    (group,) = fig_density.density_groups(s)
    p = fig_density.density_figure(s, group, name="d")
    assert [r["density"] for r in p.rows] == [0.2, 0.5, 0.9, 1.0]
    r = p.rows[1]
    assert r["cycles_norm_sparse"] == pytest.approx(0.7) and r["cycles_norm_dense"] == 1.0
    assert r["energy_norm_sparse"] == pytest.approx(0.7) and r["energy_norm_dense_gated"] == pytest.approx(0.75)
    assert r["cycles_sparse"] == 700.0
    # sparse cycles ÷ dense = 0.2 + d crosses 1 at d = 0.8; energy 0.1 + 1.2 d at 0.75
    assert "latency vs dense at 0.80" in p.caption and "energy vs dense at 0.75" in p.caption
    texts = [t.get_text() for ax in p.figure.axes for t in ax.texts]
    assert "latency crossover\nvs dense: 0.80" in texts
    assert "synthetic batch of 4" in p.figure.get_suptitle() and "one training iteration" in p.caption
    save_figure(p.figure, out_dir=tmp_path, name="d", dpi=30)


def test_density_figure_without_crossover_says_where_it_peaks():
    rows = [_drow(d, cyc_sparse=500.0 * d) for d in (0.2, 0.5, 1.0)]
    s = _sweep(rows, params=(), spec={"arch": "a.yaml", "training": False})
    p = fig_density.density_figure(s, fig_density.density_groups(s)[0], name="d")
    assert "no latency crossover vs dense in [0.20, 1.00] (sparse ÷ dense peaks at 0.500" in p.caption
    assert "inference" in p.caption
