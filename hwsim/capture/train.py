"""hwsim's one training loop around :class:`hwsim.capture.session.Capture`, for one process or many.

Used by ``hwsim trace`` (also ``--distributed`` under torchrun), ``hwsim demo`` and the experiments: one
:class:`~hwsim.capture.config.TrainConfig` (validated on construction) says what to build and how to
train it — a zoo model, SGD (momentum 0.9, weight decay 5e-4, as the seed paper) under dithered
backprop / meProp / plain backprop; :func:`train_and_capture` records a trace and reports the final
test accuracy (also written to the manifest's summary).

The loop (epochs and iterations, NSD capture, evaluation, trace writing, summary) is written once;
a :class:`Strategy` says how the run is spread over processes: :class:`SingleProcess` (the default)
or :class:`hwsim.capture.distributed.DataParallel` (torchrun: batch shards, gradient all-reduce,
rank 0's buffers broadcast, the s / learning-rate / BatchNorm rules, ``run.json`` from rank 0).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hwsim.capture.config import (
    DEFAULT_BATCH,
    DEFAULT_EPOCHS,
    DEFAULT_K,
    DEFAULT_LR,
    DEFAULT_S,
    CaptureConfig,
    TrainConfig,
    parse_device,
)
from hwsim.capture.session import Capture
from hwsim.capture.zoo.data import load_dataset
from hwsim.capture.zoo.models import PREFERRED_SIZE, build_model

__all__ = ["DEFAULT_BATCH", "DEFAULT_EPOCHS", "DEFAULT_K", "DEFAULT_LR", "DEFAULT_S", "CaptureConfig", "SingleProcess",
           "Strategy", "TrainConfig", "TrainResult", "evaluate", "interrupt_safe", "resolve_device", "train_and_capture"]


@dataclass(frozen=True)
class TrainResult:
    """What a capture run produced: the trace (None if not written) and the headline numbers."""

    trace: Path | None
    test_acc: float
    train_loss: float | None
    mean_density: float | None  # mean over (layer, iteration) of δ̃z density, as the paper's Table 1
    weighted_density: float | None  # non-zeros / elements over all layers and iterations
    max_bits: int
    iterations: int
    seconds: float


class Strategy:
    """How :func:`train_and_capture` spreads one run over processes; the hooks are called in this order.

    One instance per run (it keeps what it learns on the way: rank, world size, the schedule). The base
    class is one process that trains on every batch; subclasses override what differs.
    """

    rank, world, label = 0, 1, ""  # label: added to the progress bar's description

    def start(self, config: TrainConfig) -> None:
        """Check ``config`` fits this strategy and join whatever the run needs (before anything is loaded)."""

    def trace_dir(self, out: str | os.PathLike | None) -> Path | None:
        """Where this process writes its trace."""
        return Path(out) if out is not None else None

    def learning_rate(self, config: TrainConfig) -> tuple[float, dict[str, Any]]:
        """The SGD rate and the meta fields that explain it (written after ``lr``)."""
        return config.lr, {}

    def capture_config(self, config: CaptureConfig) -> CaptureConfig:
        """What this process does to δz."""
        return config

    def prepare(self, net: nn.Module, *, batch_size: int, in_channels: int, image_size: int) -> nn.Module:
        """The model every process starts from (built, 8-bit if asked, on its device)."""
        return net

    def schedule(self, config: TrainConfig, n_train: int) -> tuple[int, int, int]:
        """(epochs, iterations per epoch, iterations in all) for ``n_train`` examples."""
        raise NotImplementedError

    def epoch_batches(self, data: Any, *, shuffle: torch.Generator, n_train: int, batch_size: int,
                      image_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This process's (x, y) batches of one epoch, in order (the loop takes the schedule's count)."""
        raise NotImplementedError

    def train_mode(self, net: nn.Module) -> None:
        net.train()

    def before_forward(self, net: nn.Module) -> None:
        """Before every training forward."""

    def after_backward(self, params: list[nn.Parameter]) -> None:
        """Between the (captured) backward and the optimizer step."""

    def before_eval(self, net: nn.Module) -> None:
        """Before the test-set evaluation."""

    def meta(self) -> dict[str, Any]:
        """Trace meta fields of this strategy (after the training fields)."""
        return {}

    def summary(self, *, test_acc: float, train_loss: float | None, seconds: float) -> dict[str, Any]:
        """What the loop adds to the trace's summary."""
        return {"test_acc": test_acc, "train_loss": train_loss, "seconds": seconds}

    def finish(self, result: TrainResult, out: str | os.PathLike | None) -> None:
        """After the trace is closed (e.g. gather the ranks' results)."""


