"""Synchronous data-parallel training with dithered backprop on N nodes (seed paper §3.6, §4.3).

Run under ``torchrun --nproc-per-node N -m hwsim trace ... --distributed``, or call
:func:`train_distributed` with a :class:`~hwsim.capture.config.TrainConfig` (read per node: its
``batch_size`` is each node's) and the distributed-only :class:`~hwsim.capture.config.DistributedOptions`
(s rule, learning-rate rule, BatchNorm mode, backend, steps) on every rank. Every rank (node)
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
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from hwsim.capture.config import BN_MODES, DEFAULT_BATCH, DEFAULT_LR, S_RULES, DistributedOptions, TrainConfig
from hwsim.capture.session import Capture
from hwsim.capture.train import evaluate, interrupt_safe
from hwsim.capture.zoo.data import load_dataset, resize
from hwsim.capture.zoo.models import KIND, PREFERRED_SIZE, build_model

__all__ = ["BASE_BATCH", "BASE_LR", "BN_MODES", "S_RULES", "DistributedOptions", "RankResult", "average_gradients",
           "broadcast_state", "check_distributable", "init_from_env", "scale_s", "scaled_lr", "shutdown",
           "single_value_bn_layers", "train_distributed"]
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
    if KIND[config.model] != "image":
        raise ValueError(f"--model {config.model}: --distributed trains image models only (the language model's "
                         "token batches are not sharded yet); drop --distributed")
    if config.device != "cpu":
        raise ValueError(f"--device {config.device}: --distributed trains on the CPU (one process per node); "
                         "drop --device or --distributed")


def train_distributed(config: TrainConfig, options: DistributedOptions | None = None, *,
                      out: str | os.PathLike | None = None, overwrite: bool = False,
                      progress: bool = False) -> RankResult:
    """Train ``config`` on every rank of the torchrun job; ``config.batch_size`` is per node.

    ``options`` (default ``DistributedOptions()``) adds the distributed-only fields: the s rule
    (``config.capture.s`` is the single-node s), the learning-rate rule (default: ``config.lr``
    scaled linearly with the global batch, :func:`scaled_lr`), BatchNorm mode, backend and ``steps``.
    All ranks shuffle with the same seed and rank r takes examples r, r+N, … of each global batch
    (an epoch drops the remainder so ranks stay in lock-step); rank r's dither seed is
    ``config.seed + r``. ``steps`` trains exactly that many iterations (as many epochs as needed)
    instead of ``config.epochs``. The manifest's meta records ``lr`` and ``lr_rule``. Returns this
    rank's numbers; the process group is left initialised for the caller.
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    options = DistributedOptions() if options is None else options
    if not isinstance(options, DistributedOptions):
        raise TypeError(f"options must be a DistributedOptions, got {type(options).__name__}")
    check_distributable(config)
    c, cc, bn = config, config.capture, options.bn
    model, dataset, method, batch_size, epochs = c.model, c.dataset, cc.method, c.batch_size, c.epochs
    base_s, seed = cc.s, c.seed
    rank, world = init_from_env(options.backend)
    node_s = scale_s(float(base_s), world, options.s_rule) if method == "dither" else None
    if options.lr_rule == "linear":
        lr, lr_rule = scaled_lr(world * batch_size, base_lr=c.lr), f"linear: {c.lr:g}·global batch/{BASE_BATCH}"
    else:
        lr, lr_rule = c.lr, "given"
    rank_out = Path(out) / f"rank{rank}" if out is not None else None
    if rank_out is not None and (rank_out / "manifest.json").exists() and not overwrite:
        raise FileExistsError(f"{rank_out}: a trace already exists here (pass --overwrite to replace it)")
    t0 = time.perf_counter()
    data = load_dataset(dataset, data_dir=c.data_dir)
    size = c.image_size or PREFERRED_SIZE.get(model) or data.native_size
    torch.manual_seed(seed)  # same initial weights everywhere (rank 0's are also broadcast)
    net = build_model(model, in_channels=data.in_channels, num_classes=data.num_classes, image_size=size)
    if c.int8:
        from hwsim.capture.int8 import quantize_model

        quantize_model(net)
    eval_bn: set[str] = set()
    if bn == "frozen":
        eval_bn = {n for n, m in net.named_modules() if isinstance(m, _BN)}
    elif bn == "sync":
        if not torch.cuda.is_available():
            raise ValueError("--bn sync: SyncBatchNorm supports GPU tensors only (CUDA + nccl); "
                             "on CPU use --bn local or --bn frozen")
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    else:
        eval_bn = set(single_value_bn_layers(net, batch=batch_size, in_channels=data.in_channels,
                                             image_size=size))
    broadcast_state(net, params=True)  # identical start everywhere (the seeds already agree)
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=c.momentum, weight_decay=c.weight_decay)
    n_train = len(data.train_y) if c.limit_train is None else min(c.limit_train, len(data.train_y))
    per_epoch = n_train // (world * batch_size)
    if per_epoch < 1:
        raise ValueError(f"{n_train} training examples < {world} nodes × batch {batch_size}")
    steps = options.steps
    if steps is not None:
        epochs = math.ceil(steps / per_epoch)
    total = steps if steps is not None else epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / total)))
    shuffle = torch.Generator().manual_seed(seed)
    meta = {"model": model, "dataset": dataset, "image_size": size, "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "lr_rule": lr_rule, "global_batch": world * batch_size, "momentum": c.momentum,
            "weight_decay": c.weight_decay, "optimizer": "sgd+cosine",
            "distributed": True, "rank": rank, "world_size": world, "s_base": base_s, "s_rule": options.s_rule,
            "bn": bn, "bn_eval_layers": sorted(eval_bn), "backend": dist.get_backend(), "steps": total}
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"{model}/{method} ×{world}", unit="it", dynamic_ncols=True)
    node_capture = dataclasses.replace(cc, s=node_s, seed=seed + rank)  # s·rule, independent dither per node
    with interrupt_safe(Capture(net, node_capture, out=rank_out, meta=meta, overwrite=overwrite)) as cap:
        it = 0
        for epoch in range(epochs):
            _set_train(net, eval_bn)
            order = torch.randperm(len(data.train_y), generator=shuffle)[:n_train]
            for i in range(min(per_epoch, total - it)):
                glob = order[i * world * batch_size:(i + 1) * world * batch_size]
                idx = glob[rank::world]
                x, y = data.train_x[idx], data.train_y[idx]
                x = resize(x, size)
                if it == total - 1:
                    cap.sample_next()
                broadcast_state(net)  # rank 0's BN statistics before every forward, as DDP did
                logits = net(x)
                loss = F.cross_entropy(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # δ̃z per node (capture) ...
                average_gradients(params, world)  # ... then the mean over nodes
                opt.step()
                sched.step()
                lv = float(loss.detach())
                cap.step(loss=lv, acc=float((logits.argmax(1) == y).float().mean()), epoch=epoch)
                it += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{lv:.3f}", dens=f"{cap.last_density or 0:.3f}")
        broadcast_state(net)  # every rank evaluates the same model
        test_acc = evaluate(net, data, image_size=size, batch_size=256)
        summary = cap.summary()
        seconds = time.perf_counter() - t0
        cap.add_summary(test_acc=test_acc, seconds=seconds)
    if bar is not None:
        bar.close()
    res = RankResult(rank=rank, world_size=world, s=node_s, test_acc=test_acc,
                     mean_density=summary["mean_density"], weighted_density=summary["weighted_density"],
                     max_bits=int(summary["max_bits"]), iterations=int(summary["iterations"]), seconds=seconds,
                     trace=str(rank_out) if rank_out is not None else None)
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, dataclasses.asdict(res))
    if rank == 0 and out is not None:
        run = {"world_size": world, "s_base": base_s, "s_rule": options.s_rule, "s_node": node_s, "method": method,
               "model": model, "dataset": dataset, "batch_per_node": batch_size, "epochs": epochs, "lr": lr,
               "lr_rule": lr_rule, "steps": total, "int8": c.int8, "bn": bn, "ranks": gathered}
        tmp = Path(out) / "run.json.tmp"
        tmp.write_text(json.dumps(run, indent=1))
        tmp.replace(Path(out) / "run.json")
    return res
