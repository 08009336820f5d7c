"""The zoo's transformers (vit_digits, gpt_char), the embedded text corpus pystdlib, and the mapper's
accumulator-fit rule that token-batched GEMMs need."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hwsim
from hwsim.capture.session import capture
from hwsim.capture.train import CaptureConfig, TrainConfig, train_and_capture
from hwsim.capture.zoo.data import DATASET_KIND, DataError, dataset_for, load_dataset, pystdlib
from hwsim.capture.zoo.models import KIND, MODELS, build_model
from hwsim.trace.format import load

ROOT = Path(__file__).resolve().parents[1]
VIT_GEMMS = {"patch", "blocks.0.attn", "blocks.0.attn:qk", "blocks.0.attn:pv", "blocks.0.attn.out_proj",
             "blocks.0.mlp.0", "blocks.0.mlp.2", "blocks.1.attn:qk", "head"}
GPT_GEMMS = {"h.0.attn.c_attn", "h.0.attn:matmul", "h.0.attn:matmul#1", "h.0.attn.c_proj", "h.0.mlp.c_fc",
             "h.0.mlp.c_proj", "h.1.attn:matmul#1", "lm_head"}


def _model_and_batch(name: str, seed: int = 0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    if name == "vit_digits":
        net = build_model(name, in_channels=1, num_classes=10, image_size=8)
        return net, torch.randn(6, 1, 8, 8, generator=g), torch.randint(0, 10, (6,), generator=g)
    net = build_model(name, in_channels=1, num_classes=128, image_size=16)
    return net, torch.randint(0, 128, (4, 16), generator=g), torch.randint(0, 128, (4, 16), generator=g)


def _step(net, x, y) -> None:
    out = net(x)
    F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)).backward()


@pytest.mark.parametrize(("name", "expected"), [("vit_digits", VIT_GEMMS), ("gpt_char", GPT_GEMMS)])
def test_capture_sees_every_gemm_of_the_zoo_transformers(tmp_path, name, expected):
    net, x, y = _model_and_batch(name)
    with capture(net, method="dither", out=tmp_path / name, sample_every=1) as cap:
        _step(net, x, y)
        cap.step()
    tr = load(tmp_path / name)
    cov = tr.meta["coverage"]
    assert (cov["forward"], cov["backward_data"], cov["backward_weight"]) == (1.0, 1.0, 1.0), cov
    assert cov["missed"] == [] and cov["captured_macs"] == cov["total_macs"] > 0
    names = {g.name for g in tr.layers}
    assert expected <= names, sorted(names)
    roles = {g.name: g.w_role for g in tr.layers}
    products = [n for n in names if n.endswith((":qk", ":pv", ":matmul", ":matmul#1"))]
    assert len(products) == 4 and all(roles[n] == "activation" for n in products)
    assert all(roles[n] == "weight" for n in names - set(products))


@pytest.mark.parametrize("name", ["vit_digits", "gpt_char"])
def test_method_none_gives_bit_identical_gradients(name):
    ref, x, y = _model_and_batch(name)
    _step(ref, x, y)
    net, _, _ = _model_and_batch(name)
    with capture(net, method="none") as cap:
        _step(net, x, y)
        cap.step()
    for (n, p), (_, q) in zip(ref.named_parameters(), net.named_parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), n


def test_gpt_char_checks_its_input():
    net, x, _ = _model_and_batch("gpt_char")
    with pytest.raises(ValueError, match="exceed the context of 16"):
        net(torch.zeros(1, 17, dtype=torch.int64))
    with pytest.raises(ValueError, match="int64 token ids"):
        net(x.float())


def test_pystdlib_is_deterministic_real_text_split_by_position():
    a, b = pystdlib(), load_dataset("pystdlib")
    assert torch.equal(a.train_tokens, b.train_tokens) and torch.equal(a.test_tokens, b.test_tokens)
    assert a.info["sha256"] == b.info["sha256"] and len(a.info["sha256"]) == 64
    assert a.info["python"] == sys.version.split()[0]
    assert a.kind == "text" and a.num_classes == 128 and int(a.train_tokens.max()) < 128
    assert len(a.train_tokens) == a.info["train_chars"] and len(a.train_tokens) + len(a.test_tokens) == a.info["chars"]
    assert bytes(a.train_tokens[:200].tolist()).decode().count("def ") + 1 > 0  # source text, starting with difflib
    assert b"import" in bytes(a.train_tokens[:5000].tolist())
    batches = [list(d.batches(batch_size=5, image_size=12, shuffle=True, generator=torch.Generator().manual_seed(3),
                              limit=10)) for d in (a, b)]
    assert len(batches[0]) == 2
    for (x1, y1), (x2, y2) in zip(*batches, strict=True):
        assert x1.shape == y1.shape == (5, 12) and x1.dtype == torch.int64
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
        assert torch.equal(x1[:, 1:], y1[:, :-1])  # y is the next token
    assert a.size("train", 12) == (len(a.train_tokens) - 1) // 12


def test_pystdlib_missing_sources_are_named(tmp_path):
    (tmp_path / "difflib.py").write_text("x = 1\n")
    with pytest.raises(DataError, match=r"textwrap\.py.*not found in .*" + tmp_path.name):
        pystdlib(root=tmp_path)


def test_default_dataset_follows_the_model_kind_and_mismatches_name_both_flags():
    assert KIND["gpt_char"] == "text" and KIND["vit_digits"] == "image"
    assert dataset_for("gpt_char", None) == "pystdlib"
    assert dataset_for("vit_digits", None) == "digits" and dataset_for("lenet5", "mnist") == "mnist"
    with pytest.raises(DataError, match="--model gpt_char .*--dataset digits.*Use --dataset pystdlib"):
        dataset_for("gpt_char", "digits")
    with pytest.raises(DataError, match="--model vit_digits .*--dataset pystdlib.*Use --dataset digits or mnist"):
        dataset_for("vit_digits", "pystdlib")
    from hwsim.capture.config import MODEL_KIND
    from hwsim.commands.trace import MODELS as HELP

    assert KIND is MODEL_KIND and list(MODEL_KIND) == list(MODELS)  # the torch-free names are the zoo's builders
    assert all(m in HELP for m in MODELS)
    assert DATASET_KIND["pystdlib"] == "text"


def test_vit_digits_trains_on_digits_and_its_trace_replays_on_both_dataflows(tmp_path):
    r = train_and_capture(TrainConfig(model="vit_digits", epochs=1, limit_train=48, batch_size=16,
                                      capture=CaptureConfig(sample_every=0)), out=tmp_path / "vit")
    assert r.iterations == 3 and 0.0 <= r.test_acc <= 1.0
    tr = load(tmp_path / "vit")
    assert tr.meta["dataset"] == "digits" and tr.meta["image_size"] == 8
    for arch in ("scnn", "systolic32"):
        assert hwsim.simulate(tr, arch).speedup() > 0


def test_hwsim_trace_gpt_char_defaults_to_pystdlib_and_simulates(tmp_path):
    out = tmp_path / "gpt"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "hwsim", "trace", "--model", "gpt_char", "--epochs", "1",
                        "--limit-train", "32", "--batch-size", "16", "--sample-every", "0", "--threads", "1",
                        "--out", str(out), "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "2 iterations" in p.stdout
    tr = load(out)
    info = tr.meta["dataset_info"]
    assert tr.meta["dataset"] == "pystdlib" and tr.meta["context"] == 32 and "image_size" not in tr.meta
    assert info["sha256"] == pystdlib().info["sha256"] and info["python"] == sys.version.split()[0]
    assert tr.meta["coverage"]["backward_weight"] == 1.0
    lin = next(g for g in tr.layers if g.name == "h.0.attn.c_attn")
    assert lin.N == 16 * 32  # a Linear over batch × tokens
    r = hwsim.simulate(tr, "scnn")
    assert r.speedup() > 0
    bad = subprocess.run([sys.executable, "-m", "hwsim", "trace", "--model", "gpt_char", "--dataset", "digits",
                          "--out", str(tmp_path / "bad"), "-q"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "--dataset pystdlib" in bad.stderr


# ----------------------------------------------------------------------------- the mapper's fit rule

def test_mapper_skips_tilings_whose_partial_sums_overflow_the_accumulators():
    """A Linear over many tokens is a 1×T plane; with few output channels the cheapest tiling puts the whole
    row on one PE (channel-parallel), whose T partial sums do not fit: the mapper must take a fitting one."""
    from hwsim.arch import load_arch
    from hwsim.sim import capacity, gemm, tiling, work

    arch = load_arch("scnn")
    cap = arch.pe.accumulator_banks * arch.pe.accumulator_bank_entries
    t = 2 * cap
    conv = work.ScatterConv(x=np.ones((1, 64, 1, t), bool), w=np.ones((192, 64, 1, 1), bool), mode="down",
                            stride=(1, 1), padding=(0, 0), dilation=(1, 1))
    rows, cols = arch.pe_array.rows, arch.pe_array.cols
    kc = capacity.scatter_kc(conv, arch, name="tokens", pass_name="forward")  # raised AccumulatorOverflow before
    tr, tc, _ = tiling.tile_grid(rows, cols, 1, t, **tiling.scatter_mapping_inputs(conv, kc, arch.pe.mult_i, arch))
    assert tiling.scatter_entries(conv, tr, tc) * kc <= cap
    free = tiling.tile_grid(rows, cols, 1, t, **tiling.scatter_mapping_inputs(conv, kc, arch.pe.mult_i))
    assert tiling.scatter_entries(conv, free[0], free[1]) > cap  # the unconstrained choice at this Kc overflows
    counted = gemm.scatter_counts(conv, arch, kc=kc)
    assert int(counted.work.products) == 64 * 192 * t  # every MAC is still done (dense operands)


def test_fit_rule_leaves_fitting_choices_alone():
    from hwsim.sim import tiling

    for h, w, groups in ((1, 7, 3), (4, 5, 40), (2, 30, 1)):
        base = tiling.tile_grid(8, 8, h, w, groups=groups)
        assert tiling.tile_grid(8, 8, h, w, groups=groups, fits=lambda tr, tc: True) == base
        assert tiling.tile_grid(8, 8, h, w, groups=groups, fits=lambda tr, tc: False) == base  # none fits: as before


def test_replayed_batch_of_a_transformer_is_counted_in_examples_not_tokens():
    from _hwsim_fixtures import trace_from_manifest

    from hwsim.results.provenance import trace_provenance

    layers = [{"name": "patch", "N": 64}, {"name": "blocks.0.attn", "N": 64 * 17}, {"name": "head", "N": 64}]
    manifest = {"meta": {"model": "vit_digits", "tokens_per_example": 17}, "layers": layers,
                "samples": [{"iteration": 5, "layers": {g["name"]: {"geometry": g} for g in layers}}]}
    assert trace_provenance(trace_from_manifest(manifest), replayed=[5])["replayed_examples"] == 64
    manifest["meta"] = {"model": "lenet5"}
    # unchanged without the key
    assert trace_provenance(trace_from_manifest(manifest), replayed=[5])["replayed_examples"] == 64 * 17


def test_full_demo_includes_one_transformer_and_quick_does_not():
    from hwsim.experiments.demo import FULL, QUICK

    assert [(e.model, e.method) for e in FULL.extra] == [("vit_digits", "dither")]
    assert QUICK.extra == () and "vit_digits" not in QUICK.models
