"""What each layer's NSD draws on: its random stream (per device) and its s (per layer).

:class:`DitherSource` is owned by :class:`~hwsim.capture.session.Capture`: one seed fixes every stream. With
``dither_rng: counter`` (the default) each quantization call gets a :class:`~hwsim.capture.quant_counter.CounterKey`
from (seed, iteration, call site, the call's ordinal at that site within the iteration), and every element's dither
is a hash of the key and its index — the same bits on CPU and on any device. With ``sfc64`` (older traces' stream):
numpy SFC64 for CPU δz (:mod:`hwsim.capture.quant`), a seeded ``torch.Generator`` on every other device (seed +
7919·device index). The capture's :class:`~hwsim.capture.srule.SRule` gives each layer its s (``s_layers``; the
depth rule counts the call sites of the first iteration).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from hwsim.capture import quant, quant_counter
from hwsim.capture.config import CaptureConfig
from hwsim.capture.records import Call
from hwsim.capture.srule import NoiseBudget
from hwsim.trace.noise import layer_noise


class DitherSource:
    """Random streams and per-layer s of one capture (module doc)."""

    def __init__(self, config: CaptureConfig) -> None:
        self.config = config
        self.generator = quant.new_generator(config.seed)  # the dither's uniforms for CPU δz (numpy path)
        path = quant.quant_path_from_env()
        self.torch_only = path == "torch"  # HWSIM_QUANT_PATH=torch: device path on CPU
        self.compiled = path == "auto"  # HWSIM_QUANT_PATH=numpy: never the compiled CPU kernel (same results)
        self._device_generators: dict[torch.device, torch.Generator] = {}  # other devices: torch, on the device
        self.counter = config.dither_rng == "counter"
        self._no_draw = quant_counter.CounterKey(0, 0, device_path=self.torch_only)  # undithered calls (no draw)
        self._site_hashes: dict[str, int] = {}
        self._ordinals: dict[tuple[int, str], int] = {}  # calls so far per (iteration, site), recent iterations
        self._ordinal_it = -1  # the latest iteration seen
        self._prefix = (-1, 0)  # (that iteration, its quant_counter.iteration_prefix)
        self._srule = config.srule()
        # one s for every layer (no s_layers, or not NSD): what s_of returns, read without a call in backward
        self.fixed_s = config.s if config.method != "dither" or config.s_layers is None else None
        self._site_index: dict[str, int] = {}
        self._depth_layers = 0
        self._budget = (NoiseBudget(float(config.s), self._srule.budget)  # type: ignore[arg-type]
                        if self._srule.rule == "budget" else None)

    @property
    def steers(self) -> bool:
        """Does each layer's s follow the measured noise (the ``budget`` rule)? Then every call's noise is needed."""
        return self._budget is not None

    def generator_for(self, g: torch.Tensor, call: Call | None = None) -> quant.Rng | quant_counter.CounterKey:
        """The dither's random source for δz ``g`` of ``call`` (None: a call that draws nothing): its counter key, or
        (sfc64) numpy SFC64 on CPU and a seeded torch generator on g's device."""
        if self.counter:
            return self._no_draw if call is None else self._key(call)
        if g.is_cpu and not self.torch_only:
            return self.generator
        gen = self._device_generators.get(g.device)
        if gen is None:
            gen = self._device_generators[g.device] = torch.Generator(device=g.device)
            gen.manual_seed(self.config.seed + 7919 * (g.device.index or 0))
        return gen

    def _key(self, call: Call) -> quant_counter.CounterKey:
        """(seed, iteration, site, ordinal of this call at its site in the iteration) → the call's key."""
        name, it = call.site.name, call.iteration
        if it > self._ordinal_it:  # a new iteration: forget all but the one before (a late backward may still come)
            self._ordinals = {k: v for k, v in self._ordinals.items() if k[0] >= it - 1}
            self._ordinal_it = it
            self._prefix = (it, quant_counter.iteration_prefix(self.config.seed, it))
        n = self._ordinals.get((it, name), 0)
        self._ordinals[(it, name)] = n + 1
        h = self._site_hashes.get(name)
        if h is None:
            h = self._site_hashes[name] = quant_counter.site_hash(name)
        prefix = self._prefix[1] if self._prefix[0] == it else quant_counter.iteration_prefix(self.config.seed, it)
        return quant_counter.key_after(prefix, h, n, device_path=self.torch_only)

    def s_of(self, name: str, sites: Mapping[str, object]) -> float | None:
        """Layer ``name``'s s; ``sites``: the capture's call sites in forward order (first seen first)."""
        if self.config.method != "dither" or self.config.s_layers is None:
            return self.config.s
        if self._budget is not None:
            self._budget.layers = self._budget.layers or len(sites)  # first backward: the forward's call sites
            return self._budget.s_for(name)
        if name not in self._site_index:
            self._site_index = {n: i for i, n in enumerate(sites)}
            self._depth_layers = self._depth_layers or len(self._site_index)
        return self._srule.s_for(name, self._site_index.get(name, -1), self._depth_layers)

    def observe(self, name: str, sums: torch.Tensor) -> None:
        """One quantization's (Σδz², Σδ̃z², Σδz·δ̃z): the budget rule steers the next layers' s by it (one small
        host transfer per call, on the budget rule only)."""
        if self._budget is not None:
            st = layer_noise(*sums.tolist())
            self._budget.observe(name, st["noise"] if st is not None else None)
