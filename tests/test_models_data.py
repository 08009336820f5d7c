"""Model zoo shapes and datasets: embedded digits, MNIST idx and CIFAR pickles from a directory, clear errors."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hwsim.capture.zoo.data import DATASETS, DataError, load_dataset
from hwsim.capture.zoo.models import MODELS, build_model


@pytest.mark.parametrize(("name", "c", "size", "n_conv", "n_linear"), [
    ("mlp500", 1, 8, 0, 3), ("lenet300", 1, 28, 0, 3), ("lenet5", 1, 28, 2, 3), ("alexnet_cifar", 3, 32, 5, 3),
    ("vgg11_cifar", 3, 32, 8, 3), ("resnet18_cifar", 3, 32, 20, 1), ("resnet18", 3, 64, 20, 1),
])
def test_models_build_and_run(name, c, size, n_conv, n_linear):
    torch.manual_seed(0)
    m = build_model(name, in_channels=c, num_classes=7, image_size=size)
    assert sum(isinstance(x, nn.Conv2d) for x in m.modules()) == n_conv
    assert sum(isinstance(x, nn.Linear) for x in m.modules()) == n_linear
    with torch.no_grad():
        assert m.eval()(torch.randn(2, c, size, size)).shape == (2, 7)


def test_model_geometry_follows_the_paper():
    mlp = build_model("mlp500", in_channels=1, num_classes=10, image_size=28)
    assert [x.out_features for x in mlp.modules() if isinstance(x, nn.Linear)] == [500, 500, 10]
    assert next(x for x in mlp.modules() if isinstance(x, nn.Linear)).in_features == 784
    alex = build_model("alexnet_cifar", in_channels=3, num_classes=10, image_size=32)
    assert [x.out_features for x in alex.modules() if isinstance(x, nn.Linear)] == [2048, 2048, 10]
    r18 = build_model("resnet18", in_channels=3, num_classes=1000, image_size=224)
    first = next(x for x in r18.modules() if isinstance(x, nn.Conv2d))
    assert (first.kernel_size, first.stride) == ((7, 7), (2, 2))


def test_unknown_model_lists_choices():
    with pytest.raises(ValueError, match="unknown model 'resnet50'; choose one of: " + ", ".join(MODELS)):
        build_model("resnet50", in_channels=3, num_classes=10, image_size=32)


def test_digits_is_embedded_real_and_split_is_fixed():
    d = load_dataset("digits")
    assert len(d.train_y) + len(d.test_y) == 1797 and len(d.test_y) == 360
    assert d.train_x.shape[1:] == (1, 8, 8) and d.num_classes == 10 and d.in_channels == 1
    assert torch.equal(load_dataset("digits").test_y, d.test_y)  # fixed split
    assert abs(float(d.train_x.mean())) < 1e-5 and float(d.train_x.std()) == pytest.approx(1.0, rel=1e-3)
    x, y = next(d.batches(split="train", batch_size=16, image_size=28, shuffle=True,
                          generator=torch.Generator().manual_seed(0)))
    assert x.shape == (16, 1, 28, 28) and y.shape == (16,)
    assert sum(len(y) for _, y in d.batches(split="test", batch_size=100)) == 360
    assert sum(len(y) for _, y in d.batches(split="train", batch_size=7, limit=20)) == 20


def _idx(path: Path, arr: np.ndarray, *, gz: bool) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    for stem, n in (("train", 30), ("t10k", 10)):
        _idx(tmp_path / f"{stem}-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n, 28, 28)), gz=gz)
        _idx(tmp_path / f"{stem}-labels-idx1-ubyte{sfx}", rng.integers(0, 10, n), gz=gz)
    d = load_dataset("mnist", data_dir=tmp_path)
    assert d.train_x.shape == (30, 1, 28, 28) and d.test_x.shape == (10, 1, 28, 28) and d.num_classes == 10
    bad = tmp_path / f"t10k-labels-idx1-ubyte{sfx}"
    raw = gzip.decompress(bad.read_bytes()) if gz else bad.read_bytes()
    bad.write_bytes(gzip.compress(raw[:-3]) if gz else raw[:-3])
    with pytest.raises(DataError, match="truncated"):
        load_dataset("mnist", data_dir=tmp_path)


@pytest.mark.parametrize("fine", [False, True])
def test_cifar_python_batches(tmp_path, fine):
    rng = np.random.default_rng(1)
    sub = tmp_path / ("cifar-100-python" if fine else "cifar-10-batches-py")
    sub.mkdir()
    key = b"fine_labels" if fine else b"labels"
    files = ["train", "test"] if fine else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for f in files:
        with (sub / f).open("wb") as fh:
            pickle.dump({b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                         key: list(rng.integers(0, 100 if fine else 10, 4))}, fh)
    d = load_dataset("cifar100" if fine else "cifar10", data_dir=tmp_path)
    assert d.train_x.shape == ((4 if fine else 20), 3, 32, 32) and d.num_classes == (100 if fine else 10)
    (sub / files[0]).unlink()
    with pytest.raises(DataError, match="missing; download https://www.cs.toronto.edu"):
        load_dataset("cifar100" if fine else "cifar10", data_dir=tmp_path)


def test_dataset_errors_say_what_to_do(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'svhn'; choose one of: " + ", ".join(DATASETS)):
        load_dataset("svhn")
    with pytest.raises(DataError, match="needs --data-dir DIR: download"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="does not exist; for cifar10: download"):
        load_dataset("cifar10", data_dir=tmp_path / "nope")
    with pytest.raises(DataError, match=r"no train-images-idx3-ubyte\[\.gz\] found .* download"):
        load_dataset("mnist", data_dir=tmp_path)
