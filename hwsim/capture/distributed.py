"""Synchronous data-parallel training with dithered backprop on N nodes (seed paper §3.6, §4.3).

Run under ``torchrun --nproc-per-node N -m hwsim trace ... --distributed``, or call
:func:`train_distributed` with a :class:`~hwsim.capture.config.TrainConfig` (read per node: its
``batch_size`` is each node's) and the distributed-only :class:`~hwsim.capture.config.DistributedOptions`
(s rule, learning-rate rule, BatchNorm mode, backend, steps) on every rank. It is hwsim's one training
loop (:func:`hwsim.capture.train.train_and_capture`) run by the :class:`DataParallel` strategy. Every rank (node)
runs the forward and the *dithered* backward of its own mini-batch (``hwsim trace --distributed``:
1 example by default, as in the paper), so NSD is applied per node, inside autograd, before the
parameter gradients are all-reduced: :func:`average_gradients` averages the N per-node NSD
gradients (the parameter server of the paper) and every node applies the same SGD step.

No ``DistributedDataParallel`` wrapper: it did the same average (divide by N, all-reduce sum;
``tests/ddp_grad_worker.py`` checks the two agree) and broadcast rank 0's buffers before every
forward (:func:`broadcast_state` does that here), but its reducer kept Gloo threads alive until
interpreter exit, where ~4 % of runs aborted with SIGABRT ("terminate called without an active
exception") after both ranks had finished. :func:`shutdown` collects garbage and waits at a
barrier before ``destroy_process_group()``.

Why s grows with N: each node's NSD noise is unbiased with variance ≤ Δ²/4 per element and the
N nodes draw independent dither, so the averaged gradient carries Δ²/(4N). :func:`scale_s` keeps
that averaged dither noise at the single-node level by Δ ∝ √N, i.e. ``s_N = s·√N`` (rule
``sqrt``, default); ``linear`` (s·N, stronger) and ``const`` are there to compare.

BatchNorm at batch 1 per node (``bn``):

* ``local`` (default): each node normalises with the statistics of its own batch — what DDP does
  without SyncBatchNorm. A BatchNorm2d over an H×W map has H·W values per channel even at batch 1;
  BN layers that would see a single value per channel (BatchNorm1d, 1×1 maps; PyTorch raises on
  them) are found by one dry forward and kept in eval mode (running statistics) for the whole run.
* ``frozen``: every BN layer in eval mode (running statistics; affine parameters still train).
* ``sync``: ``SyncBatchNorm`` across nodes — PyTorch supports it for GPU tensors only (it raises
  on CPU), so this needs CUDA + nccl.

Every rank writes its own trace to ``out/rank{r}`` (dither seed = seed + rank: independent noise);
rank 0 also writes ``out/run.json`` with every rank's summary.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from hwsim.capture.config import (
    BN_MODES,
    DEFAULT_BATCH,
    DEFAULT_LR,
    MODEL_KIND,
    S_RULES,
    CaptureConfig,
    DistributedOptions,
    TrainConfig,
)
from hwsim.capture.train import Strategy, TrainResult, train_and_capture
from hwsim.capture.zoo.data import resize

__all__ = ["BASE_BATCH", "BASE_LR", "BN_MODES", "S_RULES", "DataParallel", "DistributedOptions", "RankResult",
           "average_gradients", "broadcast_state", "check_distributable", "init_from_env", "scale_s", "scaled_lr",
           "shutdown", "single_value_bn_layers", "train_distributed"]
BASE_LR, BASE_BATCH = DEFAULT_LR, DEFAULT_BATCH  # hwsim trace's single-node defaults
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def scale_s(s: float, nodes: int, rule: str = "sqrt") -> float:
    """s used on each of ``nodes`` nodes for a single-node ``s`` (see the module docstring)."""
    if rule not in S_RULES:
        raise ValueError(f"s rule {rule!r} is unknown; choose one of {S_RULES}")
    return s * {"sqrt": math.sqrt(nodes), "linear": float(nodes), "const": 1.0}[rule]


def scaled_lr(global_batch: int, *, base_lr: float = BASE_LR, base_batch: int = BASE_BATCH) -> float:
    """Learning rate for a global batch by the linear scaling rule (Goyal et al. 2017).

    ``base_lr`` trains ``base_batch`` (0.05 at 64 on the embedded digits); a global batch of
    N nodes × b per node takes ``base_lr · N·b / base_batch``. The batch-64 rate at batch 1 per
    node (2 nodes: 32× too large a step per example) diverges to NaN within ~25 iterations.
    """
    if global_batch < 1:
        raise ValueError(f"global batch must be >= 1, got {global_batch!r}")
    return base_lr * global_batch / base_batch


@dataclasses.dataclass(frozen=True)
class RankResult:
    """One node's headline numbers (also its trace's summary)."""

    rank: int
    world_size: int
    s: float | None
    test_acc: float
    mean_density: float | None
    weighted_density: float | None
    max_bits: int
    iterations: int
    seconds: float
    trace: str | None


def single_value_bn_layers(net: nn.Module, *, batch: int, in_channels: int, image_size: int) -> list[str]:
    """Names of BN layers that see one value per channel at ``batch`` (they would raise in training)."""
    probe = copy.deepcopy(net).train()
    found: list[str] = []

    def pre(name: str):
        def hook(m: nn.Module, args: tuple) -> None:
            x = args[0]
            if x.numel() // max(1, x.shape[1]) <= 1:
                found.append(name)
                m.eval()
        return hook

    for name, m in probe.named_modules():
        if isinstance(m, _BN):
            m.register_forward_pre_hook(pre(name))
    with torch.no_grad():
        probe(torch.zeros(batch, in_channels, image_size, image_size))
    return found


def _set_train(net: nn.Module, eval_bn: set[str]) -> None:
    net.train()
    for name, m in net.named_modules():
        if name in eval_bn:
            m.eval()


def average_gradients(params: list[nn.Parameter], world: int) -> None:
    """Replace every ``p.grad`` by the mean over ranks (as DDP: divide by N, then all-reduce sum).

    One flat all-reduce for all parameters; a parameter without a gradient on this rank
    contributes zeros (every rank must reduce the same shapes).
    """
    if world == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads]).div_(world)
    dist.all_reduce(flat)
    o = 0
    for p in params:
        n = p.numel()
        p.grad = flat[o:o + n].view_as(p)
        o += n


def broadcast_state(net: nn.Module, *, params: bool = False) -> None:
    """Rank 0's buffers (BatchNorm running statistics), and parameters if ``params``, on every rank."""
    tensors = list(net.buffers()) + ([p for p in net.parameters()] if params else [])
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    with torch.no_grad():
        for group in groups.values():  # one collective per dtype
            flat = torch.cat([t.reshape(-1) for t in group])
            dist.broadcast(flat, src=0)
            o = 0
            for t in group:
                t.copy_(flat[o:o + t.numel()].view_as(t))
                o += t.numel()


