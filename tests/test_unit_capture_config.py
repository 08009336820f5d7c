"""CaptureConfig / TrainConfig: frozen values that validate themselves (messages name the field and what is allowed)."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import hwsim
from hwsim.capture import CaptureConfig, TrainConfig
from hwsim.capture.quant import DEFAULT_S
from hwsim.capture.session import Capture
from hwsim.capture.train import train_and_capture
from hwsim.capture.zoo.data import DataError


@pytest.mark.parametrize(("kw", "message"), [
    ({"method": "sgd"}, "method 'sgd' is unknown; choose one of"),
    ({"method": "dither", "s": 0.0}, "s must be > 0 for method 'dither', got 0.0"),
    ({"method": "dither", "s": -1.0}, "s must be > 0 for method 'dither'"),
    ({"method": "meprop"}, "k must be a positive integer for method 'meprop', got None"),
    ({"method": "meprop", "k": 0}, "k must be a positive integer for method 'meprop', got 0"),
    ({"method": "meprop", "k": 2.5}, "k must be a positive integer for method 'meprop'"),
    ({"method": "meprop", "k": True}, "k must be a positive integer for method 'meprop'"),
    ({"sample_every": -1}, r"sample_every must be >= 0 \(0 = never\), got -1"),
    ({"sample_every": None}, "sample_every must be >= 0"),
    ({"sample_every": 2.0}, "sample_every must be >= 0"),
    ({"stats_every": 0}, r"stats_every must be an integer >= 1 \(1 = every iteration\), got 0"),
    ({"stats_every": True}, "stats_every must be an integer >= 1"),
    ({"max_examples": 0}, "max_examples must be >= 1 or None, got 0"),
    ({"max_examples": 1.5}, "max_examples must be >= 1 or None"),
    ({"iteration": "epoch"}, "iteration must be 'auto' or 'step', got 'epoch'"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"seed": "7"}, "seed must be an integer >= 0"),
    ({"dither_attention": 1}, "dither_attention must be True or False, got 1"),
])
def test_capture_config_rejects_each_bad_field(kw, message):
    with pytest.raises(ValueError, match=message):
        CaptureConfig(**kw)


def test_capture_config_defaults_fill_s_for_dither_only():
    c = CaptureConfig()
    assert (c.method, c.s, c.k, c.sample_every, c.seed, c.max_examples, c.dither_attention, c.iteration,
            c.stats_every) == ("dither", DEFAULT_S, None, 50, 0, None, False, "auto", 1)
    assert CaptureConfig(s=2.5).s == 2.5
    assert CaptureConfig(method="none").s is None
    assert CaptureConfig(method="meprop", k=3).s is None and CaptureConfig(method="meprop", k=3).k == 3
    assert CaptureConfig(method="none", k=None).k is None  # k is required for meprop only


def test_capture_config_is_frozen_and_replace_validates_again():
    c = CaptureConfig(s=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.s = 3.0  # type: ignore[misc]
    assert dataclasses.replace(c, seed=5) == CaptureConfig(s=2.0, seed=5)
    with pytest.raises(ValueError, match="k must be a positive integer for method 'meprop'"):
        dataclasses.replace(c, method="meprop")
    assert dataclasses.replace(c, method="dither", s=None).s == DEFAULT_S  # None means the default again
    assert hash(c) == hash(CaptureConfig(s=2.0))  # a value: usable as a dict key


def test_capture_config_normalizes_numpy_integers():
    c = CaptureConfig(seed=np.int64(3), sample_every=np.int32(4), stats_every=np.int64(2))
    assert (type(c.seed), type(c.sample_every), type(c.stats_every)) == (int, int, int)
    assert c == CaptureConfig(seed=3, sample_every=4, stats_every=2)


def test_capture_config_meta_keeps_s_for_dither_and_k_for_meprop_only():
    assert CaptureConfig(s=2).meta() == {"method": "dither", "s": 2.0, "k": None, "seed": 0, "sample_every": 50,
                                         "stats_every": 1, "max_examples": None, "dither_attention": False,
                                         "dither_rng": "counter"}
    assert CaptureConfig(dither_rng="sfc64").meta()["dither_rng"] == "sfc64"
    m = CaptureConfig(method="meprop", k=7, s=3.0, max_examples=4).meta()
    assert (m["s"], m["k"], m["max_examples"]) == (None, 7, 4)
    assert CaptureConfig(method="none", k=9).meta()["k"] is None


def test_capture_config_rejects_an_unknown_dither_rng_naming_the_field_and_the_choices():
    with pytest.raises(ValueError, match=r"^dither_rng must be one of counter, sfc64, got 'philox'$"):
        CaptureConfig(dither_rng="philox")
    assert hwsim.capture(nn.Linear(3, 2), dither_rng="sfc64").config.dither_rng == "sfc64"


@pytest.mark.parametrize("name", ["Table1Config", "MepropConfig", "DistributedConfig"])
def test_experiment_configs_reject_an_unknown_dither_rng_when_built(name):
    """The experiments' configs check their stream at construction (with the capture config's own check and
    choices), not at their first training run minutes later; a valid stream is kept."""
    from hwsim.experiments import distributed, meprop, table1

    cls = {"Table1Config": table1.Table1Config, "MepropConfig": meprop.MepropConfig,
           "DistributedConfig": distributed.DistributedConfig}[name]
    with pytest.raises(ValueError, match=rf"^{name}\.dither_rng must be one of counter, sfc64, got 'philox'$"):
        cls(dither_rng="philox")
    with pytest.raises(ValueError, match=rf"^{name}\.dither_rng must be one of counter, sfc64, got None$"):
        dataclasses.replace(cls(), dither_rng=None)
    assert cls(dither_rng="sfc64").dither_rng == "sfc64" and cls().dither_rng == "counter"


def test_capture_takes_a_config_and_capture_keywords_build_the_same():
    net = nn.Linear(3, 2)
    cfg = CaptureConfig(s=2.0, sample_every=3, seed=4, stats_every=2)
    assert hwsim.capture(net, s=2.0, sample_every=3, seed=4, stats_every=2).config == cfg
    assert Capture(net, cfg).config is cfg
    with pytest.raises(TypeError, match="config must be a CaptureConfig, got dict"):
        Capture(net, {"s": 2.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="iteration must be 'auto' or 'step'"):
        hwsim.capture(net, iteration="never")
    with Capture(net, cfg) as cap:
        net(torch.randn(4, 3)).sum().backward()
    assert cap.iterations_done == 1 and cap._meta["s"] == 2.0 and cap._meta["stats_every"] == 2


@pytest.mark.parametrize(("kw", "exc", "message"), [
    ({"model": "resnet50"}, ValueError, "unknown model 'resnet50'; choose one of: mlp500, lenet300"),
    ({"model": "lenet5", "dataset": "svhn"}, DataError, "unknown dataset 'svhn'; choose one of: digits"),
    ({"model": "gpt_char", "dataset": "digits"}, DataError, "--model gpt_char is a language model"),
    ({"model": "lenet5", "dataset": "pystdlib"}, DataError, "--model lenet5 is an image model"),
    ({"model": "lenet5", "epochs": 0}, ValueError, "epochs must be a positive integer, got 0"),
    ({"model": "lenet5", "epochs": 1.5}, ValueError, "epochs must be a positive integer"),
    ({"model": "lenet5", "batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
    ({"model": "lenet5", "lr": 0.0}, ValueError, "lr must be > 0, got 0.0"),
    ({"model": "lenet5", "lr": float("nan")}, ValueError, "lr must be > 0"),
    ({"model": "lenet5", "momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\), got 1.0"),
    ({"model": "lenet5", "weight_decay": -1e-4}, ValueError, "weight_decay must be >= 0"),
    ({"model": "lenet5", "image_size": 0}, ValueError, "image_size must be a positive integer or None, got 0"),
    ({"model": "lenet5", "limit_train": -3}, ValueError, "limit_train must be a positive integer or None, got -3"),
    ({"model": "lenet5", "int8": "yes"}, ValueError, "int8 must be True or False"),
    ({"model": "lenet5", "device": "gpu0"}, ValueError, "--device 'gpu0' is not a torch device; allowed: cpu, cuda"),
    ({"model": "lenet5", "device": 0}, ValueError, "--device 0 is not a torch device"),
    ({"model": "lenet5", "capture": {"s": 2.0}}, ValueError, "capture must be a CaptureConfig, got dict"),
])
def test_train_config_rejects_each_bad_field(kw, exc, message):
    with pytest.raises(exc, match=message):
        TrainConfig(**kw)


def test_train_config_defaults_dataset_by_model_kind_and_seed_from_capture():
    assert TrainConfig(model="lenet5").dataset == "digits"
    assert TrainConfig(model="gpt_char").dataset == "pystdlib"
    t = TrainConfig(model="mlp500", capture=CaptureConfig(seed=9))
    assert t.seed == 9 and t.capture.s == DEFAULT_S and t.device == "cpu"
    assert TrainConfig(model="lenet5", device="cuda:1").device == "cuda:1"  # availability: checked at run time


def test_train_config_is_frozen_and_replace_and_with_capture_validate_again():
    t = TrainConfig(model="lenet5", epochs=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.epochs = 3  # type: ignore[misc]
    assert dataclasses.replace(t, epochs=3).epochs == 3
    with pytest.raises(ValueError, match="lr must be > 0"):
        dataclasses.replace(t, lr=-1.0)
    with pytest.raises(DataError, match="is a language model"):
        dataclasses.replace(t, model="gpt_char")  # dataset was resolved to digits: now the wrong kind
    u = t.with_capture(method="meprop", k=5, seed=2)
    assert (u.capture.method, u.capture.k, u.seed, u.epochs) == ("meprop", 5, 2, 2) and t.capture.method == "dither"
    with pytest.raises(ValueError, match="k must be a positive integer"):
        t.with_capture(method="meprop")


def test_train_and_capture_takes_a_train_config(tmp_path):
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        train_and_capture({"model": "lenet5"})  # type: ignore[arg-type]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "manifest.json").write_text("{}")
    with pytest.raises(FileExistsError, match="a trace already exists here"):
        train_and_capture(TrainConfig(model="lenet300"), out=tmp_path / "t")


def test_configs_are_reexported():
    assert hwsim.CaptureConfig is CaptureConfig and hwsim.TrainConfig is TrainConfig


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_configs_and_defaults_import_without_torch():
    """``hwsim.capture.config`` (and the package, whose session is loaded on first use) never imports torch."""
    loaded = _modules_after("import hwsim.capture.config\nimport hwsim.capture\n"
                            "from hwsim.capture import CaptureConfig, DistributedOptions, TrainConfig\n"
                            "CaptureConfig(method='meprop', k=3); DistributedOptions(steps=2)")
    assert "hwsim.capture.config" in loaded and "hwsim.capture.session" not in loaded
    torchy = sorted(m for m in loaded if m == "torch" or m.startswith("torch."))
    assert not torchy, f"importing the configs imported {torchy[:3]}..."
    loaded = _modules_after("import hwsim.capture\nhwsim.capture.Capture")  # the lazy names still resolve
    assert "hwsim.capture.session" in loaded and "torch" in loaded


def _literal_defaults(path: Path) -> dict[str, str]:
    """Module-level ``DEFAULT_X = <literal>`` (also tuple targets) in ``path``: {name: literal source}."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = (zip(target.elts, node.value.elts, strict=False)
                     if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple) else [(target, node.value)])
            for t, v in pairs:
                if isinstance(t, ast.Name) and t.id.startswith("DEFAULT_") and isinstance(v, ast.Constant):
                    found[t.id] = ast.unparse(v)
    return found


