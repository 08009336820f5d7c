"""What a capture and a training run are: frozen values that validate themselves on construction,
and the one home of every default and name they use.

* :class:`CaptureConfig` — how δz is treated and recorded (:class:`hwsim.capture.session.Capture`;
  :func:`hwsim.capture` builds one from its keywords).
* :class:`TrainConfig` — hwsim's own training run (:func:`hwsim.capture.train.train_and_capture`,
  ``hwsim trace``, the demo and the experiments): model, data, SGD, device and its ``capture``.
* :class:`DistributedOptions` — what a data-parallel run of that loop adds
  (:func:`hwsim.capture.distributed.train_distributed`, ``hwsim trace --distributed``).
* The ``DEFAULT_*`` constants, the model / dataset names and kinds (:data:`MODEL_KIND`, :data:`DATASET_KIND`,
  :func:`default_dataset`) and the choices (:data:`METHODS`, :data:`S_RULES`, ...): defined here only. The
  quantizers, the zoo, ``hwsim trace`` (whose ``--help`` must not import torch) and the experiments read them
  from here.

This module does not import torch (``tests/test_unit_capture_config.py`` checks it in a fresh interpreter):
constructing a :class:`TrainConfig` imports it only to parse the device name. A bad field raises
``ValueError`` naming the field and what is allowed, before any training starts; ``dataclasses.replace``
builds a new value and validates it again. Nothing here touches a device or the disk: whether a device
exists (:func:`hwsim.capture.train.resolve_device`), a dataset's files are there or an output directory is
free is checked when the run starts.
"""

from __future__ import annotations

import dataclasses
import operator
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hwsim.capture.srule import SRule

if TYPE_CHECKING:
    import torch

# ----------------------------------------------------------------------------- names and defaults

METHODS = ("dither", "meprop", "none")  # what is done to δz
# The dither's random stream: "counter" — each element's u a hash of (seed, iteration, call, element index), the same
# bits on every path and device (hwsim.capture.quant_counter; 2026-12-07, issue 21: ~2× less CPU per element than
# the sequential stream); "sfc64" — numpy's sequential SFC64 stream of traces made before (CPU; a torch.Generator on
# other devices), to reproduce them. Traces without meta.dither_rng were made with sfc64.
DITHER_RNGS = ("counter", "sfc64")
DEFAULT_DITHER_RNG = "counter"


def check_dither_rng(value: object, field: str = "dither_rng") -> None:
    """Raise a one-line ValueError naming ``field`` and :data:`DITHER_RNGS` unless ``value`` is one of them (the
    check of every configuration that carries a dither stream: :class:`CaptureConfig`, the experiments')."""
    if not isinstance(value, str) or value not in DITHER_RNGS:
        raise ValueError(f"{field} must be one of {', '.join(DITHER_RNGS)}, got {value!r}")

# s = 4 gives >= 90 % δ̃z sparsity at <= 1 point accuracy change on digits for mlp500,
# lenet300 and lenet5 (README table); for Gaussian δz the density would be about 0.8/s.
DEFAULT_S = 4.0
DEFAULT_K = 20  # meProp: kept per example
DEFAULT_SAMPLE_EVERY = 50
DEFAULT_STATS_EVERY = 1
DEFAULT_SEED = 0

# The zoo's models (hwsim.capture.zoo.models.MODELS builds them; a test checks the names agree) and what each
# reads: "image" (N, C, H, W) floats → class logits, or "text" (N, T) token ids → (N, T, vocab) logits.
MODEL_KIND = {"mlp500": "image", "lenet300": "image", "lenet5": "image", "alexnet_cifar": "image",
              "vgg11_cifar": "image", "resnet18_cifar": "image", "resnet18": "image", "vit_digits": "image",
              "gpt_char": "text"}
# Datasets (hwsim.capture.zoo.data loads them) and the kind of their batches; a model trains on its kind only.
DATASETS = ("digits", "mnist", "cifar10", "cifar100", "pystdlib")
DATASET_KIND = {name: "text" if name == "pystdlib" else "image" for name in DATASETS}
DEFAULT_DATASETS = {"image": "digits", "text": "pystdlib"}  # embedded: no download, no --data-dir

