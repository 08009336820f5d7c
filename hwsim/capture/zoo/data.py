"""Datasets: embedded real ones that work offline, and MNIST / CIFAR from a user directory.

``digits`` is scikit-learn's bundled copy of the UCI handwritten digits (1,797 real 8×8
images, 10 classes): hwsim runs end-to-end with no download. ``pystdlib`` is real text for the
language models: the characters of a fixed list of CPython standard-library source files
(:func:`pystdlib`). MNIST (idx files, gzipped or
not) and CIFAR-10/100 (the "python version" pickle batches) are read from ``data_dir`` in their
standard distribution formats. Nothing is ever downloaded; a missing directory is an error
that says where to get the files.

Images are kept at their native size; :meth:`Dataset.batches` resizes each mini-batch to the
model's ``image_size`` (bilinear), so a 224² ResNet on MNIST does not need 12 GB up front.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwsim.capture.config import DATASET_KIND, DATASETS, DataError, dataset_for

__all__ = ["DATASETS", "DATASET_KIND", "DataError", "Dataset", "TextDataset", "dataset_for", "load_dataset",
           "pystdlib", "resize"]

# DATASETS and DATASET_KIND — what a dataset's batches hold: "image" (x (B, C, H, W) float, y (B,) class) or
# "text" (x, y (B, T) int64 tokens, y the next token of x); a model reads one kind — and the default dataset of
# each kind (dataset_for) live in the torch-free hwsim.capture.config, with DataError.
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0  # fixed: the split never changes with the training seed

HOW_TO_GET = {
    "mnist": "download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
             "t10k-labels-idx1-ubyte.gz (e.g. from https://ossci-datasets.s3.amazonaws.com/mnist/) into DIR",
    "cifar10": "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it in DIR "
               "(giving DIR/cifar-10-batches-py/)",
    "cifar100": "download https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and extract it in DIR "
                "(giving DIR/cifar-100-python/)",
}


@dataclass(frozen=True)
class Dataset:
    """Normalised float images (N, C, H, W) and int64 labels, split into train and test."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    kind = "image"
    info: dict = field(default_factory=dict)  # recorded in the trace meta as "dataset_info"

    def size(self, split: str = "train", context: int | None = None) -> int:
        """Examples in ``split`` (``context`` is for text datasets; ignored)."""
        return len(self.train_y if split == "train" else self.test_y)

    @property
    def in_channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def native_size(self) -> int:
        return int(self.train_x.shape[-1])

    def batches(self, *, split: str = "train", batch_size: int, image_size: int | None = None,
                shuffle: bool = False, generator: torch.Generator | None = None,
                limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches (x resized to ``image_size``, y); ``limit`` keeps only the first examples."""
        x, y = (self.train_x, self.train_y) if split == "train" else (self.test_x, self.test_y)
        n = len(y) if limit is None else min(limit, len(y))
        order = torch.randperm(len(y), generator=generator)[:n] if shuffle else torch.arange(n)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            yield resize(x[idx], image_size), y[idx]


def resize(x: torch.Tensor, image_size: int | None) -> torch.Tensor:
    if image_size is None or x.shape[-1] == image_size:
        return x
    return F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False)


def load_dataset(name: str, *, data_dir: str | Path | None = None) -> Dataset | TextDataset:
    """Load ``name`` (one of :data:`DATASETS`); only ``digits`` works without ``data_dir``."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    if name == "digits":
        return _digits()
    if name == "pystdlib":
        return pystdlib()
    if data_dir is None:
        raise DataError(f"dataset {name!r} needs --data-dir DIR: {HOW_TO_GET[name]}")
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"data directory {root} does not exist; for {name}: {HOW_TO_GET[name]}")
    if name == "mnist":
        return _mnist(root)
    return _cifar(root, fine=name == "cifar100")


def _standardize(train: np.ndarray, test: np.ndarray, *, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale by the train set's mean/std so every dataset enters the models alike."""
    axes = (0, 2, 3) if per_channel else None
    mean = train.mean(axis=axes, keepdims=per_channel)
    std = train.std(axis=axes, keepdims=per_channel)
    tr = torch.from_numpy(((train - mean) / std).astype(np.float32))
    te = torch.from_numpy(((test - mean) / std).astype(np.float32))
    return tr, te


def _digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0)[:, None]  # (1797, 1, 8, 8), values 0..1
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED,
                                          stratify=y)
    tr, te = _standardize(xtr, xte, per_channel=False)
    return Dataset("digits", tr, torch.from_numpy(ytr), te, torch.from_numpy(yte), num_classes=10)


