"""SCNN-style reports from results only (never the simulator): figures, tables, index pages.

``build_report(paths, out=...)`` takes results.json files, sweep output directories and trace
directories and writes ``index.md``, a self-contained ``index.html``, PNG/SVG figures and every
number as CSV/JSON. Matplotlib runs on the Agg backend.
"""

from __future__ import annotations

from hwsim.report.build import ReportOutcome, build_report
from hwsim.report.inputs import ReportInputError, load_inputs

__all__ = ["ReportInputError", "ReportOutcome", "build_report", "load_inputs"]
