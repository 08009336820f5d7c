"""A small, paper-style training loop around :func:`hwsim.capture.session.capture`.

Used by ``hwsim trace`` and ``hwsim demo``: build a zoo model, train it with SGD (momentum 0.9,
weight decay 5e-4, as the seed paper) under dithered backprop / meProp / plain backprop,
record a trace and report the final test accuracy (also written to the manifest's summary).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from hwsim.capture import quant
from hwsim.capture.session import Capture, capture
from hwsim.data import dataset_for, load_dataset
from hwsim.models import MODELS, PREFERRED_SIZE, build_model

DEFAULT_S = quant.DEFAULT_S
DEFAULT_K = quant.DEFAULT_K
DEFAULT_EPOCHS = 20
DEFAULT_BATCH = 64
DEFAULT_LR = 0.05


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


def train_and_capture(*, model: str, dataset: str | None = None, data_dir: str | os.PathLike | None = None,
                      method: str = "dither", s: float | None = None, k: int | None = None,
                      epochs: int = DEFAULT_EPOCHS, batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR,
                      momentum: float = 0.9, weight_decay: float = 5e-4, sample_every: int = 50,
                      stats_every: int = 1, max_examples: int | None = None, seed: int = 0, out: str | os.PathLike | None = None,
                      overwrite: bool = False, image_size: int | None = None, limit_train: int | None = None,
                      progress: bool = False, int8: bool = False, dither_attention: bool = False,
                      device: str = "cpu") -> TrainResult:
    """Train ``model`` on ``dataset`` with δ̃z from ``method`` and write a trace to ``out``.

    ``dataset`` defaults to the model's kind: ``digits`` for image models, ``pystdlib`` for the language
    model ``gpt_char`` (whose loss is cross-entropy over every token, accuracy next-token accuracy, and
    ``image_size`` its context in tokens).
    ``s`` defaults to :data:`DEFAULT_S` (dither) and ``k`` to :data:`DEFAULT_K` (meprop).
    The learning rate follows a cosine schedule to 0 over all iterations. ``limit_train``
    trains on the first examples only (quick runs, tests). The last iteration is always sampled.
    ``int8`` quantizes every layer's forward weights and inputs to 8 bits (:mod:`hwsim.capture.int8`).
    ``dither_attention`` also dithers δz of attention's activation×activation products (QKᵀ, P·V).
    ``stats_every``: keep per-layer statistics every this many iterations (see :func:`hwsim.capture.capture`).
    ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) holds the model and each batch; NSD and its
    statistics then run there too (:mod:`hwsim.capture.quant_device`).
    """
    s = DEFAULT_S if (s is None and method == "dither") else s
    k = DEFAULT_K if (k is None and method == "meprop") else k
    quant.validate_params(method=method, s=s, k=k)
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    for nm, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{nm} must be a positive integer, got {v!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if out is not None and (Path(out) / "manifest.json").exists() and not overwrite:
        raise FileExistsError(f"{out}: a trace already exists here (pass --overwrite to replace it)")
    dataset = dataset_for(model, dataset)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    data = load_dataset(dataset, data_dir=data_dir)
    size = image_size or PREFERRED_SIZE.get(model) or data.native_size
    torch.manual_seed(seed)
    net = build_model(model, in_channels=data.in_channels, num_classes=data.num_classes, image_size=size)
    if int8:
        from hwsim.capture.int8 import quantize_model

        quantize_model(net)
    net.to(dev)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    n_train = data.size("train", size) if limit_train is None else min(limit_train, data.size("train", size))
    per_epoch = math.ceil(n_train / batch_size)
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / total)))
    shuffle = torch.Generator().manual_seed(seed)
    meta = {"model": model, "dataset": dataset, ("context" if data.kind == "text" else "image_size"): size,
            **({"dataset_info": data.info} if data.info else {}),
            **({"tokens_per_example": int(net.tokens_per_example)} if hasattr(net, "tokens_per_example") else {}),
            "epochs": epochs, "batch_size": batch_size,
            "lr": lr, "momentum": momentum, "weight_decay": weight_decay, "optimizer": "sgd+cosine"}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"{model}/{method}", unit="it", dynamic_ncols=True)
    last_loss: float | None = None
    with interrupt_safe(capture(net, method=method, s=s, k=k, out=out, sample_every=sample_every, seed=seed,
                                stats_every=stats_every, max_examples=max_examples, meta=meta, overwrite=overwrite,
                                dither_attention=dither_attention)) as cap:
        it = 0
        for epoch in range(epochs):
            net.train()
            loss_sum, n_seen = 0.0, 0
            for x, y in data.batches(split="train", batch_size=batch_size, image_size=size, shuffle=True,
                                     generator=shuffle, limit=limit_train):
                if it == total - 1:
                    cap.sample_next()
                x, y = x.to(dev), y.to(dev)
                logits = net(x)
                loss = _loss(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
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
        test_acc = evaluate(net, data, image_size=size, batch_size=max(batch_size, 256), device=dev)
        summary = cap.summary()
        cap.add_summary(test_acc=test_acc, train_loss=last_loss, seconds=time.perf_counter() - t0)
    if bar is not None:
        bar.close()
    return TrainResult(trace=Path(out) if out is not None else None, test_acc=test_acc, train_loss=last_loss,
                       mean_density=summary["mean_density"], weighted_density=summary["weighted_density"],
                       max_bits=int(summary["max_bits"]), iterations=int(summary["iterations"]),
                       seconds=time.perf_counter() - t0)


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
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{flag} {name!r} is not a torch device; allowed: cpu, cuda, cuda:N, mps") from None
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