class SingleProcess(Strategy):
    """One process on ``config.device``: every batch of the (shuffled) training set, the last one short."""

    def schedule(self, config: TrainConfig, n_train: int) -> tuple[int, int, int]:
        per_epoch = math.ceil(n_train / config.batch_size)
        return config.epochs, per_epoch, config.epochs * per_epoch

    def epoch_batches(self, data: Any, *, shuffle: torch.Generator, n_train: int, batch_size: int,
                      image_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return data.batches(split="train", batch_size=batch_size, image_size=image_size, shuffle=True,
                            generator=shuffle, limit=n_train)


def train_and_capture(config: TrainConfig, *, strategy: Strategy | None = None, out: str | os.PathLike | None = None,
                      overwrite: bool = False, progress: bool = False) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` with δ̃z from ``config.capture`` and write a trace to ``out``.

    A language model (``gpt_char``) trains on cross-entropy over every token; its accuracy is next-token
    accuracy. The learning rate follows a cosine schedule to 0 over all iterations; the last iteration is
    always sampled. ``out=None`` writes nothing; an existing trace there needs ``overwrite``.
    ``progress`` shows a tqdm bar. On a GPU ``device``, NSD and its statistics run there too
    (:mod:`hwsim.capture.quant_device`). See :class:`~hwsim.capture.config.TrainConfig` for the fields.
    ``strategy``: :class:`SingleProcess` (default) or a :class:`~hwsim.capture.distributed.DataParallel`
    (:func:`hwsim.capture.distributed.train_distributed`).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    strategy = SingleProcess() if strategy is None else strategy
    if not isinstance(strategy, Strategy):
        raise TypeError(f"strategy must be a hwsim.capture.train.Strategy, got {type(strategy).__name__}")
    c = config
    strategy.start(c)
    trace_dir = strategy.trace_dir(out)
    if trace_dir is not None and (trace_dir / "manifest.json").exists() and not overwrite:
        raise FileExistsError(f"{trace_dir}: a trace already exists here (pass --overwrite to replace it)")
    dev = resolve_device(c.device)
    lr, lr_meta = strategy.learning_rate(c)
    cc = strategy.capture_config(c.capture)
    t0 = time.perf_counter()
    data = load_dataset(c.dataset, data_dir=c.data_dir)
    size = c.image_size or PREFERRED_SIZE.get(c.model) or data.native_size
    torch.manual_seed(c.seed)  # the same initial weights in every process
    net = build_model(c.model, in_channels=data.in_channels, num_classes=data.num_classes, image_size=size)
    if c.int8:
        from hwsim.capture.int8 import quantize_model

        quantize_model(net)
    net = strategy.prepare(net.to(dev), batch_size=c.batch_size, in_channels=data.in_channels, image_size=size)
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=c.momentum, weight_decay=c.weight_decay)
    n_train = data.size("train", size) if c.limit_train is None else min(c.limit_train, data.size("train", size))
    epochs, per_epoch, total = strategy.schedule(c, n_train)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / total)))
    shuffle = torch.Generator().manual_seed(c.seed)  # the same data order in every process
    meta = {"model": c.model, "dataset": c.dataset, ("context" if data.kind == "text" else "image_size"): size,
            **({"dataset_info": data.info} if data.info else {}),
            **({"tokens_per_example": int(net.tokens_per_example)} if hasattr(net, "tokens_per_example") else {}),
            **_training_meta(c, epochs=epochs, lr=lr, lr_meta=lr_meta), **strategy.meta()}
    bar = None
    if progress and strategy.rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"{c.model}/{cc.method}{strategy.label}", unit="it", dynamic_ncols=True)
    last_loss: float | None = None
    with interrupt_safe(Capture(net, cc, out=trace_dir, meta=meta, overwrite=overwrite)) as cap:
        it = 0
        for epoch in range(epochs):
            strategy.train_mode(net)
            loss_sum, n_seen = 0.0, 0
            batches = strategy.epoch_batches(data, shuffle=shuffle, n_train=n_train, batch_size=c.batch_size,
                                             image_size=size)
            for x, y in itertools.islice(batches, min(per_epoch, total - it)):
                if it == total - 1:
                    cap.sample_next()
                x, y = x.to(dev), y.to(dev)
                strategy.before_forward(net)
                logits = net(x)
                loss = _loss(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()  # δ̃z (capture) ...
                strategy.after_backward(params)  # ... then, data-parallel, the mean over processes
                opt.step()
                sched.step()
                lv = float(loss.detach())
                acc = float((logits.argmax(-1) == y).float().mean())
                cap.step(loss=lv, acc=acc, epoch=epoch)
                loss_sum += lv * y.numel()
                n_seen += y.numel()
                it += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{lv:.3f}", acc=f"{acc:.3f}", dens=f"{cap.last_density or 0:.3f}")
            last_loss = loss_sum / max(1, n_seen)
        strategy.before_eval(net)
        test_acc = evaluate(net, data, image_size=size, batch_size=max(c.batch_size, 256), device=dev)
        summary = cap.summary()
        cap.add_summary(**strategy.summary(test_acc=test_acc, train_loss=last_loss, seconds=time.perf_counter() - t0))
    if bar is not None:
        bar.close()
    result = TrainResult(trace=trace_dir, test_acc=test_acc, train_loss=last_loss,
                         mean_density=summary["mean_density"], weighted_density=summary["weighted_density"],
                         max_bits=int(summary["max_bits"]), iterations=int(summary["iterations"]),
                         seconds=time.perf_counter() - t0)
    strategy.finish(result, out)
    return result


def _training_meta(config: TrainConfig, *, epochs: int, lr: float, lr_meta: dict[str, Any]) -> dict[str, Any]:
    """:meth:`TrainConfig.meta` with the epochs and rate the run really uses, ``lr_meta`` right after ``lr``."""
    out: dict[str, Any] = {}
    for key, value in config.meta().items():
        out[key] = {"epochs": epochs, "lr": lr}.get(key, value)
        if key == "lr":
            out.update(lr_meta)
    return out


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over every prediction: per example (B, classes) or per token (B, T, vocab)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """While active, Ctrl-C (SIGINT) is remembered instead of raised; it is raised on leaving.

    Only in the main thread and only when SIGINT has Python's default handler (an ignored or
    custom handler is left alone).
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    hits: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if hits:
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupt_safe(cap: Capture) -> Iterator[Capture]:
    """``with cap:`` whose opening and closing cannot be cut short by Ctrl-C.

    A SIGINT during training raises KeyboardInterrupt in the loop as usual, and the capture
    closes the trace with ``status: interrupted: KeyboardInterrupt``. One that arrives while the
    trace is being opened or closed (pending sample writes, final manifest) is held until the
    manifest is final, then raised — so the trace on disk always says ``complete`` or
    ``interrupted``, never ``running``.
    """
    entered = False
    try:
        with sigint_deferred():  # a held Ctrl-C is raised below, once the trace is open
            cap.__enter__()
            entered = True
        yield cap
    except BaseException as e:
        if entered:
            with sigint_deferred():
                cap.__exit__(type(e), e, e.__traceback__)
        raise
    with sigint_deferred():
        cap.__exit__(None, None, None)


def evaluate(net: torch.nn.Module, data, *, image_size: int, batch_size: int = 256,
             device: torch.device | None = None) -> float:
    """Test-set accuracy (eval mode, no grad: capture ignores these forwards); next-token accuracy for text."""
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in data.batches(split="test", batch_size=batch_size, image_size=image_size):
            if device is not None:
                x, y = x.to(device), y.to(device)
            correct += int((net(x).argmax(-1) == y).sum())
            total += y.numel()
    net.train()
    return correct / max(1, total)


def resolve_device(name: str, *, flag: str = "--device") -> torch.device:
    """``name`` as a torch device this machine has; a ValueError naming ``flag`` and the choices otherwise."""
    dev = parse_device(name, flag=flag)
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(f"{flag} {name}: CUDA is not available here (torch {torch.__version__}, "
                             f"torch.cuda.is_available() is False); use {flag} cpu")
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"{flag} {name}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
        return dev
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{flag} {name}: MPS is not available here; use {flag} cpu")
    try:
        torch.empty(1, device=dev)
    except (RuntimeError, NotImplementedError) as e:
        raise ValueError(f"{flag} {name}: cannot allocate on this device ({e}); use {flag} cpu") from None
    return dev