DEFAULT_EPOCHS = 20
DEFAULT_BATCH = 64
DEFAULT_LR = 0.05
DEFAULT_MOMENTUM = 0.9
DEFAULT_WEIGHT_DECAY = 5e-4
DEFAULT_DEVICE = "cpu"

S_RULES = ("sqrt", "linear", "const")
LR_RULES = ("linear", "given")
BN_MODES = ("local", "frozen", "sync")
DEFAULT_S_RULE, DEFAULT_LR_RULE, DEFAULT_BN = "sqrt", "linear", "local"
DEFAULT_BATCH_PER_NODE = 1  # hwsim trace --distributed: the paper's one example per node


class DataError(ValueError):
    """Unknown dataset, missing or malformed files: the message says what to do."""


def default_dataset(model: str) -> str:
    """The dataset ``model`` trains on when none is given: the embedded one of its kind (an unknown model: images)."""
    return DEFAULT_DATASETS[MODEL_KIND.get(model, "image")]


def dataset_for(model: str, dataset: str | None) -> str:
    """The dataset ``model`` trains on: ``dataset``, or :func:`default_dataset`; a dataset of the other kind is a
    :class:`DataError` naming both flags."""
    kind = MODEL_KIND.get(model, "image")
    if dataset is None:
        return default_dataset(model)
    if dataset in DATASET_KIND and DATASET_KIND[dataset] != kind:
        allowed = ", ".join(d for d, k in DATASET_KIND.items() if k == kind)
        what = "a language model (token sequences)" if kind == "text" else "an image model"
        raise DataError(f"--model {model} is {what}; --dataset {dataset} holds "
                        f"{'text' if DATASET_KIND[dataset] == 'text' else 'images'}. "
                        f"Use --dataset {allowed.replace(', ', ' or ')} (or drop --dataset for the default)")
    return dataset


