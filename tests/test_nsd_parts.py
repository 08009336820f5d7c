"""A δz with several producers (hwsim.sim.nsd_unit, ``quantizer.overlap: producer``): GPT-2's c_attn output Q | K | V
gets δQ from QKᵀ's backward-data but δK and δV from the backward-weight of QKᵀ and P·V. The first NSD pass streams
behind each part's producer, in execution order (a fluid queue: backlog = max(0, backlog + share − producer cycles)),
and what is left after the last producer is exposed.

Numbers by hand from arch_configs/scnn.yaml (64 lanes: one pass over e elements = ⌈e / 64⌉ cycles; σ current = a
std pass that may hide + a quantize pass that never does); tests/test_nsd_design.py pins those fields.
"""

from __future__ import annotations

from hwsim.arch import load_arch
from hwsim.sim import nsd_unit
from hwsim.sim.residency import operand_sources
from hwsim.trace.schema import LayerGeometry


def _arch():
    return load_arch("scnn")


def test_one_part_is_the_single_producer_rule():
    # 960 elements: 15 cycles a pass; the producer runs 7: 7 of the std pass hide (as producer_cycles=7)
    one = nsd_unit.nsd_cost(960, _arch(), parts=[(960, 7)])
    assert one == nsd_unit.nsd_cost(960, _arch(), producer_cycles=7)
    assert (one.hidden_cycles, one.exposed_cycles) == (7, 15 + 15 - 7)


def test_a_backlog_left_by_one_producer_drains_behind_the_next():
    # three parts of 320 elements: 5 cycles of the 15-cycle std pass each. Producers 2, 10, 10 cycles:
    # backlog 5 − 2 = 3, then max(0, 3 + 5 − 10) = 0, then 0: all 15 hide; exposed = the quantize pass, 15.
    c = nsd_unit.nsd_cost(960, _arch(), parts=[(320, 2), (320, 10), (320, 10)])
    assert (c.hidden_cycles, c.exposed_cycles) == (15, 15)


def test_the_last_part_cannot_hide_behind_an_earlier_producer():
    # the same producers in the other order, 10, 10, 2: backlog 0, 0, then 3 left when the last producer ends:
    # 12 hide, exposed 3 + 15 = 18 — though the producers' 22 cycles exceed the pass's 15.
    c = nsd_unit.nsd_cost(960, _arch(), parts=[(320, 10), (320, 10), (320, 2)])
    assert (c.hidden_cycles, c.exposed_cycles) == (12, 18)


# c_attn (linear, δz 64 × 48 = 3072 elements: 48 cycles a pass, no spill: ⌈3072/64⌉ · 3 B = 144 B of 10 KB per PE),
# then QKᵀ (K operand 1 × 64 × 16 = 1024 elements) and P·V (V operand 1 × 16 × 64 = 1024), then c_proj.
# δQ = 3072 − 1024 − 1024 = 1024. Each part: 16 cycles of the std pass.
GPT = {"c_attn": LayerGeometry(name="c_attn", kind="linear", N=64, C=4, K=48),
       "qk": LayerGeometry(name="qk", kind="matmul", N=64, C=64, K=16),
       "pv": LayerGeometry(name="pv", kind="matmul", N=64, C=16, K=64),
       "c_proj": LayerGeometry(name="c_proj", kind="linear", N=64, C=64, K=4)}


def _cycles(pv_bw, qk_bd, qk_bw):
    return {("c_proj", "backward_data"): 9, ("c_proj", "backward_weight"): 9, ("pv", "backward_data"): 3,
            ("pv", "backward_weight"): pv_bw, ("qk", "backward_data"): qk_bd, ("qk", "backward_weight"): qk_bw,
            ("c_attn", "backward_weight"): 50}


def test_the_parts_of_c_attns_dz_and_their_producers_in_execution_order():
    src = operand_sources(list(GPT.values()))
    assert src == [None, 0, 0, None]
    cyc = _cycles(20, 4, 30)
    # backward runs pv (backward-data, backward-weight) before qk: δV behind P·V's backward-weight, then δQ behind
    # QKᵀ's backward-data, then δK behind QKᵀ's backward-weight
    assert nsd_unit.producer_parts(0, 3072, cyc, GPT, src) == [(1024, 20), (1024, 4), (1024, 30)]
    # QKᵀ's own δz (δS) has one producer, P·V's backward-data (its output 1 × 64 × 16 = 1024 elements)
    assert nsd_unit.producer_parts(1, 1024, cyc, GPT, src) == [(1024, 3)]
    assert nsd_unit.producer_parts(3, 256, cyc, GPT, src) is None           # the last layer: the loss
    no_above = {k: v for k, v in cyc.items() if k != ("qk", "backward_data")}
    assert nsd_unit.producer_parts(0, 3072, no_above, GPT, src) is None      # the layer above not replayed


def test_c_attn_is_booked_behind_all_three_producers():
    # pv_bw 20, qk_bd 4, qk_bw 30: backlog 0, 12, max(0, 12 + 16 − 30) = 0: the 48-cycle std pass hides whole;
    # exposed = the quantize pass, 48. Behind QKᵀ's backward-data alone it would be 48 − 4 + 48 = 92.
    got = nsd_unit.book(_cycles(20, 4, 30), GPT, _arch(), method="dither")
    assert got[("c_attn", "backward_weight")][0] == 48
    # pv_bw 30, qk_bd 30, qk_bw 4: δK arrives last and faster than the lanes: 12 cycles left, exposed 12 + 48 = 60
    # (behind QKᵀ's backward-data alone 30 would hide: 66)
    got = nsd_unit.book(_cycles(30, 30, 4), GPT, _arch(), method="dither")
    assert got[("c_attn", "backward_weight")][0] == 60
