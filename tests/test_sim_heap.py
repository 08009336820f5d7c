"""A large replay keeps freed memory in the C heap (hwsim.sim.heap): set once, only for large samples."""

from __future__ import annotations

import ctypes
import platform

import hwsim.sim.replay as replay_mod
from hwsim.arch import load_arch
from hwsim.sim import heap
from hwsim.trace.format import load
from hwsim.trace.synth import synthesize


def test_thresholds_are_set_on_glibc_and_nothing_happens_without_it(monkeypatch):
    heap.keep_freed_memory.cache_clear()
    assert heap.keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
    assert (heap.MMAP_THRESHOLD, heap.TRIM_THRESHOLD) == (2 ** 30, 2 ** 31)

    def no_libc(*a, **k):
        raise OSError("no libc")
    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    heap.keep_freed_memory.cache_clear()
    assert heap.keep_freed_memory() is False
    heap.keep_freed_memory.cache_clear()


def test_simulate_trace_sets_it_only_for_a_large_sample(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(heap, "keep_freed_memory", lambda: calls.append(1))
    trace, arch = load(synthesize(tmp_path / "t", model="lenet5", batch=2, seed=0)), load_arch("scnn")
    replay_mod.simulate_trace(trace, arch)
    assert calls == []                                   # small: eager sample, the allocator untouched
    monkeypatch.setattr(replay_mod, "LEAN_ELEMENTS", 0)
    replay_mod.simulate_trace(trace, arch)
    assert calls == [1]
