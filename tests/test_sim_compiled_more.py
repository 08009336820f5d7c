"""More tests of the simulator's compiled counting steps (hwsim.sim.compiled and hwsim.sim._bankkernel's
planar_counts / fillers entry points): edge shapes (one pixel, stride larger than the kernel, more tiles than rows,
empty batches, strided views) by hand on both paths, and bad buffers refused with a one-line error naming the
argument. Also the edge cases of simulate's foreign_waits / attribution_lines (hand-made records)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hwsim.commands.simulate import ATTRIBUTION_SHARE, attribution_lines, foreign_waits
from hwsim.sim import banks, compiled, work

PATHS = ["numpy", "auto"]


def _conv(x: np.ndarray, *, stride=(1, 1), padding=(0, 0), kernel=(1, 1), mode="down") -> work.ScatterConv:  # noqa: ANN001
    w = np.ones((2, x.shape[1], *kernel), bool)
    return work.ScatterConv(x=x, w=w, stride=stride, padding=padding, dilation=(1, 1), mode=mode)


@pytest.mark.parametrize("path", PATHS)
def test_one_pixel_plane(monkeypatch, path):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    x = np.array([True, False, True]).reshape(1, 3, 1, 1)  # three channels of one pixel
    got = compiled.planar_counts(_conv(x), 1, 1)
    assert got.shape == (1, 3, 1, 1) and got.dtype == np.int64
    assert got[0, :, 0, 0].tolist() == [1, 0, 1]


@pytest.mark.parametrize("path", PATHS)
def test_stride_larger_than_the_kernel_splits_the_plane_into_nine_phases(monkeypatch, path):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    x = np.ones((1, 1, 4, 4), bool)
    x[0, 0, 0, 0] = False
    # stride 3, 1×1 kernel, no padding: phase (a, b) reads rows a::3 (sizes 2, 1, 1) and cols b::3 (2, 1, 1); the
    # one zero at (0, 0) is in phase (0, 0)
    got = compiled.planar_counts(_conv(x, stride=(3, 3)), 1, 1)[0, 0, :, 0]
    assert got.tolist() == [3, 2, 2, 2, 1, 1, 2, 1, 1]
    # padding 1: phase p starts at row (p − 1) mod 3 = 2, 0, 1 (sizes 1, 2, 1); the zero is now in phase (1, 1)
    got = compiled.planar_counts(_conv(x, stride=(3, 3), padding=(1, 1)), 1, 1)[0, 0, :, 0]
    assert got.tolist() == [1, 2, 1, 2, 3, 2, 1, 2, 1]
    assert got.sum() == 15


@pytest.mark.parametrize("path", PATHS)
def test_more_tile_rows_than_pixel_rows_leave_empty_tiles(monkeypatch, path):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    x = np.ones((1, 1, 2, 3), bool)
    assert work.split_edges(2, 3).tolist() == [0, 0, 1, 2]  # the first tile row holds no pixel row
    got = compiled.planar_counts(_conv(x), 3, 1)[0, 0, 0]
    assert got.tolist() == [0, 3, 3]


@pytest.mark.parametrize("path", PATHS)
def test_a_transposed_conv_reads_every_row_in_its_one_phase(monkeypatch, path):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    x = np.ones((1, 1, 3, 3), bool)
    x[0, 0, 1, 2] = False
    # mode "up" (backward-data): one phase whatever the stride, and every row and column of δ̃z is streamed
    got = compiled.planar_counts(_conv(x, stride=(2, 2), kernel=(3, 3), mode="up"), 1, 1)
    assert got.shape == (1, 1, 1, 1) and int(got[0, 0, 0, 0]) == 8
    got = compiled.planar_counts(_conv(x, stride=(2, 2), kernel=(3, 3), mode="up"), 3, 3)[0, 0, 0]
    assert got.tolist() == [1, 1, 1, 1, 1, 0, 1, 1, 1]


@pytest.mark.parametrize("path", PATHS)
def test_an_empty_batch_gives_an_empty_count(monkeypatch, path):
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
    got = compiled.planar_counts(_conv(np.zeros((0, 2, 3, 3), bool), stride=(2, 2)), 2, 2)
    assert got.shape == (0, 2, 4, 4)


def test_a_strided_view_counts_as_its_contiguous_copy(monkeypatch):
    rng = np.random.default_rng(3)
    big = rng.random((2, 3, 7, 12)) < 0.4
    for view in (big[:, :, :, ::2], big[:, ::-1, 1:, :], big[:, :, ::3, 5:]):
        assert not view.flags.c_contiguous
        want = work.planar_counts(_conv(np.ascontiguousarray(view), stride=(2, 1)), 2, 3)
        for path in PATHS:
            monkeypatch.setenv(banks.SIM_KERNEL_ENV, path)
            assert np.array_equal(compiled.planar_counts(_conv(view, stride=(2, 1)), 2, 3), want), path


def _planar_args():
    x = np.zeros((1, 1, 4, 4), bool)
    e = np.array([0, 2, 4], np.int64)
    return [x, e, e.copy(), np.array([[0, 0]], np.int64), 1, 1, np.empty((1, 1, 1, 4), np.int64)]


@pytest.mark.parametrize("at,bad,err,msg", [
    (0, np.zeros((1, 1, 4, 4), np.int32), TypeError, "x must be a 4-D array of 1-byte items"),
    (0, np.zeros((1, 4, 4), bool), TypeError, "x must be a 4-D array of 1-byte items"),
    (1, np.array([0, 2, 4], np.int32), TypeError, "eh must be a C-contiguous int64 buffer"),
    (1, np.array([0, 2, 3], np.int64), ValueError, "edges from 0 to the plane's size"),
    (4, 0, ValueError, "steps >= 1"),
    (6, np.empty((1, 1, 1, 3), np.int64), ValueError, "an output of \\(N, C, phases, tiles\\)"),
    (6, np.empty((1, 1, 1, 4), np.int32), TypeError, "out must be a C-contiguous int64 buffer"),
])
def test_planar_counts_refuses_bad_buffers_in_one_line(at, bad, err, msg):
    args = _planar_args()
    args[at] = bad
    with pytest.raises(err, match=msg) as e:
        banks.compiled().planar_counts(*args)
    assert "\n" not in str(e.value) and str(e.value).startswith("_bankkernel: ")


def test_planar_counts_writes_the_counts_into_out_by_hand():
    args = _planar_args()
    args[0][0, 0, 0, :] = True  # the first row: 2 in each of the two top tiles
    args[0][0, 0, 3, 3] = True  # bottom-right tile
    assert banks.compiled().planar_counts(*args) is None
    assert args[6][0, 0, 0].tolist() == [2, 2, 0, 1]


def test_fillers_bad_inputs_and_edges():
    ext = banks.compiled()
    with pytest.raises(ValueError, match=r"\(got 3 bytes, n=25, rl=3\)$"):
        ext.fillers(np.zeros(3, np.uint8), 25, 3)  # 25 bits need 4 bytes
    with pytest.raises(ValueError, match="3 <= rl <= 62"):
        ext.fillers(np.zeros(3, np.uint8), 24, 63)
    with pytest.raises(ValueError, match="not C-contiguous"):
        ext.fillers(np.zeros(8, np.uint8)[::2], 32, 3)
    with pytest.raises(ValueError, match=r"^_bankkernel: fillers needs bytes \(uint8\), got 8-byte items$"):
        ext.fillers(np.zeros(3, np.int64), 192, 3)  # 192 bits are 24 bytes: the size fits, the item type does not
    assert ext.fillers(np.zeros(0, np.uint8), 0, 3) == 0
    assert ext.fillers(np.zeros(3, np.uint8), 24, 3) == 3  # one run of 24 zeros: ⌊24 / 8⌋
    assert ext.fillers(np.zeros(3, np.uint8), 17, 3) == 2  # only the first 17 bits count: ⌊17 / 8⌋
    # bit 0 set (MSB first), then 23 zeros: ⌊0 / 8⌋ + ⌊23 / 8⌋
    assert ext.fillers(np.array([0x80, 0, 0], np.uint8), 24, 3) == 2
    assert ext.fillers(np.array([0xFF, 0xFF, 0xFF], np.uint8), 24, 3) == 0


def test_fillers_step_aside_when_the_kernel_is_switched_off(monkeypatch):
    packed = np.zeros(2, np.uint8)
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, "numpy")
    assert compiled.fillers(packed, 16, 3) is None
    monkeypatch.setenv(banks.SIM_KERNEL_ENV, "auto")
    assert compiled.fillers(packed, 16, 3) == 2


# ----------------------------------------------------------------------------- simulate's attribution footnote

def _lp(name: str, pass_name: str, stall: int, foreign: int) -> SimpleNamespace:
    sparse = SimpleNamespace(cycle_breakdown=SimpleNamespace(memory_stall=stall, memory_stall_foreign=foreign))
    return SimpleNamespace(name=name, pass_name=pass_name, sparse=sparse)


def _result(layers, *, total=1000, memory=None) -> SimpleNamespace:  # noqa: ANN001
    mem = {"schedule": "iteration", "dram_bytes_per_cycle": 16.0} if memory is None else memory
    return SimpleNamespace(arch={"params": {"memory": mem}}, layers=layers,
                           total=lambda variant: SimpleNamespace(cycles=total))


def test_foreign_waits_skip_passes_without_any_and_min_cycles_is_inclusive():
    layers = [_lp("a", "update", 40, 40), _lp("b", "forward", 50, 50), _lp("c", "forward", 9, 0)]
    assert foreign_waits(layers) == [("b", "forward", 50, 50), ("a", "update", 40, 40)]
    assert foreign_waits(layers, min_cycles=40) == [("b", "forward", 50, 50), ("a", "update", 40, 40)]
    assert foreign_waits(layers, min_cycles=40.5) == [("b", "forward", 50, 50)]


def test_foreign_waits_rank_by_the_foreign_share_not_the_stall():
    layers = [_lp("y", "forward", 30, 20), _lp("x", "forward", 90, 20), _lp("z", "forward", 31, 21)]
    assert [r[0] for r in foreign_waits(layers)] == ["z", "y", "x"]  # ties keep the layer order


def test_attribution_lines_edge_cases():
    layers = [_lp("a", "backward_data", 500, 500), _lp("b", "mystery_pass", 400, 400), _lp("c", "forward", 300, 100)]
    assert attribution_lines(_result(layers, total=0)) == []  # nothing simulated
    assert attribution_lines(_result(layers, memory={})) == []  # no schedule: isolated
    assert ATTRIBUTION_SHARE == 0.01  # 1 % of 10,000 = 100 cycles: all three passes qualify below
    lines = attribution_lines(_result(layers, total=10_000), most=2, scope="the mean iteration")
    assert lines[0].startswith("per-pass attribution (the mean iteration, memory.schedule: iteration)")
    assert len(lines) == 4  # two header lines and the two largest of the three
    assert lines[3] == ("  b mystery_pass: 400 memory-stall cycles, of which 400 (4.0% of the "
                        "iteration's cycles) waiting on other passes' transfers")  # an unknown pass keeps its name
    # c's 100 foreign cycles are exactly the 1 % threshold (inclusive)
    assert attribution_lines(_result(layers, total=10_000))[-1].startswith(
        "  c fwd: 300 memory-stall cycles, of which 100 (1.0% ")
    assert len(attribution_lines(_result(layers, total=10_001))) == 4  # 100 < 100.01: c drops out
