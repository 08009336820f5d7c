"""Point labels that do not collide (hwsim/report/labels.py) and the Pareto figure's front numbers that use them:
after a draw, no two label boxes (matplotlib's own text extents) overlap, none covers a labelled marker, every
label stays inside its axes and near its point."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402

from hwsim.report import fig_sweep  # noqa: E402
from hwsim.report.inputs import SweepEntry  # noqa: E402
from hwsim.report.labels import label_points  # noqa: E402
from hwsim.report.style import new_figure  # noqa: E402


def _drawn_boxes(fig, labels):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [Text.get_window_extent(a, renderer) for a in labels], renderer


def _shared_area(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _check(fig, ax, labels, *, marker_pt=5.0):
    boxes, renderer = _drawn_boxes(fig, labels)
    for (i, a), (j, b) in combinations(enumerate(boxes), 2):
        assert _shared_area(a, b) == pytest.approx(0, abs=0.5), (labels[i].get_text(), labels[j].get_text(), a, b)
    r = renderer.points_to_pixels(marker_pt) / 2
    frame = ax.bbox
    for a, box in zip(labels, boxes, strict=True):
        x, y = ax.transData.transform(a.xy)
        for b in labels:  # off every labelled marker
            bx, by = ax.transData.transform(b.xy)
            assert not (box.x0 < bx + r - 0.5 and bx - r + 0.5 < box.x1 and box.y0 < by + r - 0.5
                        and by - r + 0.5 < box.y1), (a.get_text(), b.get_text())
        assert frame.x0 - 0.5 <= box.x0 and box.x1 <= frame.x1 + 0.5 and frame.y0 - 0.5 <= box.y0
        assert box.y1 <= frame.y1 + 0.5
        # near its point: within a few label heights (vertical nudges) and a label width plus the gap (sides)
        near = renderer.points_to_pixels(5.0)  # the gap (4 pt) and a rounding margin
        assert abs((box.y0 + box.y1) / 2 - y) <= 4 * box.height and min(abs(box.x0 - x), abs(box.x1 - x)) < near
    return boxes


def test_labels_of_points_at_nearly_the_same_place_do_not_overlap():
    fig = new_figure(width=4, height=3)
    ax = fig.subplots()
    pts = [(1.0, 1.0), (1.001, 0.999), (1.002, 0.998), (2.0, 0.0)]  # three within a pixel of each other
    ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", markersize=5)
    labels = label_points(ax, pts, ["1", "2", "3", "4"], color="red")
    boxes = _check(fig, ax, labels)
    # the first label takes the first candidate (right of its point, just above it); the lone point keeps its own
    x, y = ax.transData.transform(pts[0])
    assert boxes[0].x0 > x and boxes[0].y0 == pytest.approx(y, abs=1.5)
    assert not labels[0].arrow_patch.get_visible() and labels[0].get_horizontalalignment() == "left"
    fig.set_dpi(200)  # the placement is redone at draw time in pixels: it holds at another resolution
    _check(fig, ax, labels)


def test_a_label_pushed_away_from_its_point_gets_a_leader_line():
    fig = new_figure(width=3, height=2)
    ax = fig.subplots()
    pts = [(1.0, 1.0)] * 8  # eight labels on one point mid-axes
    ax.plot([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], "o", markersize=5)
    labels = label_points(ax, pts, [str(i) for i in range(8)], color="red")
    boxes = _check(fig, ax, labels)
    # right and left of it, just above and just below (centred would overlap those): four without a line;
    # then one label height further up and down on each side, with a leader line
    x, y = ax.transData.transform((1.0, 1.0))
    h = boxes[0].height
    side = ["right" if b.x0 > x else "left" for b in boxes]
    assert side == ["right", "right", "left", "left"] * 2
    assert [round((b.y0 - y) / h) for b in boxes] == [0, -1, 0, -1, 1, -2, 1, -2]
    assert [a.arrow_patch.get_visible() for a in labels] == [False] * 4 + [True] * 4


def test_pareto_figure_front_numbers_do_not_overlap():
    # three front points within a hair of each other (cycles 1000, 1001, 1002) and one far away
    rows = [{"trace": "t", "config": i, "pe.mac_bits": b, "cycles_sparse": c, "energy_pj_sparse": e}
            for i, (b, c, e) in enumerate([(4, 1000, 3.0e6), (8, 1001, 2.999e6), (12, 1002, 2.998e6),
                                           (16, 5000, 1.0e6), (20, 6000, 4.0e6)])]
    sw = SweepEntry(label="s", source=Path("/s"), parameters=("pe.mac_bits",), rows=tuple(rows), spec={})
    p = fig_sweep.pareto_figure(sw, name="p")
    assert p is not None and [r["front_number"] for r in p.rows] == [1, 2, 3, 4, None]
    ax = p.figure.axes[0]
    labels = [c for c in ax.get_children() if isinstance(c, Annotation)]
    assert [a.get_text() for a in labels] == ["1", "2", "3", "4"]
    _check(p.figure, ax, labels)
