"""What a loaded trace answers from its manifest alone (hwsim/trace/format.py ``Trace``): which sampled iteration
``simulate`` replays when none is asked for (and the sentence saying why), each iteration's mini-batch, sample
sizes, the per-layer gradient flags, and the errors for an iteration that was not sampled. Hand-written manifests,
no sample files."""

from __future__ import annotations

import re

import pytest
from _hwsim_fixtures import trace_from_manifest

from hwsim.trace.schema import TraceError


def _entry(it: int, batches: dict[str, object], nbytes: int = 100, **flags) -> dict:
    layers = {nm: {"geometry": {"N": 4, "batch_size": b}, **flags.get(nm, {})} for nm, b in batches.items()}
    return {"iteration": it, "file": f"samples/it{it:07d}.npz.xz", "sha256": "0" * 64, "bytes": nbytes,
            "layers": layers}


def _trace(*entries: dict):
    return trace_from_manifest({"layers": [{"name": "fc1", "N": 4}, {"name": "fc2", "N": 4}],
                                "samples": list(entries)}, path="run")


def test_the_last_sampled_full_batch_is_replayed_by_default():
    # an epoch of 93 examples in batches of 64: iteration 1 is the short last batch of 29
    tr = _trace(_entry(0, {"fc1": 64, "fc2": 64}), _entry(1, {"fc1": 29, "fc2": 29}))
    assert tr.default_iteration() == (0, "iteration 0: the last sampled with a full batch of 64 (the last sampled, "
                                         "1, has a partial batch of 29)")
    tr = _trace(_entry(0, {"fc1": 29}), _entry(5, {"fc1": 64}), _entry(9, {"fc1": 64}))
    assert tr.default_iteration() == (9, "iteration 9: the last sampled, a full batch of 64")


def test_without_batch_sizes_the_last_sampled_is_replayed():
    tr = _trace(_entry(0, {"fc1": None}), _entry(3, {"fc1": 0}))
    assert tr.default_iteration() == (3, "iteration 3: the last sampled (the manifest gives no batch sizes)")
    with pytest.raises(TraceError, match=r"^run/manifest\.json: field 'samples' is empty; this trace holds no "
                                         r"operands$"):
        _trace().default_iteration()


def test_minibatch_is_the_largest_valid_layer_batch_size():
    tr = _trace(_entry(0, {"fc1": 16, "fc2": 48}), _entry(1, {"fc1": True, "fc2": -3}), _entry(2, {"fc1": "64"}))
    assert (tr.minibatch(0), tr.minibatch(1), tr.minibatch(2)) == (48, None, None)   # a bool is not a size
    with pytest.raises(TraceError, match=re.escape("run: iteration 7 was not sampled; sampled: [0, 1, 2]")):
        tr.minibatch(7)


def test_sample_batch_reads_the_stored_rows_and_sizes_add_up():
    tr = _trace(_entry(0, {"fc1": 64}, nbytes=100), _entry(4, {"fc1": 64}, nbytes=250))
    assert tr.sample_batch(0) == 4 and tr.sample_batch(3) is None    # N stored (4), not the mini-batch (64)
    assert tr.sample_bytes() == 350
    assert (tr.sample_entry_bytes(4), tr.sample_entry_bytes(3), tr.sample_entry_bytes(None)) == (250, 0, 0)
    assert tr.sampled_iterations == [0, 4] and not tr.complete


def test_gradient_flags_from_the_manifest():
    flags = {"fc1": {"input_grad": False, "weight_grad": True}, "fc2": {"input_grad": True}}
    tr = _trace(_entry(0, {"fc1": 8, "fc2": 8}), _entry(2, {"fc1": 8, "fc2": 8}, **flags))
    assert tr.grad_flags() == {"fc1": (False, True), "fc2": (True, None)}          # default: the last sampled
    assert tr.grad_flags(0) == {"fc1": (None, None), "fc2": (None, None)}          # not recorded
    assert _trace().grad_flags() == {"fc1": (None, None), "fc2": (None, None)}     # nothing sampled: the layers
    with pytest.raises(TraceError, match=re.escape("run: iteration 1 was not sampled; sampled: [0, 2]")):
        tr.grad_flags(1)
    bad = _trace(_entry(0, {"fc1": 8}, fc1={"weight_grad": "yes"}))
    with pytest.raises(TraceError, match=re.escape("run/manifest.json: field samples[0].layers.fc1.weight_grad: "
                                                   "'yes' is not allowed; allowed: true, false or null")):
        bad.grad_flags()


def test_a_missing_layer_or_iteration_is_named():
    tr = _trace(_entry(0, {"fc1": 8}))
    assert tr.layer("fc2").name == "fc2"
    with pytest.raises(KeyError, match=re.escape("run: no layer 'fc3'; layers: ['fc1', 'fc2']")):
        tr.layer("fc3")
    with pytest.raises(TraceError, match=re.escape("run: iteration 5 was not sampled; sampled: [0]")):
        tr.sample(5)
    with pytest.raises(TraceError, match=r"^run/manifest\.json: field 'samples' is empty"):
        _trace().sample()
