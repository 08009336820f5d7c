"""Unit tests of hwsim.experiments.output: the Markdown table, mean ± std, CSV/JSON writing and figure saving."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from hwsim.experiments import output


def test_markdown_table_has_a_header_a_rule_per_column_and_one_line_per_row():
    text = output.markdown_table(["a", "b"], [[1, "x"], [2.5, None]])
    assert text == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |\n"


def test_markdown_table_without_rows_is_only_the_header():
    assert output.markdown_table(["only"], []) == "| only |\n|---|\n"


def test_mean_std_is_the_sample_std():
    # 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 = 14 over n − 1 = 3
    m, sd = output.mean_std([1, 2, 3, 6])
    assert m == 3.0 and sd == pytest.approx(math.sqrt(14 / 3))


def test_mean_std_of_one_value_has_no_spread_and_of_none_is_nan():
    assert output.mean_std([0.25]) == (0.25, 0.0)
    m, sd = output.mean_std([])
    assert math.isnan(m) and math.isnan(sd)


def test_mean_std_skips_missing_and_non_finite_values():
    # only 2 and 4 count: mean 3, sample std sqrt(((−1)² + 1²) / 1) = sqrt(2)
    m, sd = output.mean_std([2, None, float("nan"), 4, float("inf")])
    assert m == 3.0 and sd == pytest.approx(math.sqrt(2))
    m, _ = output.mean_std([None, float("nan")])
    assert math.isnan(m)


def test_pm_formats_percent_by_default_and_a_dash_for_nan():
    assert output.pm(0.91234, 0.01) == "91.23 ± 1.00"
    assert output.pm(3.0, 0.5, scale=1, digits=1) == "3.0 ± 0.5"
    assert output.pm(float("nan"), 0.1) == "—"
    assert output.pm(float("inf"), 0.0) == "—"


def test_write_csv_unions_columns_in_first_seen_order_and_rounds_floats(tmp_path):
    p = output.write_csv(tmp_path / "r.csv", [{"a": 1, "b": 1 / 3}, {"c": "x", "a": 2.0}])
    assert p == tmp_path / "r.csv"
    # 1/3 to 6 significant digits; a missing cell is empty; 2.0 → "2" (%g)
    assert p.read_text() == "a,b,c\n1,0.333333,\n2,,x\n"


def test_write_json_writes_paths_as_strings_and_refuses_other_objects(tmp_path):
    p = output.write_json(tmp_path / "r.json", {"out": Path("a/b"), "n": 1})
    assert json.loads(p.read_text()) == {"out": "a/b", "n": 1}
    assert p.read_text().endswith("}\n")
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        output.write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()


def test_write_text_replaces_a_file_whole(tmp_path):
    p = tmp_path / "index.md"
    p.write_text("old, longer text")
    output.write_text(p, "new")
    assert p.read_text() == "new"


def test_save_figure_writes_the_format_of_the_suffix_and_closes_the_figure(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.plot([0, 1], [0, 1])
    png = output.save_figure(fig, tmp_path / "f.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)
    fig2, _ = plt.subplots(figsize=(2, 2), dpi=50)
    svg = output.save_figure(fig2, tmp_path / "f.svg")
    assert b"<svg" in svg.read_bytes()[:400]
