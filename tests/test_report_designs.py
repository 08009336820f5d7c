""""Which accelerator for dithered backprop?": the design comparison (hwsim.sweep.designs.compare_designs) on a tiny
synthetic trace by hand, and its report section (hwsim.report.designs) from a hand-written document."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import yaml  # noqa: E402

from hwsim.arch import ARCH_DIR  # noqa: E402
from hwsim.report import build_report, designs, load_inputs  # noqa: E402
from hwsim.report.inputs import ReportInputError  # noqa: E402
from hwsim.results.designs import check_comparison, comparison  # noqa: E402
from hwsim.sweep.designs import chosen_iterations, compare_designs  # noqa: E402
from hwsim.sweep.spec import SweepError  # noqa: E402
from hwsim.trace.synth import synthesize  # noqa: E402


def _free_dram(tmp_path: Path, name: str) -> Path:
    """The shipped ``name``.yaml with unlimited DRAM bandwidth (so the fold model alone sets the cycles)."""
    doc = yaml.safe_load((ARCH_DIR / f"{name}.yaml").read_text())
    doc["memory"]["dram_bytes_per_cycle"] = math.inf
    out = tmp_path / f"{name}.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


def test_compare_designs_gives_the_equal_area_ratios_by_hand(tmp_path):
    """One linear layer (batch 16, 64 → 32) on systolic32_os and systolic32, DRAM unlimited. Both have the 32×32
    weight-stationary array as their equal-area dense array (same PEs and buffers). Fold model, R = C = 32:
    WS fold = 2R + C + T − 2, OS fold = R + C + T − 2, cycles = folds · fold − 1:
    forward WS 2 · 110 − 1 = 219, OS 1 · 126 − 1 = 125; backward-data WS 219, OS 2 · 94 − 1 = 187;
    backward-weight WS 1 · 158 − 1 = 157, OS 2 · 78 − 1 = 155. systolic32 *is* its equal-area array: 1× everywhere."""
    t = synthesize(tmp_path / "fc", layers=[{"name": "fc", "kind": "linear", "C": 64, "K": 32}], batch=16,
                   a_density=0.5, dz_density=0.1, dense_first_input=False)
    os_yaml, ws_yaml = _free_dram(tmp_path, "systolic32_os"), _free_dram(tmp_path, "systolic32")
    doc = compare_designs({"fc": t}, [str(os_yaml), str(ws_yaml)], cache_dir=tmp_path / "points")
    check_comparison(doc, "doc")  # what it writes, it reads
    os_row, ws_row = doc["rows"]
    assert (os_row["model"], os_row["equal_area_shape"]) == ("fc", [32, 32])
    assert os_row["speedup"]["forward"] == pytest.approx(219 / 125)
    assert os_row["speedup"]["backward_data"] == pytest.approx(219 / 187)
    assert os_row["speedup"]["backward_weight"] == pytest.approx(157 / 155)
    assert ws_row["speedup"] == {s: pytest.approx(1.0) for s in ("forward", "backward_data", "backward_weight",
                                                                 "update", "iteration")}
    assert doc["traces"][0]["replayed"] == "last full batch: iteration 0 of 1"
    assert [d["design"] for d in doc["designs"]] == [str(os_yaml), str(ws_yaml)]
    # the points were stored: a second comparison reads them instead of replaying
    assert len(list((tmp_path / "points" / "points").glob("*.json"))) == 2
    assert compare_designs({"fc": t}, [str(os_yaml)], cache_dir=tmp_path / "points")["rows"][0] == os_row


def test_an_unknown_iterations_mode_is_one_clear_error(tmp_path):
    t = synthesize(tmp_path / "fc", layers=[{"name": "fc", "kind": "linear", "C": 8, "K": 8}], batch=2)
    from hwsim.trace.format import load

    with pytest.raises(SweepError, match="iterations: 'first' is not allowed; allowed: last, all"):
        chosen_iterations(load(t), "first")
    assert chosen_iterations(load(t), "all") == ([0], "whole run: 1 sampled iterations of 1, integrated")


@pytest.mark.parametrize(("sp", "en", "words"), [
    (1.5, 1.2, "wins: faster, less energy"), (0.7, 0.9, "loses: slower, more energy"),
    (1.2, 0.9, "faster, more energy"), (0.99, 1.05, "slower, less energy"), (1.0, 1.0, "as fast, the same energy"),
    (None, 1.0, "–")])
def test_verdict_words(sp, en, words):
    assert designs.verdict(sp, en) == words


def _doc() -> dict:
    """Two designs on two traces: a wins everywhere, b loses on one trace and wins on the other."""
    def row(model, design, it, en, fwd):
        return {"model": model, "design": design, "area_mm2": 24.218 if design == "a" else 1.95,
                "equal_area_mm2": 24.19 if design == "a" else 1.94,
                "equal_area_shape": [205, 205] if design == "a" else [40, 41],
                "speedup": {"forward": fwd, "backward_data": 2.0, "backward_weight": 12.5, "update": None,
                            "iteration": it},
                "energy_gain": {"forward": 1.0, "backward_data": 1.0, "backward_weight": 1.0, "update": 1.0,
                                "iteration": en}}
    rows = [row("lenet5", "a", 2.0, 1.5, 0.5), row("lenet5", "b", 0.5, 0.8, 0.25),
            row("mlp500", "a", 1.0, 1.5, 1.0), row("mlp500", "b", 2.0, 1.25, 3.0)]
    traces = [{"model": "lenet5", "replayed": "last full batch: iteration 207 of 230"},
              {"model": "mlp500", "replayed": "last full batch: iteration 207 of 230"}]
    return comparison(rows, traces, ["a", "b"], command="hwsim demo")


def test_the_section_renders_the_hand_written_comparison(tmp_path):
    (tmp_path / "designs.json").write_text(json.dumps(_doc()))
    rep = build_report([tmp_path / "designs.json"], out=tmp_path / "r", dpi=40, svg=False)
    md = (tmp_path / "r" / "index.md").read_text()
    assert "## Which accelerator for dithered backprop?" in md
    lines = md.splitlines()
    head = next(ln for ln in lines if ln.startswith("| design | what it is |"))
    assert "iteration speed-up: geo-mean of 2 traces (range)" in head
    # a: √(2 · 1) = 1.41×, range 1.00×–2.00×; energy √(1.5 · 1.5) = 1.50×; b: √(0.5 · 2) = 1.00×, √(0.8 · 1.25) = 1.00×
    assert "| a | a | 24.22 | 205×205 PEs, 24.19 mm² | 1.41× (1.00×–2.00×) | 1.50× (1.50×–1.50×) | wins: faster, " \
           "less energy |" in lines
    assert "| b | b | 1.95 | 40×41 PEs, 1.94 mm² | 1.00× (0.50×–2.00×) | 1.00× (0.80×–1.25×) | as fast, the same " \
           "energy |" in lines
    assert "| lenet5 | b | 0.50× | 0.80× | 0.25× | 2.00× | 12.5× | – | loses: slower, more energy |" in lines
    assert "| mlp500 | b | 2.00× | 1.25× | 3.00× | 2.00× | 12.5× | – | wins: faster, less energy |" in lines
    assert "Faster than their equal-area dense array: a." in md and "Slower than it" not in md
    assert "As fast as it (1×, e.g. a dense array that is its own equal-area array): b." in md
    assert (tmp_path / "r" / "figures" / "designs_speedup_energy.png").exists()
    assert (tmp_path / "r" / "data" / "designs_summary.csv").exists()
    assert [p.name for p in rep.plots] == ["designs_speedup_energy"]
    assert "<h2 id=\"s0\">Which accelerator for dithered backprop?</h2>" in (tmp_path / "r" / "index.html").read_text()
    prov = md[md.index("## Provenance"):]
    assert "**design comparison**" in prov and "- trace lenet5: last full batch: iteration 207 of 230" in prov


def test_a_malformed_comparison_is_one_line_naming_the_field(tmp_path):
    doc = _doc()
    doc["rows"][1]["speedup"]["iteration"] = -1.0
    (tmp_path / "d.json").write_text(json.dumps(doc))
    with pytest.raises(ReportInputError, match=r"d\.json: field 'rows\[1\]\.speedup\.iteration': -1\.0 is not "
                                               r"allowed; allowed: a finite number >= 0 or null"):
        load_inputs([tmp_path / "d.json"])
    doc = _doc()
    doc["rows"] = "none"
    (tmp_path / "d.json").write_text(json.dumps(doc))
    with pytest.raises(ReportInputError, match="field 'rows' must be a list"):
        load_inputs([tmp_path / "d.json"])


def test_brief_methods_draw_two_figures_for_the_baseline_results_and_say_so(tmp_path):
    from _hwsim_fixtures import write_result

    from hwsim.report.render import BRIEF_FIGURES, RESULT_FIGURES

    plain = write_result(tmp_path / "plain.json", method="none", dz=1.0)
    dith = write_result(tmp_path / "dith.json", method="dither", dz=0.1)
    rep = build_report([plain, dith], out=tmp_path / "r", dpi=30, svg=False, brief_methods=("none",))
    names = [p.name for p in rep.plots]
    per = {m: sorted(n.split("_scnn_")[-1] for n in names if n.startswith(f"lenet5_{m}_")) for m in ("none", "dither")}
    # the dithered result gets every figure it has data for (the run and bandwidth figures need whole-run or
    # memory data this fake result lacks: the same with or without brief_methods)
    assert per["none"] == sorted(BRIEF_FIGURES) and set(BRIEF_FIGURES) < set(per["dither"]) <= set(RESULT_FIGURES)
    md = (tmp_path / "r" / "index.md").read_text()
    assert "lenet5 none @ scnn: only the per-layer speed-up and cycle breakdown figures here" in md
    full = build_report([plain, dith], out=tmp_path / "all", dpi=30, svg=False)
    assert sorted(n.split("_scnn_")[-1] for n in (p.name for p in full.plots) if n.startswith("lenet5_none_")) \
        == per["dither"]
    assert "only the per-layer speed-up" not in (tmp_path / "all" / "index.md").read_text()