def validate_params(*, method: str, s: float | None, k: int | None) -> None:
    """Fail early (before training) on a bad method / s / k."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is unknown; choose one of {METHODS}")
    if method == "dither" and (s is None or not float(s) > 0):
        raise ValueError(f"s must be > 0 for method 'dither', got {s!r}")
    if method == "meprop" and (k is None or isinstance(k, bool) or not isinstance(k, int) or k <= 0):
        raise ValueError(f"k must be a positive integer for method 'meprop', got {k!r}")


# ----------------------------------------------------------------------------- the frozen configs

ITERATION_MODES = ("auto", "step")


def _is_int(v: Any) -> bool:
    """An integer (int, numpy integer...), not a bool."""
    if isinstance(v, bool):
        return False
    try:
        operator.index(v)
    except TypeError:
        return False
    return True


@dataclass(frozen=True)
class CaptureConfig:
    """How :class:`~hwsim.capture.session.Capture` treats δz and what it records.

    ``method``: ``dither`` (NSD, Δ = s·std(δz); ``s`` defaults to :data:`DEFAULT_S`),
    ``meprop`` (top-``k`` per example; ``k`` required) or ``none``. ``sample_every``: store the operands
    of every this many iterations (0: never, unless asked). ``seed``: the dither's random stream.
    ``max_examples``: store only the first examples of each batch in sampled iterations.
    ``dither_attention``: also dither δz of attention's activation×activation products.
    ``iteration``: ``auto`` (a training forward after a backward starts an iteration) or ``step``
    (only ``cap.step()`` ends one). ``stats_every``: write per-layer statistics every this many
    iterations (and of every sampled one). ``s_layers``: per-layer s for dither (:mod:`hwsim.capture.srule`:
    ``"depth"``, a ``{glob: s}`` mapping or ``"glob=s,..."``; None = ``s`` everywhere). ``dither_rng``: the
    dither's random stream, ``counter`` (default; :mod:`hwsim.capture.quant_counter`) or ``sfc64`` (the stream of
    older traces) — :data:`DITHER_RNGS`.
    """

    method: str = "dither"
    s: float | None = None
    k: int | None = None
    sample_every: int = DEFAULT_SAMPLE_EVERY
    seed: int = DEFAULT_SEED
    max_examples: int | None = None
    dither_attention: bool = False
    iteration: str = "auto"
    stats_every: int = DEFAULT_STATS_EVERY
    s_layers: Any = None
    dither_rng: str = DEFAULT_DITHER_RNG

    def __post_init__(self) -> None:
        if self.method == "dither" and self.s is None:
            object.__setattr__(self, "s", DEFAULT_S)
        validate_params(method=self.method, s=self.s, k=self.k)
        if self.s_layers is not None and self.method != "dither":
            raise ValueError(f"s_layers applies to method 'dither' only (method is {self.method!r}); drop it")
        if self.method == "dither":  # normalised: None, the rule's name or a read-only {glob: s} mapping
            rule = SRule.parse(float(self.s), self.s_layers)  # type: ignore[arg-type]
            object.__setattr__(self, "s_layers", rule.meta() if rule.rule else (rule.globs if rule.globs else None))
        if not _is_int(self.sample_every) or self.sample_every < 0:
            raise ValueError(f"sample_every must be >= 0 (0 = never), got {self.sample_every!r}")
        if not _is_int(self.stats_every) or self.stats_every < 1:
            raise ValueError(f"stats_every must be an integer >= 1 (1 = every iteration), got {self.stats_every!r}")
        if self.max_examples is not None and (not _is_int(self.max_examples) or self.max_examples < 1):
            raise ValueError(f"max_examples must be >= 1 or None, got {self.max_examples!r}")
        if self.iteration not in ITERATION_MODES:
            raise ValueError(f"iteration must be 'auto' or 'step', got {self.iteration!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        check_dither_rng(self.dither_rng)
        if not isinstance(self.dither_attention, bool):
            raise ValueError(f"dither_attention must be True or False, got {self.dither_attention!r}")
        for name in ("sample_every", "stats_every", "seed"):  # numpy integers → int (JSON meta, arithmetic)
            object.__setattr__(self, name, int(getattr(self, name)))

    def srule(self) -> SRule:
        """Each layer's s (:mod:`hwsim.capture.srule`); for methods other than dither, ``s`` is unused."""
        return SRule.parse(float(self.s) if self.s is not None else 1.0, self.s_layers)

    def meta(self) -> dict[str, Any]:
        """The trace meta fields this configuration fixes (s only for dither, k only for meProp)."""
        rule = {"s_layers": self.srule().meta()} if self.s_layers is not None else {}  # only when set
        return {"method": self.method, "s": float(self.s) if self.method == "dither" else None, **rule,
                "k": self.k if self.method == "meprop" else None, "seed": self.seed,
                "sample_every": self.sample_every, "stats_every": self.stats_every,
                "max_examples": self.max_examples, "dither_attention": self.dither_attention,
                "dither_rng": self.dither_rng}