def _read_idx(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 8 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise DataError(f"{path}: not an MNIST idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: holds {data.size} bytes of data, header says {dims} (truncated?)")
    return data.reshape(dims)


def _find(root: Path, stem: str, dataset: str) -> Path:
    for d in (root, root / "mnist", root / "MNIST" / "raw"):
        for suffix in ("", ".gz"):
            for sep in ("-", "."):  # some mirrors use t10k-images.idx3-ubyte
                p = d / (stem.replace("-idx", f"{sep}idx") + suffix)
                if p.is_file():
                    return p
    raise DataError(f"{root}: no {stem}[.gz] found (looked in {root}, {root / 'mnist'}, {root / 'MNIST/raw'}); "
                    f"{HOW_TO_GET[dataset].replace('DIR', str(root))}")


def _mnist(root: Path) -> Dataset:
    arrays = {k: _read_idx(_find(root, f, "mnist")) for k, f in (
        ("xtr", "train-images-idx3-ubyte"), ("ytr", "train-labels-idx1-ubyte"),
        ("xte", "t10k-images-idx3-ubyte"), ("yte", "t10k-labels-idx1-ubyte"))}
    xtr = arrays["xtr"].astype(np.float32)[:, None] / 255.0
    xte = arrays["xte"].astype(np.float32)[:, None] / 255.0
    tr, te = _standardize(xtr, xte, per_channel=False)
    return Dataset("mnist", tr, torch.from_numpy(arrays["ytr"].astype(np.int64)), te,
                   torch.from_numpy(arrays["yte"].astype(np.int64)), num_classes=10)


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            d = pickle.load(f, encoding="bytes")  # noqa: S301 - the official CIFAR distribution format
    except (pickle.UnpicklingError, EOFError) as e:
        raise DataError(f"{path}: not a CIFAR python batch ({e})") from None
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _cifar(root: Path, *, fine: bool) -> Dataset:
    name = "cifar100" if fine else "cifar10"
    sub = "cifar-100-python" if fine else "cifar-10-batches-py"
    base = root / sub if (root / sub).is_dir() else root
    train_files = ["train"] if fine else [f"data_batch_{i}" for i in range(1, 6)]
    for f in (*train_files, "test" if fine else "test_batch"):
        if not (base / f).is_file():
            raise DataError(f"{base / f}: missing; {HOW_TO_GET[name].replace('DIR', str(root))}")
    label_key = "fine_labels" if fine else "labels"

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            d = _unpickle(base / f)
            if "data" not in d or label_key not in d:
                raise DataError(f"{base / f}: field 'data' or {label_key!r} missing (not a {name} batch)")
            xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key], dtype=np.int64))
        return np.concatenate(xs).astype(np.float32) / 255.0, np.concatenate(ys)

    xtr, ytr = read(train_files)
    xte, yte = read(["test" if fine else "test_batch"])
    tr, te = _standardize(xtr, xte, per_channel=True)
    return Dataset(name, tr, torch.from_numpy(ytr), te, torch.from_numpy(yte), num_classes=100 if fine else 10)


# ----------------------------------------------------------------------------- text: pystdlib

# The corpus: these standard-library modules' source, concatenated in this order (present in CPython ≥ 3.9).
PYSTDLIB_FILES = ("difflib", "textwrap", "heapq", "shlex", "fnmatch", "bisect", "string", "colorsys", "queue",
                  "sched")
PYSTDLIB_TEST_FRACTION = 0.1  # the last 10 % of the characters (by position) are the test split
VOCAB = 128  # bytes 0..127 are themselves; every byte ≥ 128 (non-ASCII UTF-8) becomes 127
DEFAULT_CONTEXT = 32


@dataclass(frozen=True)
class TextDataset:
    """A character corpus as int64 tokens < ``num_classes``, split by position into train and test.

    An example is a window of ``T + 1`` consecutive tokens (non-overlapping, stride ``T``): x its
    first ``T``, y its last ``T`` (the next token of each position).
    """

    name: str
    train_tokens: torch.Tensor
    test_tokens: torch.Tensor
    num_classes: int
    info: dict = field(default_factory=dict)  # recorded in the trace meta as "dataset_info"
    kind = "text"
    in_channels = 1
    native_size = DEFAULT_CONTEXT  # tokens per example unless the model says otherwise

    def size(self, split: str = "train", context: int = DEFAULT_CONTEXT) -> int:
        """Examples (windows of ``context`` + 1 tokens) in ``split``."""
        tokens = self.train_tokens if split == "train" else self.test_tokens
        return max(0, (len(tokens) - 1) // context)

    def batches(self, *, split: str = "train", batch_size: int, image_size: int | None = None,
                shuffle: bool = False, generator: torch.Generator | None = None,
                limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Mini-batches (x, y) of shape (B, T), T = ``image_size`` (the context; the name is the image
        datasets' so one training loop serves both); ``limit`` keeps only the first windows."""
        t = image_size or self.native_size
        tokens = self.train_tokens if split == "train" else self.test_tokens
        total = self.size(split, t)
        n = total if limit is None else min(limit, total)
        order = torch.randperm(total, generator=generator)[:n] if shuffle else torch.arange(n)
        offsets = torch.arange(t + 1)
        for i in range(0, n, batch_size):
            win = tokens[order[i:i + batch_size, None] * t + offsets]
            yield win[:, :-1], win[:, 1:]


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def pystdlib(files: tuple[str, ...] = PYSTDLIB_FILES, root: Path | None = None) -> TextDataset:
    """The ``pystdlib`` corpus from this interpreter's standard library (``root``: its directory).

    The text depends on the Python version; ``info`` records it with a sha256 of the corpus bytes.
    """
    root = stdlib_dir() if root is None else Path(root)
    missing = [f"{m}.py" for m in files if not (root / f"{m}.py").is_file()]
    if missing:
        raise DataError(f"dataset 'pystdlib': standard-library source file(s) {', '.join(missing)} not found in "
                        f"{root} (this Python installation ships without .py sources; install them, e.g. the "
                        "distribution's python3-dev / libpython3-stdlib package, or use --dataset digits with an "
                        "image model)")
    raw = b"".join((root / f"{m}.py").read_bytes() for m in files)
    data = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    data = np.minimum(data, VOCAB - 1)
    cut = int(round(len(data) * (1 - PYSTDLIB_TEST_FRACTION)))
    info = {"python": sys.version.split()[0], "sha256": hashlib.sha256(raw).hexdigest(), "files": list(files),
            "chars": len(data), "train_chars": cut, "vocab": VOCAB, "split": "by position: last 10 % is test"}
    return TextDataset("pystdlib", torch.from_numpy(data[:cut].copy()), torch.from_numpy(data[cut:].copy()),
                       num_classes=VOCAB, info=info)
