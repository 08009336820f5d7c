"""The compiled bank-conflict model (hwsim.sim._bankkernel, wrapped by hwsim.sim.banks) against the numpy path it
replaces: the same stall counts and cycles on many random unit sets and loads, by hand on small cases, the same
replay results, ``HWSIM_SIM_KERNEL``, and that the extension is built wherever a C compiler is."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from hwsim.sim import banks

COMPILER = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
KERNEL = banks.kernel_available()  # without it (no compiler) the comparisons below are numpy against numpy
SAMPLE = Path(__file__).resolve().parents[1] / "traces" / "samples" / "lenet5-digits-dither"


def test_the_extension_is_built_where_a_c_compiler_is():
    """pip install (setup.py) builds it when a compiler is present; a checkout needs ``python setup.py build_ext
    --inplace``. Without a compiler the numpy path serves."""
    if COMPILER:
        assert KERNEL, (f"a C compiler is present ({COMPILER}) but hwsim.sim._bankkernel is not importable "
                        f"({banks.IMPORT_ERROR}): run `pip install -e .` or `python setup.py build_ext --inplace`")
    assert banks.compiled_on(True) == KERNEL
    assert not banks.compiled_on(False)


def _numpy_counts(units, *, f, i, banks_, depth, ports, max_cycles):
    """(stalls, cycles) of the numpy path: cycle-major loads, then the queue model."""
    loads, cycles = banks.cycle_loads(units, f=f, i=i, banks=banks_, max_cycles=max_cycles)
    return banks.load_stalls(loads, depth=depth, ports=ports, compiled=False), cycles


def _units(rng, nb):
    """Random sampled units: some empty on either side, some with holes (negative addresses), some long."""
    out = []
    for _ in range(int(rng.integers(0, 12))):
        nx = int(rng.choice([0, 1, 3, int(rng.integers(0, 20)), int(rng.integers(20, 60))]))
        ny = int(rng.choice([0, 1, 5, int(rng.integers(0, 40)), int(rng.integers(40, 120))]))
        hi = int(rng.choice([nb, 3 * nb, 1000]))
        ax, ay = rng.integers(0, hi, nx), rng.integers(0, hi, ny)
        if rng.random() < 0.2:
            ax[rng.random(nx) < 0.3] = -1
            ay[rng.random(ny) < 0.3] = -1
        if rng.random() < 0.2:  # one address everywhere: the worst conflicts
            ax[:], ay[:] = ax[:1].sum(), 0
        out.append((ax, ay))
    return out


def test_kernel_equals_the_numpy_path_on_random_units():
    rng = np.random.default_rng(21)
    seen = set()
    for trial in range(1500):
        nb = int(rng.choice([1, 2, 4, 7, 8, 16, 32, 64]))
        units = _units(rng, nb)
        kw = dict(f=int(rng.integers(1, 6)), i=int(rng.integers(1, 6)), depth=int(rng.integers(0, 7)),
                  ports=int(rng.choice([0, 0, 1, 2, 3, 5])), max_cycles=int(rng.choice([0, 1, 7, 96, 500])))
        want = _numpy_counts(units, banks_=nb, **kw)
        if KERNEL:
            assert banks.unit_stalls(units, banks=nb, **kw) == want, (trial, kw, nb)
        rate_k = banks.stall_rate(units, banks=nb, compiled=True, **kw)
        assert rate_k == banks.stall_rate(units, banks=nb, compiled=False, **kw), trial
        seen.add((want[0] > 0, kw["ports"] > 0))
    assert seen == {(a, b) for a in (True, False) for b in (True, False)}  # stalls and none, with and without ports


def test_kernel_queue_equals_the_numpy_queue_on_random_loads():
    rng = np.random.default_rng(22)
    for trial in range(400):
        nt, nu, nb = int(rng.integers(0, 40)), int(rng.integers(0, 7)), int(rng.choice([1, 2, 4, 8, 32]))
        loads = rng.poisson(rng.uniform(0.1, 3.0), size=(nt, nu, nb))
        if rng.random() < 0.3:
            loads[rng.random(loads.shape) < 0.05] += 9  # bursts far above any depth
        depth, ports = int(rng.integers(0, 6)), int(rng.choice([0, 1, 2, 4]))
        want = banks.load_stalls(loads, depth=depth, ports=ports, compiled=False)
        assert banks.load_stalls(loads, depth=depth, ports=ports, compiled=True) == want, trial
        per_unit = banks.queue_stalls([loads[:, u] for u in range(nu)], depth=depth, ports=ports)[0]
        assert want == per_unit, trial
    loads = np.zeros((3, 2, 4), dtype=np.int32)[:, ::-1]  # another dtype, not contiguous: converted
    loads[0, 0, 0] = 4
    assert banks.load_stalls(loads, depth=0, compiled=True) == banks.load_stalls(loads, depth=0, compiled=False) == 5


@pytest.mark.parametrize("compiled", [False, True])
def test_stalls_by_hand_on_both_paths(compiled):
    kw = dict(compiled=compiled)
    # 1×1 pathology: banks 0..3 each get 4 products in the one cycle; depth 0: 3 stalls, depth 3: none
    units = [(np.arange(4) * 32, np.arange(4))]
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=0, **kw) == 3.0
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=3, **kw) == 0.0
    assert banks.stall_rate(units, f=4, i=4, banks=32, depth=3, ports=2, **kw) == 1.0   # ⌈4/2⌉ − 1 a cycle
    # the late first stall of test_unit_banks: 2 stalls over 5 cycles
    late = [(np.array([0, 0, 1, 0, 0, 0]), np.array([0, 2])), (np.array([0]), np.array([0]))]
    assert banks.stall_rate(late, f=3, i=1, banks=4, depth=1, **kw) == 2 / 5
    # A: one cycle, 4 products on bank 0, depth 0: waits 3 and leaves backlog 0 + 4 − 1 = 3 (no port limit).
    # B: 2 cycles of one product. Every unit runs for the longest unit's cycles: A's padded cycle waits 3 − 1 = 2
    # more. 5 stalls over 1 + 2 cycles; A alone: 3 over 1. With ports the backlog never exceeds the depth.
    a, b = (np.zeros(4, dtype=np.int64), np.zeros(1, dtype=np.int64)), (np.zeros(1, dtype=np.int64), np.array([1, 1]))
    assert banks.stall_rate([a, b], f=4, i=1, banks=4, depth=0, **kw) == 5 / 3
    assert banks.stall_rate([a], f=4, i=1, banks=4, depth=0, **kw) == 3.0
    assert banks.stall_rate([a, b], f=4, i=1, banks=4, depth=0, ports=1, **kw) == 3 / 3
    # holes: a negative address issues nothing, its cycle still counts
    # f=2, i=2: 2 cycles, 2 then 1 products on bank 0; depth 0: wait 1 (backlog 1), then 1 + 1 − 1 = 1
    holes = [(np.array([0, -1]), np.array([0, 0, -1, 0]))]
    assert banks.stall_rate(holes, f=2, i=2, banks=4, depth=0, **kw) == 2 / 2
    assert banks.stall_rate([], f=2, i=2, banks=4, depth=0, **kw) == 0.0
    assert banks.stall_rate([(np.zeros(0, dtype=np.int64), np.arange(3))], f=2, i=2, banks=4, depth=0, **kw) == 0.0


def test_kernel_rejects_bad_input_in_one_line():
    if not KERNEL:  # nothing to call: the reason it is missing is kept for the first test's message
        assert banks.IMPORT_ERROR
        return
    z = np.zeros(0, dtype=np.int64)
    off = np.zeros(1, dtype=np.int64)
    with pytest.raises(TypeError, match="ax must be a C-contiguous int64 buffer"):
        banks._ext.stalls(z.astype(np.int32), off, z, off, 1, 1, 4, 0, 0, 9)
    with pytest.raises(ValueError, match="banks >= 1"):
        banks._ext.stalls(z, off, z, off, 1, 1, 0, 0, 0, 9)
    with pytest.raises(ValueError, match="ax_off must run from 0"):
        banks._ext.stalls(z, np.array([0, 2]), z, np.array([0, 0]), 1, 1, 4, 0, 0, 9)
    with pytest.raises(ValueError, match="loads hold 3 values"):
        banks._ext.queue(np.zeros(3, dtype=np.int64), 2, 4, 0, 0)


def test_the_environment_chooses_the_path(monkeypatch):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, "numpy")
    assert not banks.compiled_on()
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, "auto")
    assert banks.compiled_on() == KERNEL
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, "fast")
    with pytest.raises(ValueError, match=r"HWSIM_SIM_KERNEL='fast' is not allowed; use one of: auto, numpy$"):
        banks.compiled_on()


@pytest.mark.parametrize("overrides", [{}, {"pe.bank_queue_depth": 0}, {"pe.bank_queue_depth": 2,
                                                                         "pe.bank_queue_write_ports": 1}])
def test_a_replay_is_identical_on_both_paths(monkeypatch, overrides):
    """One iteration of the shipped LeNet-5 trace on scnn (few stalls), without queues and with one write port (many)."""
    from hwsim.arch import load_arch
    from hwsim.sim.replay import simulate_trace
    from hwsim.trace.format import load

    trace = load(SAMPLE)
    arch = load_arch("scnn", overrides)
    it = trace.sampled_iterations[-1]
    out = {}
    for path in ("numpy", "auto"):
        monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
        d = simulate_trace(trace, arch, iteration=it).to_json()
        out[path] = {"layers": d["layers"], "total": d["total"]}
    assert out["numpy"] == out["auto"]
    conflicts = re.findall(r'"bank_conflict": (\d+)', json.dumps(out["auto"]))
    assert sum(int(c) for c in conflicts) > (1000 if overrides else 0)  # the bank model ran, with stalls


def test_units_are_the_list_of_pairs_they_stand_for():
    """banks.Units (what the samplers return): the (ax, ay) pairs of each unit, empty ones included, by index,
    slice and iteration; pickled whole; the stall rate of either form is the same on both paths."""
    import pickle

    ax, x_unit = np.array([5, 6, 7, 3]), np.array([0, 0, 2, 2])  # unit 2: 7 + 4 ≡ 3 + 4 (mod 4), a conflict
    ay, y_unit = np.array([3, 4, 9]), np.array([1, 2, 2])
    units = banks.Units.from_runs(ax, x_unit, ay, y_unit, 3)
    pairs = [([5, 6], []), ([], [3]), ([7, 3], [4, 9])]
    assert len(units) == 3 and [(a.tolist(), b.tolist()) for a, b in units] == pairs
    assert [(a.tolist(), b.tolist()) for a, b in (units[0], units[-1])] == [pairs[0], pairs[2]]
    assert [(a.tolist(), b.tolist()) for a, b in units[1:]] == pairs[1:]
    with pytest.raises(IndexError, match="unit 3 of 3"):
        units[3]
    again = pickle.loads(pickle.dumps(units))
    assert [(a.tolist(), b.tolist()) for a, b in again] == pairs
    as_list = [(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)) for a, b in pairs]
    for compiled in (False, KERNEL):
        for kw in (dict(depth=0), dict(depth=1, ports=1)):
            r = banks.stall_rate(units, f=2, i=1, banks=4, compiled=compiled, **kw)
            assert r == banks.stall_rate(as_list, f=2, i=1, banks=4, compiled=compiled, **kw) > 0
