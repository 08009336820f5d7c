"""What a trace holds, independent of how it is stored: layer geometry, per-layer operands, level math.

:class:`LayerGeometry` and :class:`LayerSample` validate themselves on construction (errors name the
class and field), so the writer, the reader, synthetic traces and the simulator share one definition
of a well-formed layer. Numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LAYER_KINDS = ("linear", "conv2d", "conv1d", "conv_transpose1d", "conv_transpose2d", "matmul")
TRANSPOSED_KINDS = ("conv_transpose1d", "conv_transpose2d")
ROLES = ("weight", "activation")


class TraceError(ValueError):
    """A trace on disk is missing, truncated, corrupted or of another version.

    The message always names the file and the field that failed.
    """


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class LayerGeometry:
    """Shape of one GEMM-like call (format v2), in the (N, C, K, H, W, P, Q, R, S) notation of SCNN.

    ``kind`` (``LAYER_KINDS``) says how the fields read; :attr:`gemm` gives the GEMM (M, N, K, batch):

    * ``linear`` — a 1×1 convolution on a 1×1 image: H = W = P = Q = R = S = 1; leading dimensions of
      the input (batch × sequence) are folded into N (rows). Weight (K, C).
    * ``conv2d`` — input (N, C, H, W), output (N, K, P, Q), weight (K, C/groups, R, S).
    * ``conv1d`` — a conv2d with H = P = R = 1: input (N, C, W), output (N, K, Q), weight (K, C/groups, S).
    * ``conv_transpose2d`` / ``conv_transpose1d`` — input (N, C, H, W) / (N, C, W), output (N, K, P, Q) /
      (N, K, Q), weight (C, K/groups, R, S) (torch's layout); ``output_padding`` as torch's.
    * ``matmul`` — ``groups`` independent products (rows N) × (C/groups) @ (C/groups) × (K/groups):
      input (groups, N, C/groups), output (groups, N, K/groups), second operand (groups, C/groups, K/groups).

    ``padding`` is two integers (rows, columns; symmetric) or four (top, bottom, left, right) for
    asymmetric padding such as an even kernel's ``padding="same"``. ``w_role`` is the second operand's
    role: ``weight`` (a parameter) or ``activation`` (attention's Kᵀ and V: it streams from its producer
    and both backward GEMMs produce activation gradients). ``N`` is the number of examples (rows for
    linear/matmul) *stored* in the trace (see ``batch_size``).
    """

    name: str
    kind: str
    N: int
    C: int
    K: int
    H: int = 1
    W: int = 1
    P: int = 1
    Q: int = 1
    R: int = 1
    S: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    batch_size: int = 0  # examples in the real mini-batch (≥ N); 0 means "same as N"
    output_padding: tuple[int, int] = (0, 0)  # transposed convolutions only
    w_role: str = ""  # "" = the kind's default: "activation" for matmul, else "weight"

    def __post_init__(self) -> None:
        where = f"LayerGeometry({self.name!r})"
        if self.kind not in LAYER_KINDS:
            raise TraceError(f"{where}.kind: {self.kind!r} is not one of {LAYER_KINDS}")
        for f in ("N", "C", "K", "H", "W", "P", "Q", "R", "S", "groups"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise TraceError(f"{where}.{f}: must be an integer >= 1, got {v!r}")
        for f, lo, sizes in (("stride", 1, (2,)), ("padding", 0, (2, 4)), ("dilation", 1, (2,)),
                             ("output_padding", 0, (2,))):
            try:
                v = tuple(int(x) for x in getattr(self, f))
            except (TypeError, ValueError):
                raise TraceError(f"{where}.{f}: must be {' or '.join(map(str, sizes))} integers, "
                                 f"got {getattr(self, f)!r}") from None
            if len(v) not in sizes or min(v) < lo:
                raise TraceError(f"{where}.{f}: must be {' or '.join(map(str, sizes))} integers (>= {lo}), got {v!r}")
            if f == "padding" and len(v) == 4 and v[0] == v[1] and v[2] == v[3]:
                v = (v[0], v[2])  # symmetric: the v1 form
            object.__setattr__(self, f, v)
        role = self.w_role or ("activation" if self.kind == "matmul" else "weight")
        if role not in ROLES:
            raise TraceError(f"{where}.w_role: {self.w_role!r} is not one of {ROLES}")
        object.__setattr__(self, "w_role", role)
        if self.C % self.groups or self.K % self.groups:
            raise TraceError(f"{where}.groups: {self.groups} must divide C={self.C} and K={self.K}")
        if self.batch_size and self.batch_size < self.N:
            raise TraceError(f"{where}.batch_size: {self.batch_size} < N={self.N}")
        flat = ("H", "W", "P", "Q", "R", "S") if self.kind in ("linear", "matmul") else \
            ("H", "P", "R") if self.kind in ("conv1d", "conv_transpose1d") else ()
        for f in flat:
            if getattr(self, f) != 1:
                raise TraceError(f"{where}.{f}: must be 1 for kind {self.kind!r}, got {getattr(self, f)}")
        if self.kind not in TRANSPOSED_KINDS and self.output_padding != (0, 0):
            raise TraceError(f"{where}.output_padding: only transposed convolutions have one, got {self.output_padding}")
        t, b, le, ri = self.pads
        # Output size must follow from the convolution arithmetic.
        for out, inp, k, st, pd, dl, op, nm in (
            (self.P, self.H, self.R, self.stride[0], t + b, self.dilation[0], self.output_padding[0], "P"),
            (self.Q, self.W, self.S, self.stride[1], le + ri, self.dilation[1], self.output_padding[1], "Q"),
        ):
            if self.kind in TRANSPOSED_KINDS:
                want = (inp - 1) * st - pd + dl * (k - 1) + op + 1
            else:
                want = (inp + pd - dl * (k - 1) - 1) // st + 1
            if out != want:
                raise TraceError(f"{where}.{nm}: {out} does not match the conv arithmetic (expected {want})")

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Padding as (top, bottom, left, right)."""
        p = self.padding
        return (p[0], p[0], p[1], p[1]) if len(p) == 2 else (p[0], p[1], p[2], p[3])

    # shapes ------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.kind == "linear":
            return (self.N, self.C)
        if self.kind == "matmul":
            return (self.groups, self.N, self.C // self.groups)
        if self.kind in ("conv1d", "conv_transpose1d"):
            return (self.N, self.C, self.W)
        return (self.N, self.C, self.H, self.W)

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.kind == "linear":
            return (self.N, self.K)
        if self.kind == "matmul":
            return (self.groups, self.N, self.K // self.groups)
        if self.kind in ("conv1d", "conv_transpose1d"):
            return (self.N, self.K, self.Q)
        return (self.N, self.K, self.P, self.Q)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the second operand (a weight, or an activation for ``w_role="activation"``)."""
        g = self.groups
        return {"linear": (self.K, self.C), "matmul": (g, self.C // g, self.K // g),
                "conv2d": (self.K, self.C // g, self.R, self.S), "conv1d": (self.K, self.C // g, self.S),
                "conv_transpose2d": (self.C, self.K // g, self.R, self.S),
                "conv_transpose1d": (self.C, self.K // g, self.S)}[self.kind]

    @property
    def gemm(self) -> dict[str, int]:
        """The forward GEMM: ``batch`` independent (M × K) @ (K × N) products (groups of a conv = batch)."""
        g = self.groups
        if self.kind in TRANSPOSED_KINDS:  # each input pixel times the kernel, scattered (col2im)
            return {"M": self.N * self.H * self.W, "N": self.K // g * self.R * self.S, "K": self.C // g, "batch": g}
        return {"M": self.N * self.P * self.Q, "N": self.K // g, "K": self.C // g * self.R * self.S, "batch": g}

    @property
    def macs(self) -> int:
        """Dense MACs of one GEMM (forward, backward-data and backward-weight all have this many)."""
        d = self.gemm
        return d["M"] * d["N"] * d["K"] * d["batch"]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for f in ("stride", "padding", "dilation", "output_padding"):
            d[f] = list(d[f])
        if self.kind not in TRANSPOSED_KINDS:
            del d["output_padding"]
        if d["w_role"] == ("activation" if self.kind == "matmul" else "weight"):
            del d["w_role"]  # the kind's default
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any], *, where: str = "layer") -> LayerGeometry:
        if not isinstance(d, Mapping):
            raise TraceError(f"{where}: must be an object with fields {sorted(cls.__dataclass_fields__)}, got {d!r}")
        allowed = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - allowed
        if unknown:
            raise TraceError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        try:
            kw = dict(d)
            for f in ("stride", "padding", "dilation", "output_padding"):
                if f in kw:
                    kw[f] = tuple(kw[f])
            return cls(**kw)
        except (TypeError, ValueError) as e:  # TraceError from __post_init__ included: prefix the file/field
            raise TraceError(f"{where}: {e}") from None


# ----------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class LayerSample:
    """Operands of one layer in one sampled iteration, as the simulator needs them.

    ``dz_levels`` are the integers k of δ̃z = Δ·k (output shape); for ``method="none"``
    traces they are the float δz quantized at the recorded ``delta`` only for statistics —
    see ``traces/FORMAT.md``. ``a_mask`` is True where the layer input is non-zero.
    ``w_mask`` is optional: without it the simulator draws a seeded mask at ``w_density``.
    ``w_bits``/``a_bits`` are the operand bit-widths of the forward pass (32 = float).
    ``input_grad`` / ``weight_grad``: did training run this GEMM's backward-data (its input needed a
    gradient) / backward-weight (its second operand did) GEMM? ``None`` = not recorded (synthetic
    traces and captures before these keys): the simulator then assumes both, except backward-data
    of the first layer (:func:`hwsim.sim.replay.layer_grads`).
    """

    geometry: LayerGeometry
    delta: float
    dz_levels: np.ndarray
    a_mask: np.ndarray
    w_density: float = 1.0
    w_mask: np.ndarray | None = None
    w_bits: int = 32
    a_bits: int = 32
    input_grad: bool | None = None
    weight_grad: bool | None = None

    def __post_init__(self) -> None:
        g = self.geometry
        where = f"LayerSample({g.name!r})"
        if tuple(self.dz_levels.shape) != g.output_shape:
            raise TraceError(f"{where}.dz_levels: shape {self.dz_levels.shape} != output shape {g.output_shape}")
        if tuple(self.a_mask.shape) != g.input_shape:
            raise TraceError(f"{where}.a_mask: shape {self.a_mask.shape} != input shape {g.input_shape}")
        if self.w_mask is not None and tuple(self.w_mask.shape) != g.weight_shape:
            raise TraceError(f"{where}.w_mask: shape {self.w_mask.shape} != weight shape {g.weight_shape}")
        if not (0.0 <= self.w_density <= 1.0):
            raise TraceError(f"{where}.w_density: {self.w_density} not in [0, 1]")
        if not math.isfinite(self.delta) or self.delta < 0:
            raise TraceError(f"{where}.delta: {self.delta} must be finite and >= 0")
        if not np.issubdtype(self.dz_levels.dtype, np.integer):
            raise TraceError(f"{where}.dz_levels: dtype {self.dz_levels.dtype} must be an integer type")
        for f in ("input_grad", "weight_grad"):
            v = getattr(self, f)
            if v is not None and not isinstance(v, (bool, np.bool_)):
                raise TraceError(f"{where}.{f}: must be true, false or null, got {v!r}")
            if v is not None:
                object.__setattr__(self, f, bool(v))

    @property
    def dz_mask(self) -> np.ndarray:
        return self.dz_levels != 0

    @property
    def dz_density(self) -> float:
        return float(np.count_nonzero(self.dz_levels)) / max(1, self.dz_levels.size)

    @property
    def a_density(self) -> float:
        return float(np.count_nonzero(self.a_mask)) / max(1, self.a_mask.size)

    @property
    def max_bits(self) -> int:
        return bit_width(int(np.abs(self.dz_levels).max(initial=0)))


def bit_width(max_abs_level: int) -> int:
    """Sign + magnitude bits of a signed integer level: 1 + ⌈log2(max|k|+1)⌉ (0 for all-zero)."""
    if max_abs_level <= 0:
        return 0
    return 1 + int(max_abs_level).bit_length()


def level_histogram(levels: np.ndarray, max_bits: int = 16) -> list[int]:
    """Counts of non-zero levels by bit-width: entry b-2 counts levels needing b bits (b = 2..max_bits)."""
    mag = np.abs(levels[levels != 0]).astype(np.int64)
    if mag.size == 0:
        return [0] * (max_bits - 1)
    bits = 1 + np.floor(np.log2(mag)).astype(np.int64) + 1  # 1 sign + bit_length
    bits = np.minimum(bits, max_bits)
    return np.bincount(bits - 2, minlength=max_bits - 1).tolist()


def entropy_bits(mask: np.ndarray, levels_nz: np.ndarray) -> float:
    """Zeroth-order entropy (bits) of a sparse tensor: binary entropy of the mask + entropy of the non-zero levels."""
    n = mask.size
    nnz = int(np.count_nonzero(mask))
    bits = 0.0
    if 0 < nnz < n:
        p = nnz / n
        bits += n * (-p * math.log2(p) - (1 - p) * math.log2(1 - p))
    if nnz:
        _, counts = np.unique(levels_nz, return_counts=True)
        q = counts / nnz
        bits += float(-(counts * np.log2(q)).sum())
    return bits


def layer_stats(levels: np.ndarray) -> dict[str, Any]:
    """Per-iteration statistics of one layer's δ̃z levels: density, max bit-width, bit histogram."""
    mx = int(np.abs(levels).max(initial=0))
    return {
        "density": float(np.count_nonzero(levels)) / max(1, levels.size),
        "max_bits": bit_width(mx),
        "hist": level_histogram(levels),
    }


def coverage_line(cov: Mapping[str, Any] | None) -> str:
    """One line for logs and the CLI from a trace meta's ``coverage`` (see traces/FORMAT.md)."""
    if not cov:
        return "GEMM-MAC coverage: not recorded (synthetic or version-1 trace)"
    fr = ", ".join(f"{p.replace('_', '-')} {float(cov.get(p, 1.0)):.1%}"
                   for p in ("forward", "backward_data", "backward_weight"))
    line = f"GEMM-MAC coverage: {fr} ({cov.get('captured_macs', 0)} of {cov.get('total_macs', 0)} MACs)"
    missed = cov.get("missed") or []
    if missed:
        names = "; ".join(f"{m.get('op')} in {m.get('module') or '<model>'} ({m.get('why')})" for m in missed[:5])
        more = f" and {len(missed) - 5} more" if len(missed) > 5 else ""
        line += f"; NOT captured: {names}{more}"
    return line
