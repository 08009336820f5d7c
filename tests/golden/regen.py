"""Golden cycles and energy of the simulator: compute them, or (``python tests/golden/regen.py``) rewrite
``tests/golden/sim_golden.json``.

The golden file pins every layer × pass × variant figure (cycles and energy breakdowns, action counts,
MACs, densities) of

* the committed sample trace ``traces/samples/lenet5-digits-dither``: every sampled iteration on scnn
  (training), its last iteration on scnn_bitserial, scnn_bitfusion and systolic32 (training) and on
  scnn16 (inference);
* a synthetic ResNet-18 (224², batch 1, seed 0; weights dense, activations 0.5, δ̃z 0.05) on scnn.

All of these pin ``memory.schedule: isolated`` (the model they were first recorded with; scnn16.yaml sets it
itself); the ``…/iteration`` cases pin the one-schedule-per-iteration model (hwsim's default since issue 17).

``tests/test_wholerun_golden.py`` recomputes them and compares to the last digit: a speed change must
leave them untouched. An INTENDED model change regenerates the file with this script (and says so in
its commit message):

    PYTHONPATH=. python tests/golden/regen.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("sim_golden.json")
SAMPLE = ROOT / "traces" / "samples" / "lenet5-digits-dither"
RESNET = dict(model="resnet18", w_density=1.0, a_density=0.5, dz_density=0.05, seed=0, batch=1)


def _record(result) -> dict:
    """What is pinned: the layers (every variant's cycles, energy, breakdowns, actions) and the totals."""
    d = result.to_json()
    return {"layers": d["layers"], "total": d["total"]}


def compute() -> dict:
    """Every golden case, as JSON-ready dicts (floats round-trip exactly through json)."""
    from hwsim.arch import load_arch
    from hwsim.sim.replay import simulate_trace
    from hwsim.trace.format import load
    from hwsim.trace.synth import synthesize

    out: dict[str, dict] = {}
    iso = {"memory.schedule": "isolated"}
    trace = load(SAMPLE)
    last = trace.sampled_iterations[-1]
    scnn = load_arch("scnn", iso)
    for it in trace.sampled_iterations:
        out[f"sample/scnn/it{it}"] = _record(simulate_trace(trace, scnn, iteration=it))
    for name in ("scnn_bitserial", "scnn_bitfusion", "systolic32"):
        out[f"sample/{name}/last"] = _record(simulate_trace(trace, load_arch(name, iso), iteration=last))
    out["sample/scnn16/inference"] = _record(simulate_trace(trace, load_arch("scnn16"), iteration=last,
                                                            training=False))
    for name in ("scnn", "systolic32"):
        out[f"sample/{name}/last/iteration"] = _record(simulate_trace(trace, load_arch(name), iteration=last))
    with tempfile.TemporaryDirectory() as tmp:
        path = synthesize(Path(tmp) / "resnet18", **RESNET)
        out["resnet18_b1/scnn"] = _record(simulate_trace(load(path), scnn))
        out["resnet18_b1/scnn/iteration"] = _record(simulate_trace(load(path), load_arch("scnn")))
    return json.loads(json.dumps(out))


def main() -> int:
    data = compute()
    GOLDEN.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN} ({len(data)} cases)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
