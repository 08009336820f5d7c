"""Accumulator bank conflicts: a per-bank queue model run on real product coordinates.

Every cycle a PE's F×I multipliers emit up to F·I products; each is routed by a crossbar to
the accumulator bank that holds its output coordinate, ``bank = address mod B`` with the
output tile stored row-major (channel, row, column) — SCNN's interleave. A bank retires one
product per cycle and buffers up to ``D`` more in its queue. Two products of one cycle for
the same output pixel (e.g. neighbouring weights × neighbouring activations of a 3×3
convolution) always collide, so conflicts depend on the *structure* of the masks, not only on
their density; hashing alone would miss that.

Model (per sampled unit of work, vectorised over units and banks, sequential over cycles):

    q_b   backlog of bank b;  L_b(t)  products for bank b issued in cycle t
    stall(t) = max_b max(0, q_b + L_b(t) − (D + 1), ⌈L_b(t) / W⌉ − 1)   # cycles the array waits before issuing
    q_b ← max(q_b − stall(t), 0);  q_b ← max(q_b + L_b(t) − 1, 0)

The products are issued in the dataflow's order (each F-vector of weights is held while the
I-vectors of activations stream past). The stall rate (stall cycles per multiplier cycle) is
measured on a seeded sample of units (reduction channel × output group × PE tile) taken from
the real masks and applied to every tile's multiplier cycles (rounded up). The sample caps the
cost at a few milliseconds per layer and pass.

Why the SCNN-like defaults (B = 2·F·I = 32 banks, D = 4) give ≈ 0 conflicts (checked 2026-11-23
on the LeNet-5 / MLP demo traces: carrying the queues across consecutive units and lifting the
96-cycle cap change the rate by < 0.01, so neither the sampling nor the truncation hides stalls):
16 products a cycle over 32 banks load a bank 0.5 per cycle on average, so queues drain, and the
bursts the dataflow makes are short — neighbouring taps × neighbouring pixels of a K×K kernel put
≤ 3–4 products of one cycle on one output (bank); a 1×1 kernel on a tile whose plane is a multiple
of B puts the F products of one activation in one bank (row-major channel stride ≡ 0 mod B). Both
are ≤ D + 1 = 5 and the next burst to that bank comes cycles later. Without the queue (D = 0) the
same streams stall 0.4–2 cycles per multiplier cycle on LeNet-5's conv layers and 3 on the 1×1
pathology; D = 1 still costs 4–110 % (``tests/test_sim_mapping.py``). So the conflict share is set
by ``pe.bank_queue_depth`` — an hwsim assumption, SCNN gives none — and by how many products of one
cycle a bank accepts, W = ``pe.bank_ports`` (``pe.bank_queue_write_ports``; default D + 1, at most F·I:
the queue model before issue 18, whose crossbar outputs per bank are now charged in area). W = 1 is a
plain crossbar with one output per bank; a crossbar that delivers one product per bank per cycle with
input-side FIFOs would be a different (not modelled) design.

Two implementations give the same integers: an optional C extension ``hwsim.sim._bankkernel`` (``pip install``
builds it where a C compiler is present; in a checkout ``python setup.py build_ext --inplace``), which runs the
loads and the queues unit by unit without building the (cycles, units, banks) array, and the numpy code below, used
when the extension is not built or the environment variable ``HWSIM_SIM_KERNEL=numpy`` is set (default ``auto``).
:func:`stall_rate` and :func:`load_stalls` take ``compiled`` (None: as the environment says).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwsim._native import SWITCHES, env_choice, optional_extension

MAX_UNITS = 24        # sampled units of work per layer and pass
MAX_CYCLES = 96       # multiplier cycles simulated per unit

SIM_KERNEL_ENV = "HWSIM_SIM_KERNEL"
SIM_KERNELS = SWITCHES[SIM_KERNEL_ENV]  # auto (default), numpy

BANK_KERNEL_API = 2  # the compiled module's interface version (BANK_KERNEL_API in _bankkernel.c)
_ext, IMPORT_ERROR = optional_extension("hwsim.sim._bankkernel", BANK_KERNEL_API)  # (None, why): not built / stale


class Units(Sequence):
    """Sampled units of work as flat address parts: unit u's weight parts are ``ax[ax_off[u]:ax_off[u + 1]]``, its
    activation parts ``ay[ay_off[u]:ay_off[u + 1]]`` (int64; offsets from 0, ``units + 1`` of each).

    A sequence of ``(ax, ay)`` pairs (views), like the list of pairs it stands for; the compiled model reads the flat
    arrays as they are (:func:`unit_stalls`)."""

    __slots__ = ("ax", "ax_off", "ay", "ay_off")

    def __init__(self, ax: np.ndarray, ax_off: np.ndarray, ay: np.ndarray, ay_off: np.ndarray) -> None:
        if ax_off.size != ay_off.size or ax_off.size == 0:
            raise ValueError(f"Units: {ax_off.size} weight and {ay_off.size} activation offsets; need units + 1 of each")
        self.ax, self.ax_off, self.ay, self.ay_off = ax, ax_off, ay, ay_off

    @classmethod
    def from_runs(cls, ax: np.ndarray, x_unit: np.ndarray, ay: np.ndarray, y_unit: np.ndarray, units: int) -> Units:
        """Units from address parts tagged with their unit (``x_unit``/``y_unit`` sorted, 0 ≤ unit < ``units``;
        a unit without any is empty)."""
        ax_off = np.zeros(units + 1, dtype=np.int64)
        ay_off = np.zeros(units + 1, dtype=np.int64)
        np.cumsum(np.bincount(x_unit, minlength=units), out=ax_off[1:])
        np.cumsum(np.bincount(y_unit, minlength=units), out=ay_off[1:])
        return cls(ax, ax_off, ay, ay_off)

    def __len__(self) -> int:
        return self.ax_off.size - 1

    def __getitem__(self, u: int | slice) -> tuple[np.ndarray, np.ndarray] | list:  # an int: one pair; a slice: a list
        n = len(self)
        if isinstance(u, slice):
            return [self[k] for k in range(*u.indices(n))]
        u = int(u) + n if u < 0 else int(u)
        if not 0 <= u < n:
            raise IndexError(f"unit {u} of {n}")
        xo, yo = self.ax_off, self.ay_off
        return self.ax[xo[u]:xo[u + 1]], self.ay[yo[u]:yo[u + 1]]

    def __iter__(self):
        xo, yo, ax, ay = self.ax_off.tolist(), self.ay_off.tolist(), self.ax, self.ay
        return ((ax[xo[u]:xo[u + 1]], ay[yo[u]:yo[u + 1]]) for u in range(len(xo) - 1))

    def __reduce__(self):
        return Units, (self.ax, self.ax_off, self.ay, self.ay_off)


def kernel_available() -> bool:
    """Is the compiled bank model (``hwsim.sim._bankkernel``) built and importable here?"""
    return _ext is not None


def compiled():  # noqa: ANN201 - the extension module (no stub to name its type)
    """The compiled bank model itself (``hwsim.sim._bankkernel``), for callers that checked :func:`compiled_on`."""
    if _ext is None:
        raise RuntimeError(f"hwsim.sim._bankkernel is not built here ({IMPORT_ERROR})")
    return _ext


def kernel_from_env() -> str:
    """``HWSIM_SIM_KERNEL``: ``auto`` (the compiled model where it is built, else numpy) or ``numpy``."""
    return env_choice(SIM_KERNEL_ENV, SIM_KERNELS)


def compiled_on(compiled: bool | None = None) -> bool:
    """Will the bank model run compiled? ``compiled`` None: unless ``HWSIM_SIM_KERNEL`` says ``numpy``."""
    on = kernel_from_env() == "auto" if compiled is None else compiled
    return on and _ext is not None


def unit_bank_loads(ax: np.ndarray, ay: np.ndarray, *, f: int, i: int, banks: int, max_cycles: int) -> np.ndarray:
    """Per-cycle product counts per bank, (cycles, banks), for one unit.

    ``ax``/``ay`` are the separable address parts of the non-zero weights / activations: the
    product of weight j and activation l goes to ``(ax[j] + ay[l]) mod banks``.
    """
    nwc, nac = -(-ax.size // f), -(-ay.size // i)
    if nwc == 0 or nac == 0:
        return np.zeros((0, banks), dtype=np.int64)
    axp = np.full(nwc * f, -1, dtype=np.int64)
    axp[:ax.size] = ax
    ayp = np.full(nac * i, -1, dtype=np.int64)
    ayp[:ay.size] = ay
    vx = (axp >= 0).reshape(nwc, f)
    vy = (ayp >= 0).reshape(nac, i)
    addr = axp.reshape(nwc, 1, f, 1) + ayp.reshape(1, nac, 1, i)  # cycle order: weight chunk outer, act chunk inner
    valid = vx.reshape(nwc, 1, f, 1) & vy.reshape(1, nac, 1, i)
    ncyc = min(nwc * nac, max_cycles)
    addr = addr.reshape(nwc * nac, f * i)[:ncyc]
    valid = valid.reshape(nwc * nac, f * i)[:ncyc]
    cyc = np.broadcast_to(np.arange(ncyc)[:, None], addr.shape)
    idx = cyc[valid] * banks + np.mod(addr[valid], banks)
    return np.bincount(idx, minlength=ncyc * banks).reshape(ncyc, banks)


def queue_stalls(loads: Sequence[np.ndarray], *, depth: int, ports: int = 0) -> tuple[int, int]:
    """Run the finite bank-queue model over units (vectorised across units): (stall cycles, cycles)."""
    loads = [x for x in loads if x.shape[0]]
    if not loads:
        return 0, 0
    t = max(x.shape[0] for x in loads)
    banks = loads[0].shape[1]
    stack = np.zeros((len(loads), t, banks), dtype=np.int64)
    for u, x in enumerate(loads):
        stack[u, :x.shape[0]] = x
    q = np.zeros((len(loads), banks), dtype=np.int64)
    stalls = np.zeros(len(loads), dtype=np.int64)
    cap = depth + 1
    for c in range(t):
        lc = stack[:, c]
        s = _stall(q, lc, cap, ports)
        stalls += s
        q = _drain(q, lc, s, ports)
    return int(stalls.sum()), int(sum(x.shape[0] for x in loads))


def _stall(q: np.ndarray, lc: np.ndarray, cap: int, ports: int) -> np.ndarray:
    """Cycles each unit waits before issuing the loads ``lc``: queue overflow, or more products for one bank than its
    ``ports`` (0 = no port limit) can take in one cycle."""
    s = np.maximum((q + lc).max(axis=1) - cap, 0)
    if ports:
        s = np.maximum(s, (-(-lc // ports) - 1).max(axis=1))
    return s


def _drain(q: np.ndarray, lc: np.ndarray, s: np.ndarray, ports: int) -> np.ndarray:
    """Backlog after a cycle that waited ``s`` cycles and issued ``lc``. Without a port limit (the model before
    issue 18) the wait drains the old backlog and the new products then enter; with one, the products reach the
    bank ``ports`` a cycle while it retires one a cycle through all s + 1 cycles."""
    if ports:
        return np.maximum(q + lc - 1 - s[:, None], 0)
    return np.maximum(np.maximum(q - s[:, None], 0) + lc - 1, 0)


def stall_rate(units: Sequence[tuple[np.ndarray, np.ndarray]], *, f: int, i: int, banks: int, depth: int,
               ports: int = 0, max_cycles: int = MAX_CYCLES, compiled: bool | None = None) -> float:
    """Stall cycles per multiplier cycle over sampled units ``[(ax, ay), ...]`` (0 if no work).

    Equal to running :func:`unit_bank_loads` per unit and :func:`queue_stalls` on them; the per-cycle
    bank loads of all units are built in one vectorised pass (:func:`cycle_loads`), or, compiled
    (:func:`compiled_on`), counted and queued unit by unit in C (:func:`unit_stalls`): the same integers.
    """
    if compiled_on(compiled):
        stalls, cycles = unit_stalls(units, f=f, i=i, banks=banks, depth=depth, ports=ports, max_cycles=max_cycles)
        return stalls / cycles if cycles else 0.0
    loads, cycles = cycle_loads(units, f=f, i=i, banks=banks, max_cycles=max_cycles)
    if not cycles:
        return 0.0
    return load_stalls(loads, depth=depth, ports=ports, compiled=False) / cycles


def unit_stalls(units: Sequence[tuple[np.ndarray, np.ndarray]], *, f: int, i: int, banks: int, depth: int,
                ports: int = 0, max_cycles: int = MAX_CYCLES) -> tuple[int, int]:
    """(stall cycles, multiplier cycles) of the sampled ``units`` by the compiled model (needs the extension).

    The numpy path's integers: :func:`cycle_loads` then :func:`load_stalls`, every unit run for the longest
    unit's cycles (zero loads past its own).
    """
    nu = len(units)
    if nu == 0:
        return 0, 0
    if isinstance(units, Units):
        return _ext.stalls(np.ascontiguousarray(units.ax, dtype=np.int64), units.ax_off,
                           np.ascontiguousarray(units.ay, dtype=np.int64), units.ay_off,
                           f, i, banks, depth, ports, max_cycles)
    xs = [ax for ax, _ in units]
    ys = [ay for _, ay in units]
    ax_off = np.zeros(nu + 1, dtype=np.int64)
    ay_off = np.zeros(nu + 1, dtype=np.int64)
    np.cumsum([x.size for x in xs], out=ax_off[1:])
    np.cumsum([y.size for y in ys], out=ay_off[1:])
    ax = np.concatenate(xs).astype(np.int64, copy=False)
    ay = np.concatenate(ys).astype(np.int64, copy=False)
    return _ext.stalls(ax, ax_off, ay, ay_off, f, i, banks, depth, ports, max_cycles)


def load_stalls(loads: np.ndarray, *, depth: int, ports: int = 0, compiled: bool | None = None) -> int:
    """Stall cycles of the queue model (module doc) over every unit of (cycles, units, banks) ``loads``.

    Until a unit first stalls, its backlogs follow q ← max(q + L − 1, 0), two array operations a cycle; and it
    stalls in cycle t exactly when that path's backlog after t exceeds D (q_t + L_t > D + 1), or, with a port
    limit W, when L_t > W. A unit that never does never stalls (0 cycles). The full model then runs only for
    the units that stall, from the earliest first stall on, with that cycle's backlogs: the same result as
    running it over every cycle of every unit, for less when nothing stalls (the SCNN-like default).
    """
    nt, nu, nb = loads.shape
    if nu == 0 or nt == 0:
        return 0
    if compiled_on(compiled):
        return _ext.queue(np.ascontiguousarray(loads, dtype=np.int64), nu, nb, depth, ports)
    after = loads - 1                                                   # becomes q_{t+1}, cycle by cycle
    q = np.zeros((nu, nb), dtype=after.dtype)
    for c in range(nt):
        np.add(q, after[c], out=q)
        np.maximum(q, 0, out=q)
        after[c] = q
    over = (after > depth).any(axis=2)                                  # (cycles, units): cycle t would stall
    if ports:
        over |= (loads > ports).any(axis=2)
    bad = over.any(axis=0)
    if not bad.any():
        return 0
    c0 = int(over[:, bad].argmax(axis=0).min())
    sub = loads[:, bad]
    q = after[c0 - 1, bad] if c0 else np.zeros((sub.shape[1], nb), dtype=after.dtype)
    cap = depth + 1
    stalls = np.zeros(sub.shape[1], dtype=np.int64)
    for c in range(c0, nt):
        lc = sub[c]
        st = _stall(q, lc, cap, ports)
        stalls += st
        q = _drain(q, lc, st, ports)
    return int(stalls.sum())


def bank_load_stack(units: Sequence[tuple[np.ndarray, np.ndarray]], *, f: int, i: int, banks: int,
                    max_cycles: int) -> tuple[np.ndarray, int]:
    """(units, cycles, banks) product counts of every unit (zero rows past a unit's cycles), and Σ cycles.

    Row u, cycle t is :func:`unit_bank_loads` of unit u at t: weight chunk ⌊t / n_act_chunks⌋ × activation
    chunk t mod n_act_chunks, each product to bank (ax + ay) mod B. A view of :func:`cycle_loads`.
    """
    loads, cycles = cycle_loads(units, f=f, i=i, banks=banks, max_cycles=max_cycles)
    return loads.transpose(1, 0, 2), cycles


def cycle_loads(units: Sequence[tuple[np.ndarray, np.ndarray]], *, f: int, i: int, banks: int,
                max_cycles: int) -> tuple[np.ndarray, int]:
    """:func:`bank_load_stack` cycle-major: (cycles, units, banks) product counts (the queue model's order), Σ cycles."""
    nu = len(units)
    if isinstance(units, Units):
        lx, ly = np.diff(units.ax_off), np.diff(units.ay_off)
    else:
        lx = np.array([ax.size for ax, _ in units], dtype=np.int64)
        ly = np.array([ay.size for _, ay in units], dtype=np.int64)
    nwc, nac = -(-lx // f), -(-ly // i)
    ncyc = np.minimum(nwc * nac, max_cycles)
    t_max = int(ncyc.max(initial=0))
    if nu == 0 or t_max == 0:
        return np.zeros((0, nu, banks), dtype=np.int64), 0
    axp = np.full((nu, int(nwc.max()) * f), -1, dtype=np.int64)
    ayp = np.full((nu, int(nac.max()) * i), -1, dtype=np.int64)
    for u, (ax, ay) in enumerate(units):
        axp[u, :ax.size] = ax
        ayp[u, :ay.size] = ay
    uu = np.repeat(np.arange(nu), ncyc)                                  # one row per (unit, cycle)
    tt = np.arange(uu.size) - np.repeat(np.cumsum(ncyc) - ncyc, ncyc)
    wc, ac = tt // nac[uu], tt % nac[uu]
    wx = axp[uu[:, None], wc[:, None] * f + np.arange(f)]                # (rows, f)
    wy = ayp[uu[:, None], ac[:, None] * i + np.arange(i)]                # (rows, i)
    addr = wx[:, :, None] + wy[:, None, :]
    valid = (wx[:, :, None] >= 0) & (wy[:, None, :] >= 0)
    row = np.broadcast_to((tt * nu + uu)[:, None, None], addr.shape)     # the (cycle, unit) of each row
    counts = np.bincount(row[valid] * banks + np.mod(addr[valid], banks), minlength=t_max * nu * banks)
    return counts.reshape(t_max, nu, banks), int(ncyc.sum())


def conflict_cycles(mult_cycles: np.ndarray, rate: float) -> np.ndarray:
    """Per-tile conflict stalls = ⌈rate × multiplier cycles⌉ (0 when the rate is 0)."""
    if rate <= 0:
        return np.zeros_like(mult_cycles)
    return np.ceil(mult_cycles * rate - 1e-9).astype(np.int64)