def test_every_training_default_is_defined_once():
    """A DEFAULT_ of the configs is typed in hwsim.capture.config only; everyone else imports it."""
    package = Path(hwsim.__file__).parent
    home = package / "capture" / "config.py"
    ours = _literal_defaults(home)
    assert {"DEFAULT_S", "DEFAULT_K", "DEFAULT_EPOCHS", "DEFAULT_BATCH", "DEFAULT_LR"} <= set(ours)
    retyped = {f"{p.relative_to(package)}: {name} = {lit}" for p in package.rglob("*.py") if p != home
               for name, lit in _literal_defaults(p).items() if name in ours}
    assert not retyped, f"defaults of hwsim.capture.config typed again (import them instead): {sorted(retyped)}"


def test_the_one_home_fills_every_default():
    from hwsim.capture import config, quant
    from hwsim.capture.zoo import data, models

    assert (quant.DEFAULT_S, quant.DEFAULT_K, quant.METHODS) == (config.DEFAULT_S, config.DEFAULT_K, config.METHODS)
    assert models.KIND is config.MODEL_KIND and data.DataError is config.DataError
    assert CaptureConfig().s == config.DEFAULT_S and CaptureConfig().sample_every == config.DEFAULT_SAMPLE_EVERY
    t = TrainConfig(model="gpt_char")
    assert t.dataset == config.DEFAULT_DATASETS["text"] == config.default_dataset("gpt_char")
    assert TrainConfig(model="lenet5").dataset == config.DEFAULT_DATASETS["image"]
    assert (t.epochs, t.batch_size, t.lr, t.momentum, t.weight_decay, t.device) == (
        config.DEFAULT_EPOCHS, config.DEFAULT_BATCH, config.DEFAULT_LR, config.DEFAULT_MOMENTUM,
        config.DEFAULT_WEIGHT_DECAY, config.DEFAULT_DEVICE)