def shutdown(*, ok: bool = True) -> None:
    """Leave the process group cleanly: free collected objects, wait for every rank, destroy.

    ``ok=False`` (this rank failed) skips the barrier: the other ranks may never reach it.
    """
    if not dist.is_initialized():
        return
    gc.collect()
    if ok:
        dist.barrier()
    dist.destroy_process_group()
    gc.collect()


def init_from_env(backend: str | None = None) -> tuple[int, int]:
    """Join the process group torchrun describes in the environment; (rank, world size)."""
    if not dist.is_initialized():
        if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
            raise ValueError("--distributed needs torchrun (RANK/WORLD_SIZE unset): "
                             "torchrun --nproc-per-node N -m hwsim trace ... --distributed")
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def check_distributable(config: TrainConfig) -> None:
    """What a TrainConfig must be to train data-parallel: an image model on the CPU."""
    if MODEL_KIND[config.model] != "image":
        raise ValueError(f"--model {config.model}: --distributed trains image models only (the language model's "
                         "token batches are not sharded yet); drop --distributed")
    if config.device != "cpu":
        raise ValueError(f"--device {config.device}: --distributed trains on the CPU (one process per node); "
                         "drop --device or --distributed")


class DataParallel(Strategy):
    """:func:`~hwsim.capture.train.train_and_capture` on every rank of a torchrun job (the module doc).

    All ranks shuffle with the same seed and rank r takes examples r, r+N, … of each global batch
    of N·``batch_size`` (an epoch drops the remainder so ranks stay in lock-step); rank r's dither
    seed is ``seed + r`` and its s the rule's; gradients are averaged after every backward and rank
    0's buffers broadcast before every forward and before evaluation. Each rank writes
    ``out/rank{r}``; rank 0 also ``out/run.json``. One instance per run.
    """

    def __init__(self, options: DistributedOptions | None = None) -> None:
        options = DistributedOptions() if options is None else options
        if not isinstance(options, DistributedOptions):
            raise TypeError(f"options must be a DistributedOptions, got {type(options).__name__}")
        self.options = options
        self.eval_bn: set[str] = set()

    def start(self, config: TrainConfig) -> None:
        check_distributable(config)
        self.config = config
        self.rank, self.world = init_from_env(self.options.backend)
        self.label = f" ×{self.world}"
        cc = config.capture
        self.node_s = scale_s(float(cc.s), self.world, self.options.s_rule) if cc.method == "dither" else None

    def trace_dir(self, out: str | os.PathLike | None) -> Path | None:
        return Path(out) / f"rank{self.rank}" if out is not None else None

    def learning_rate(self, config: TrainConfig) -> tuple[float, dict[str, Any]]:
        global_batch = self.world * config.batch_size
        if self.options.lr_rule == "linear":
            self.lr, self.lr_rule = (scaled_lr(global_batch, base_lr=config.lr),
                                     f"linear: {config.lr:g}·global batch/{BASE_BATCH}")
        else:
            self.lr, self.lr_rule = config.lr, "given"
        return self.lr, {"lr_rule": self.lr_rule, "global_batch": global_batch}

    def capture_config(self, config: CaptureConfig) -> CaptureConfig:
        return dataclasses.replace(config, s=self.node_s, seed=config.seed + self.rank)  # independent dither

    def prepare(self, net: nn.Module, *, batch_size: int, in_channels: int, image_size: int) -> nn.Module:
        bn = self.options.bn
        if bn == "frozen":
            self.eval_bn = {n for n, m in net.named_modules() if isinstance(m, _BN)}
        elif bn == "sync":
            if not torch.cuda.is_available():
                raise ValueError("--bn sync: SyncBatchNorm supports GPU tensors only (CUDA + nccl); "
                                 "on CPU use --bn local or --bn frozen")
            net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        else:
            self.eval_bn = set(single_value_bn_layers(net, batch=batch_size, in_channels=in_channels,
                                                      image_size=image_size))
        broadcast_state(net, params=True)  # identical start everywhere (the seeds already agree)
        return net

    def schedule(self, config: TrainConfig, n_train: int) -> tuple[int, int, int]:
        per_epoch = n_train // (self.world * config.batch_size)
        if per_epoch < 1:
            raise ValueError(f"{n_train} training examples < {self.world} nodes × batch {config.batch_size}")
        steps = self.options.steps
        self.epochs = math.ceil(steps / per_epoch) if steps is not None else config.epochs
        self.total = steps if steps is not None else self.epochs * per_epoch
        return self.epochs, per_epoch, self.total

    def epoch_batches(self, data: Any, *, shuffle: torch.Generator, n_train: int, batch_size: int,
                      image_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(data.train_y), generator=shuffle)[:n_train]
        step = self.world * batch_size
        for i in range(n_train // step):
            idx = order[i * step:(i + 1) * step][self.rank::self.world]
            yield resize(data.train_x[idx], image_size), data.train_y[idx]

    def train_mode(self, net: nn.Module) -> None:
        _set_train(net, self.eval_bn)

    def before_forward(self, net: nn.Module) -> None:
        broadcast_state(net)  # rank 0's BN statistics before every forward, as DDP did

    def after_backward(self, params: list[nn.Parameter]) -> None:
        average_gradients(params, self.world)

    def before_eval(self, net: nn.Module) -> None:
        broadcast_state(net)  # every rank evaluates the same model

    def meta(self) -> dict[str, Any]:
        o, cc = self.options, self.config.capture
        return {"distributed": True, "rank": self.rank, "world_size": self.world, "s_base": cc.s, "s_rule": o.s_rule,
                "bn": o.bn, "bn_eval_layers": sorted(self.eval_bn), "backend": dist.get_backend(), "steps": self.total}

    def summary(self, *, test_acc: float, train_loss: float | None, seconds: float) -> dict[str, Any]:
        return {"test_acc": test_acc, "seconds": seconds}  # a rank's epoch loss covers its shard only: left out

    def rank_result(self, result: TrainResult) -> RankResult:
        return RankResult(rank=self.rank, world_size=self.world, s=self.node_s, test_acc=result.test_acc,
                          mean_density=result.mean_density, weighted_density=result.weighted_density,
                          max_bits=result.max_bits, iterations=result.iterations, seconds=result.seconds,
                          trace=str(result.trace) if result.trace is not None else None)

    def finish(self, result: TrainResult, out: str | os.PathLike | None) -> None:
        """Every rank's :class:`RankResult` to rank 0, which writes ``out/run.json``."""
        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, dataclasses.asdict(self.rank_result(result)))
        if self.rank == 0 and out is not None:
            c, o = self.config, self.options
            run = {"world_size": self.world, "s_base": c.capture.s, "s_rule": o.s_rule, "s_node": self.node_s,
                   "method": c.capture.method, "model": c.model, "dataset": c.dataset,
                   "batch_per_node": c.batch_size, "epochs": self.epochs, "lr": self.lr, "lr_rule": self.lr_rule,
                   "steps": self.total, "int8": c.int8, "bn": o.bn, "ranks": gathered}
            tmp = Path(out) / "run.json.tmp"
            tmp.write_text(json.dumps(run, indent=1))
            tmp.replace(Path(out) / "run.json")


def train_distributed(config: TrainConfig, options: DistributedOptions | None = None, *,
                      out: str | os.PathLike | None = None, overwrite: bool = False,
                      progress: bool = False) -> RankResult:
    """Train ``config`` on every rank of the torchrun job; ``config.batch_size`` is per node.

    ``options`` (default ``DistributedOptions()``) adds the distributed-only fields: the s rule
    (``config.capture.s`` is the single-node s), the learning-rate rule (default: ``config.lr``
    scaled linearly with the global batch, :func:`scaled_lr`), BatchNorm mode, backend and ``steps``
    (train exactly that many iterations, as many epochs as needed, instead of ``config.epochs``).
    :func:`hwsim.capture.train.train_and_capture` with the :class:`DataParallel` strategy. The
    manifest's meta records ``lr`` and ``lr_rule``. Returns this rank's numbers; the process group
    is left initialised for the caller.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    strategy = DataParallel(options)
    result = train_and_capture(config, strategy=strategy, out=out, overwrite=overwrite, progress=progress)
    return strategy.rank_result(result)
