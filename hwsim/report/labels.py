"""Point labels that do not collide: each placed at the first free spot next to its point, when the figure is drawn.

Numbers written next to close points (the Pareto figure's front numbers 1, 2, 3, …) overlap each other and
the neighbouring markers. :func:`label_points` annotates every point and adds an invisible helper artist to
the axes. At every draw — after the layout engine has fixed the axes' size, before the labels are drawn —
the helper places the labels one after another, in the order given, at the first free spot of a short list
of candidates: right of the point just above it, just below it, centred on it, the same three on its left,
then further up and down in steps of half a label height (up to :data:`MAX_STEPS` each way), the right side
before the left at every step. Free means: not over a label placed before, not over a labelled point's
marker, and inside the axes. When no candidate is free the one overlapping least is taken. A label that
ends up away from its point gets a thin leader line to it.

The placement is made in display (pixel) space from the drawn text's own size, so it holds at any DPI and
after any later layout change (a suptitle added after the figure was built, say); the labels themselves do
not take part in the layout.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

MAX_STEPS = 12  # half-label-height steps tried above and below the point on each side before giving up
GAP_PT = 4.0  # horizontal gap between a point and its label, points (more than half the marker)
_TOUCH_PX = 0.01


def label_points(ax: Axes, points: Sequence[tuple[float, float]], texts: Sequence[str], *, color: str,
                 fontsize: float = 8, marker_pt: float = 5.0) -> list[Annotation]:
    """Write ``texts[i]`` next to ``points[i]`` (data coordinates) of ``ax`` without overlaps; the annotations.

    ``marker_pt`` is the labelled points' marker size (points): labels keep off those markers too.
    """
    labels = []
    for (x, y), text in zip(points, texts, strict=True):
        a = ax.annotate(text, (x, y), xytext=(GAP_PT, 0), textcoords="offset points", ha="left", va="bottom",
                        fontsize=fontsize, fontweight="bold", color=color,
                        arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6, "shrinkA": 0,
                                    "shrinkB": marker_pt / 2 + 0.5})
        a.set_in_layout(False)
        labels.append(a)
    ax.add_artist(_Placer(labels, marker_pt=marker_pt))
    return labels


def _overlap(a: Bbox, b: Bbox) -> float:
    """Area two boxes share; 0 when they only touch (to within :data:`_TOUCH_PX`: stacked boxes' edges differ
    by rounding)."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > _TOUCH_PX and h > _TOUCH_PX else 0.0


def _candidates() -> list[tuple[int, int]]:
    """(side, half-heights above 'centred') in the order tried: side +1 = right of the point, -1 = left."""
    near = [(side, j) for side in (1, -1) for j in (1, -1, 0)]
    far = [(side, j) for k in range(2, MAX_STEPS + 1) for side in (1, -1) for j in (k, -k)]
    return near + far


class _Placer(Artist):
    """Draws nothing; places its labels (see the module doc) just before the axes draw them."""

    def __init__(self, labels: Sequence[Annotation], *, marker_pt: float) -> None:
        super().__init__()
        self._labels = list(labels)
        self._marker_pt = marker_pt
        self.set_zorder(-1)  # drawn before every label (texts are drawn at zorder 3)
        self.set_in_layout(False)

    def draw(self, renderer) -> None:  # noqa: ANN001 - a matplotlib renderer
        ax = self.axes
        if ax is None or not self._labels:
            return
        px = renderer.points_to_pixels(1.0)
        r = self._marker_pt * px / 2
        gap = GAP_PT * px
        anchors = [ax.transData.transform(a.xy) for a in self._labels]
        taken = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in anchors]  # the markers
        frame = ax.bbox
        for a, (x, y) in zip(self._labels, anchors, strict=True):
            a.update_positions(renderer)
            size = Text.get_window_extent(a, renderer)
            w, h = size.width, size.height
            best, best_cost = None, None
            for side, j in _candidates():
                x0 = x + gap if side > 0 else x - gap - w
                y0 = y - h / 2 + j * h / 2
                box = Bbox.from_extents(x0, y0, x0 + w, y0 + h)
                outside = not (frame.x0 - _TOUCH_PX <= x0 and x0 + w <= frame.x1 + _TOUCH_PX
                               and frame.y0 - _TOUCH_PX <= y0 and y0 + h <= frame.y1 + _TOUCH_PX)
                cost = (outside, sum(_overlap(box, t) for t in taken))
                if best_cost is None or cost < best_cost:
                    best, best_cost = (side, j, box), cost
                if cost == (False, 0.0):
                    break
            assert best is not None
            side, j, box = best
            a.set_horizontalalignment("left" if side > 0 else "right")
            a.xyann = (side * GAP_PT, (box.y0 - y) / px)
            if a.arrow_patch is not None:  # a leader line only for a label moved off its point's side
                a.arrow_patch.set_visible(abs(j) > 1)
            taken.append(box)
