"""Unit tests of hwsim.report.style: the short labels and number formats every figure uses, colours and markers,
axis labels of swept keys, log-axis ticks, the palettised PNG and the canvas-overflow check."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from hwsim.report import style  # noqa: E402


@pytest.mark.parametrize("name,limit,short", [
    ("conv1", 14, "conv1"),                                  # short enough: unchanged
    ("features.3.conv", 14, "3.conv"),                       # "features.3.conv" is 15: keep the last parts
    ("layer4.1.downsample.0", 14, "1.downsample.0"),         # 1 + 1 + 12 = 14 fits; "layer4." would not
    # the last part alone is longer than the limit: "…" and the name's last 13 characters
    ("encoder.attention_output_projection", 14, "…ut_projection"),
])
def test_short_layer(name, limit, short):
    out = style.short_layer(name, limit)
    assert out == short and len(out) <= limit


@pytest.mark.parametrize("v,text", [(1.5e9, "1.5G"), (2_500_000, "2.5M"), (20_000, "20k"), (9_999, "9999"),
                                    (0.05, "0.05"), (-3e6, "-3M"), (1e4, "10k")])
def test_plain_number(v, text):
    assert style.plain_number(v) == text


@pytest.mark.parametrize("x,text", [(None, "–"), (float("nan"), "–"), (float("inf"), "∞"), (float("-inf"), "–"),
                                    (300.4, "300×"), (100.0, "100×"), (30.14, "30.1×"), (10.0, "10.0×"),
                                    (2.614, "2.61×"), (-12.0, "-12.0×")])
def test_times(x, text):
    assert style.times(x) == text


@pytest.mark.parametrize("x,text", [(None, "–"), (float("nan"), "–"), (0, "0%"), (0.004, "<1%"), (0.01, "1%"),
                                    (0.253, "25%"), (1.0, "100%")])
def test_percent(x, text):
    assert style.percent(x) == text


@pytest.mark.parametrize("peak,scale,unit", [(5e9, 1e-9, "mJ"), (1e6, 1e-6, "µJ"), (999_999, 1e-3, "nJ"),
                                             (-2e3, 1e-3, "nJ"), (999, 1.0, "pJ"), (0, 1.0, "pJ")])
def test_energy_unit(peak, scale, unit):
    assert style.energy_unit(peak) == (scale, unit)


def test_method_colors_are_fixed_for_known_methods_and_stable_for_others():
    assert style.method_color("Dither") == style.METHOD_COLOR["dither"]
    assert style.method_color(None) == style.method_color("")
    c = style.method_color("newmethod")
    assert c == style.method_color("newmethod") and c in style._EXTRA_COLORS
    # the extra colour is picked by the sum of the name's code points
    assert c == style._EXTRA_COLORS[sum(map(ord, "newmethod")) % len(style._EXTRA_COLORS)]


def test_series_style_colour_by_method_marker_and_line_by_model():
    models = ["a", "b", "c", "d", "e"]
    s = style.series_style("none", "b", models)
    assert s == {"color": style.METHOD_COLOR["none"], "marker": style.MODEL_MARKER[1], "linestyle": "--"}
    assert style.series_style("dither", "e", models)["linestyle"] == "-"  # 4 line styles cycle
    assert style.series_style("dither", "unknown", models)["marker"] == style.MODEL_MARKER[0]


@pytest.mark.parametrize("key,shown", [
    ("memory.dram_bytes_per_cycle", ("DRAM bandwidth", "B/cycle")),
    ("pe.some_new_bytes", ("some new", "B")),
    ("energy.sram.read_pj_per_64b", ("read", "pJ/64 bit")),
    ("energy.mult.int8", ("mult int8", "pJ")),
    ("pe.flavour", ("flavour", "")),
])
def test_param_display(key, shown):
    assert style.param_display(key) == shown


def test_param_label_joins_keys_moved_together_and_their_units_once():
    assert style.param_label("memory.dram_bytes_per_cycle") == "DRAM bandwidth (B/cycle)"
    assert style.param_label("pe_array.rows = pe_array.cols") == "PE rows = PE columns (PEs)"
    assert style.param_label("pe.mac = pe.mac_bits") == "MAC kind = MAC width (bit)"
    assert style.param_label("dataflow") == "dataflow"


def _log_axes(lo, hi):
    fig = style.new_figure(width=3, height=2)
    ax = fig.add_subplot()
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    style.plain_log(ax)
    return fig, ax


def test_plain_log_narrow_range_gets_round_linear_ticks():
    from matplotlib.ticker import MaxNLocator, NullFormatter

    _, ax = _log_axes(2.0, 6.0)  # hi / lo = 3 < 4
    assert isinstance(ax.yaxis.get_major_locator(), MaxNLocator)
    assert isinstance(ax.yaxis.get_minor_formatter(), NullFormatter)
    assert ax.yaxis.get_major_formatter()(2_000_000, 0) == "2M"


def test_plain_log_one_decade_labels_minor_ticks_and_wide_ranges_do_not():
    from matplotlib.ticker import LogLocator, NullFormatter

    _, ax = _log_axes(1.0, 15.0)  # 15× < 20×: label 2, 3, 5 as well
    assert isinstance(ax.yaxis.get_minor_locator(), LogLocator)
    assert ax.yaxis.get_minor_formatter()(30.0, 0) == "30"
    _, wide = _log_axes(1.0, 1e5)
    assert isinstance(wide.yaxis.get_minor_formatter(), NullFormatter)


def test_canvas_overflow_is_empty_for_a_fitting_figure_and_names_a_text_outside():
    fig = style.new_figure(width=3, height=2)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1])
    assert style.canvas_overflow(fig) == []
    fig.text(1.3, 0.5, "far right")
    out = style.canvas_overflow(fig)
    assert any(o.startswith("text 'far right' at x ") for o in out)


def test_save_figure_writes_a_palettised_png_and_an_svg(tmp_path):
    from PIL import Image

    fig = style.new_figure(width=2, height=2)
    fig.add_subplot().plot([0, 1], [1, 0])
    png, svg = style.save_figure(fig, out_dir=tmp_path, name="f", dpi=40)
    assert png == tmp_path / "f.png" and svg.suffix == ".svg" and svg.exists()
    with Image.open(png) as im:
        assert im.mode == "P" and im.size == (80, 80)
