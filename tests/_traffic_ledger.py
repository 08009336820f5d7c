"""A spy on the replay for traffic tests: every (arch, layer-pass) it runs with its DRAM bytes per tensor."""

from __future__ import annotations

from typing import Any

import hwsim
from hwsim.sim import replay, residency
from hwsim.sim.passes import dram_tensors


def ledger(monkeypatch: Any, trace: Any, arch: Any, *, roles: tuple[str, ...], **kw: Any) -> tuple[dict, dict, list]:
    """Simulate ``trace`` on ``arch`` (``kw``: :func:`hwsim.simulate`'s) and return ``(seen, form, order)``:
    ``seen[id(arch)][(layer, pass)]`` its per-tensor DRAM bytes (:func:`dram_tensors`), ``form[id(arch)][layer]``
    the bytes of each of ``roles`` in their DRAM form (:func:`residency.role_bytes`), ``order`` the forward order."""
    seen: dict = {}
    form: dict = {}
    order: list[str] = []
    real = replay.run_pass

    def spy(ops: Any, pname: str, a: Any, **kws: Any) -> Any:
        if pname == "forward" and ops.name not in order:
            order.append(ops.name)
        seen.setdefault(id(a), {})[(ops.name, pname)] = dram_tensors(ops, pname, a, kws["residency"])
        form.setdefault(id(a), {})[ops.name] = {r: residency.role_bytes(ops, r, a) for r in roles}
        return real(ops, pname, a, **kws)

    monkeypatch.setattr(replay, "run_pass", spy)
    hwsim.simulate(trace, arch, **kw)
    return seen, form, order
