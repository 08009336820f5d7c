"""How a sampled iteration is stored (hwsim/trace/writer.py ``encode_sample``) and when the writer refuses a
directory: non-zero levels only, in the narrowest integer type that holds them, masks packed 8 to a byte, and a
manifest entry that says what the arrays hold."""

from __future__ import annotations

import io
import lzma

import numpy as np
import pytest

from hwsim.trace.schema import LayerGeometry, LayerSample
from hwsim.trace.writer import TraceWriter, encode_sample

FC = LayerGeometry(name="fc", kind="linear", N=2, C=5, K=3)


def _arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(lzma.decompress(data))) as z:
        return {k: z[k] for k in z.files}


def _sample(levels, **kw) -> LayerSample:
    lv = np.zeros((2, 3), np.int64)
    lv.reshape(-1)[:len(levels)] = levels
    return LayerSample(geometry=FC, delta=0.5, dz_levels=lv, a_mask=np.eye(2, 5, dtype=bool), **kw)


@pytest.mark.parametrize("levels,dtype", [([1, -127, 127], np.int8), ([128], np.int16), ([-128], np.int16),
                                          ([32767], np.int16), ([40_000], np.int32), ([2**31], np.int64)])
def test_levels_are_stored_in_the_narrowest_type_that_holds_them(levels, dtype):
    data, meta = encode_sample([_sample(levels)])
    arr = _arrays(data)
    assert arr["fc/dz_levels"].dtype == dtype and arr["fc/dz_levels"].tolist() == levels
    assert meta["fc"]["nnz"] == len(levels)


def test_masks_are_packed_and_the_entry_describes_the_arrays():
    w = np.ones((3, 5), bool)
    data, meta = encode_sample([_sample([0, 2, 0, 0, -1], w_mask=w, w_density=0.75, input_grad=False)])
    arr = _arrays(data)
    assert sorted(arr) == ["fc/a_mask", "fc/dz_levels", "fc/dz_mask", "fc/w_mask"]
    # 6 δ̃z elements, 10 inputs, 15 weights: 1, 2 and 2 bytes, most significant bit first
    assert arr["fc/dz_mask"].tolist() == [0b01001000]
    assert arr["fc/a_mask"].tolist() == [0b10000010, 0b00000000]   # eye(2, 5): inputs 0 and 6
    assert arr["fc/w_mask"].tolist() == [0xFF, 0b11111110]
    assert arr["fc/dz_levels"].tolist() == [2, -1]
    assert meta["fc"] == {"geometry": FC.to_json(), "delta": 0.5, "w_density": 0.75, "w_bits": 32, "a_bits": 32,
                          "has_w_mask": True, "nnz": 2, "input_grad": False}
    _, plain = encode_sample([_sample([1])])
    assert plain["fc"]["has_w_mask"] is False and "input_grad" not in plain["fc"] and "weight_grad" not in plain["fc"]


def test_the_writer_refuses_an_existing_trace_or_a_file(tmp_path):
    with TraceWriter(tmp_path / "t", meta={"model": "m", "method": "none"}):
        pass
    with pytest.raises(FileExistsError, match=r"t: a trace already exists here \(pass overwrite=True / --overwrite\)$"):
        TraceWriter(tmp_path / "t", meta={"model": "m", "method": "none"})
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"f: exists and is not a directory$"):
        TraceWriter(tmp_path / "f", meta={"model": "m", "method": "none"})


def test_overwrite_removes_the_old_samples(tmp_path):
    with TraceWriter(tmp_path / "t", meta={"model": "m", "method": "none"}) as w:
        w.add_layer(FC)
        w.add_iteration(0, stats={}, samples=[_sample([1])])
    old = list((tmp_path / "t" / "samples").glob("*.npz.xz"))
    assert len(old) == 1
    with TraceWriter(tmp_path / "t", meta={"model": "m", "method": "none"}, overwrite=True):
        assert list((tmp_path / "t" / "samples").glob("*.npz.xz")) == []