@dataclass(frozen=True)
class TrainConfig:
    """One run of hwsim's training loop (:func:`hwsim.capture.train.train_and_capture`).

    ``model``: a zoo model (:data:`MODEL_KIND`). ``dataset`` defaults to the model's kind
    (:func:`default_dataset`: ``digits`` for image models, ``pystdlib`` for the language model ``gpt_char``);
    a dataset of the other kind is rejected. SGD with ``lr`` (cosine to 0 over all iterations), ``momentum``,
    ``weight_decay``. ``image_size``: resize images (gpt_char: its context in tokens; default: what
    the model expects). ``limit_train``: train on the first examples only. ``int8``: 8-bit forward
    operands (:mod:`hwsim.capture.int8`). ``device``: a torch device name (``cpu``, ``cuda``,
    ``cuda:1``, ``mps``; whether this machine has it is checked when the run starts).
    ``capture``: what is done to δz and recorded; its ``seed`` also seeds the weights and the data order.
    """

    model: str
    dataset: str | None = None
    data_dir: str | os.PathLike | None = None
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH
    lr: float = DEFAULT_LR
    momentum: float = DEFAULT_MOMENTUM
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    image_size: int | None = None
    limit_train: int | None = None
    int8: bool = False
    device: str = DEFAULT_DEVICE
    capture: CaptureConfig = field(default_factory=CaptureConfig)

    def __post_init__(self) -> None:
        if self.model not in MODEL_KIND:
            raise ValueError(f"unknown model {self.model!r}; choose one of: {', '.join(MODEL_KIND)}")
        if self.dataset is not None and self.dataset not in DATASETS:
            raise DataError(f"unknown dataset {self.dataset!r}; choose one of: {', '.join(DATASETS)}")
        object.__setattr__(self, "dataset", dataset_for(self.model, self.dataset))
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.lr, (int, float)) or isinstance(self.lr, bool) or not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        if not isinstance(self.momentum, (int, float)) or not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not isinstance(self.weight_decay, (int, float)) or not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for name in ("image_size", "limit_train"):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
        if not isinstance(self.int8, bool):
            raise ValueError(f"int8 must be True or False, got {self.int8!r}")
        parse_device(self.device)
        if not isinstance(self.capture, CaptureConfig):
            raise ValueError(f"capture must be a CaptureConfig, got {type(self.capture).__name__}")

    @property
    def seed(self) -> int:
        """Seed of the weights, the data order and the dither (``capture.seed``)."""
        return self.capture.seed

    def with_capture(self, **changes: Any) -> TrainConfig:
        """This run with ``capture`` fields changed (validated again), e.g. ``cfg.with_capture(method="none")``."""
        return dataclasses.replace(self, capture=dataclasses.replace(self.capture, **changes))

    def meta(self) -> dict[str, Any]:
        """The trace meta fields of the training run (the capture's come from :meth:`CaptureConfig.meta`)."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "optimizer": "sgd+cosine"}


def parse_device(name: Any, *, flag: str = "--device") -> torch.device:
    """``name`` as a torch device (not yet checked to exist here: :func:`hwsim.capture.train.resolve_device`);
    a ValueError naming ``flag`` and the allowed forms otherwise."""
    import torch

    if isinstance(name, str):
        try:
            return torch.device(name)
        except (RuntimeError, TypeError):
            pass
    raise ValueError(f"{flag} {name!r} is not a torch device; allowed: cpu, cuda, cuda:N, mps")


@dataclass(frozen=True)
class DistributedOptions:
    """The fields only a data-parallel run needs (:func:`hwsim.capture.distributed.train_distributed`).

    The run's :class:`TrainConfig` keeps every other field and is read per node: ``batch_size`` is each
    node's mini-batch (global batch N·``batch_size``), ``capture.s`` the single-node s and
    ``capture.seed + rank`` node ``rank``'s dither seed.

    ``s_rule``: s on each of N nodes — ``sqrt`` (s·√N, default: same averaged dither noise as one node),
    ``linear`` (s·N) or ``const`` (s). ``lr_rule``: ``linear`` (default) reads the TrainConfig's ``lr`` as
    the rate of a batch of :data:`DEFAULT_BATCH` and steps with ``lr``·N·``batch_size``/64, the linear
    scaling rule (:func:`hwsim.capture.distributed.scaled_lr`; the default 0.05 gives 0.05·N·b/64);
    ``given`` uses ``lr`` as it is. ``bn``: BatchNorm per node — ``local``, ``frozen`` or ``sync`` (module
    doc of :mod:`hwsim.capture.distributed`). ``backend``: a ``torch.distributed`` backend name (None:
    nccl with CUDA, else gloo). ``steps``: train exactly this many iterations instead of the
    TrainConfig's ``epochs`` (None: epochs).
    """

    s_rule: str = DEFAULT_S_RULE
    lr_rule: str = DEFAULT_LR_RULE
    bn: str = DEFAULT_BN
    backend: str | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if self.s_rule not in S_RULES:
            raise ValueError(f"s rule {self.s_rule!r} is unknown; choose one of {S_RULES}")
        if self.lr_rule not in LR_RULES:
            raise ValueError(f"lr rule {self.lr_rule!r} is unknown; choose one of {LR_RULES}")
        if self.bn not in BN_MODES:
            raise ValueError(f"bn {self.bn!r} is unknown; choose one of {BN_MODES}")
        if self.backend is not None and (not isinstance(self.backend, str) or not self.backend):
            raise ValueError(f"backend must be a torch.distributed backend name or None, got {self.backend!r}")
        if self.steps is not None:
            if not _is_int(self.steps) or self.steps < 1:
                raise ValueError(f"steps must be a positive integer or None, got {self.steps!r}")
            object.__setattr__(self, "steps", int(self.steps))
