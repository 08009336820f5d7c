"""hwsim.sim.energy's per-arch price cache: computed once per Arch object, never shared between two archs, bounded."""

from __future__ import annotations

from hwsim.arch import load_arch
from hwsim.sim import energy


def test_per_arch_computes_once_per_arch_object_and_never_mixes_two():
    calls: list[str] = []

    def compute(arch):
        calls.append(arch.name)
        return len(calls)

    cache: dict = {}
    a, b = load_arch("scnn"), load_arch("systolic32")
    assert energy._per_arch(cache, a, compute) == 1
    assert energy._per_arch(cache, a, compute) == 1          # the same object: no second computation
    assert energy._per_arch(cache, b, compute) == 2          # another arch: its own value
    a2 = load_arch("scnn")                                    # an equal arch, another object: computed for it
    assert energy._per_arch(cache, a2, compute) == 3
    assert calls == ["scnn", "systolic32", "scnn"]


def test_per_arch_cache_starts_over_past_64_archs():
    cache: dict = {}
    archs = [load_arch("scnn", {"clock_ghz": 1.0 + i / 100}) for i in range(65)]
    for x in archs:
        energy._per_arch(cache, x, lambda arch: arch.clock_ghz)
    assert len(cache) == 1 and cache[id(archs[-1])][1] == archs[-1].clock_ghz


def test_prices_of_one_arch_are_its_own():
    scnn, sys32 = load_arch("scnn"), load_arch("systolic32_os")
    assert energy._rates(scnn) is energy._rates(scnn)
    assert energy._rates(scnn).dram == scnn.energy.dram_pj_per_64b
    assert energy._leakage_mw(sys32) != energy._leakage_mw(scnn)
