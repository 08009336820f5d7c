"""``hwsim trace``: train a zoo model with dithered backprop (or meProp / plain) and record a trace."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hwsim.capture.config import (  # torch-free: the one home of these defaults and names
    BN_MODES,
    DEFAULT_BATCH,
    DEFAULT_BATCH_PER_NODE,
    DEFAULT_BN,
    DEFAULT_DATASETS,
    DEFAULT_DEVICE,
    DEFAULT_EPOCHS,
    DEFAULT_K,
    DEFAULT_LR,
    DEFAULT_MOMENTUM,
    DEFAULT_S,
    DEFAULT_S_RULE,
    DEFAULT_SAMPLE_EVERY,
    DEFAULT_SEED,
    DEFAULT_STATS_EVERY,
    DEFAULT_WEIGHT_DECAY,
    METHODS,
    S_RULES,
    default_dataset,
)
from hwsim.commands.args import OVERWRITE_HELP, add_dither_rng, float_range, int_range

if TYPE_CHECKING:
    from hwsim.capture.config import TrainConfig

HELP = "train a model with dithered backprop (NSD on δz), meProp or plain backprop and record a trace"
DESCRIPTION = (
    f"Train a model of the seed paper's zoo with SGD (momentum {DEFAULT_MOMENTUM:g}, weight decay {DEFAULT_WEIGHT_DECAY:g}, "
    "cosine learning rate) "
    "while NSD (Δ = s·std(δz) per layer and iteration), meProp top-k or nothing is applied to the "
    "pre-activation gradient δz of every weight GEMM (linear layers and convolutions; attention's QKᵀ and P·V "
    "too with --dither-attention) — the quantized δ̃z really drives both backward GEMMs — "
    "and write a trace directory: per-iteration loss/accuracy and per-layer δ̃z density, bit-width and level "
    "histogram, plus the full operands (δ̃z levels, input masks) every --sample-every iterations and at the "
    f"last one. The embedded dataset '{DEFAULT_DATASETS['image']}' (scikit-learn, 1,797 real images) needs no "
    f"download; nor does '{DEFAULT_DATASETS['text']}' (the characters of CPython standard-library source files), "
    "the default of the language model gpt_char. "
    "Inspect the result with 'hwsim inspect OUT'. On CPU, NSD runs in a compiled C kernel where pip install "
    "built it, else in numpy (the same δ̃z levels and Δ; the noise estimate agrees to ~1e-6); the environment "
    "variable HWSIM_QUANT_PATH=auto|numpy|torch chooses (auto, the default: that choice; numpy: never the "
    "compiled kernel; torch: torch's path, as on a GPU)."
)

MODELS = ("mlp500, lenet300, lenet5, alexnet_cifar, vgg11_cifar, resnet18_cifar, resnet18, vit_digits (a small ViT), "
          "gpt_char (a character-level GPT-2-style language model)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="M", help=MODELS)
    parser.add_argument("--dataset", default=None, metavar="D",
                        help=f"image models: {DEFAULT_DATASETS['image']} (embedded, the default), mnist, cifar10, cifar100; "
                             f"the language model gpt_char: {DEFAULT_DATASETS['text']} (embedded, the default: "
                             "CPython standard-library source text)")
    parser.add_argument("--data-dir", metavar="DIR", help="where mnist/cifar files are (never downloaded; default: none)")
    parser.add_argument("--method", default=METHODS[0], choices=METHODS,
                        help="what to do to δz: NSD dither, meProp top-k, or plain backprop")
    parser.add_argument("--s", "--scale", dest="s", type=float_range(0, lo_open=True), default=DEFAULT_S,
                        help="dither step Δ = s·std(δz) (method dither); under torchrun write --scale "
                             "(torchrun reads --s as an ambiguous option of its own)")
    parser.add_argument("--k", type=int_range(1), default=DEFAULT_K, help="values kept per example (method meprop)")
    parser.add_argument("--epochs", type=int_range(1), default=DEFAULT_EPOCHS, help="passes over the training set")
    parser.add_argument("--batch-size", type=int_range(1), default=None,
                        help=f"mini-batch size (default {DEFAULT_BATCH}; with --distributed: per node, default "
                             f"{DEFAULT_BATCH_PER_NODE})")
    parser.add_argument("--lr", type=float_range(0, lo_open=True), default=None,
                        help=f"initial learning rate, cosine to 0 (default {DEFAULT_LR} at batch {DEFAULT_BATCH}; "
                             f"with --distributed: linear scaling with the global batch, "
                             f"{DEFAULT_LR}·nodes·batch/{DEFAULT_BATCH}, e.g. {DEFAULT_LR * 2 / DEFAULT_BATCH:g} "
                             "for 2 nodes × 1; recorded in the trace's meta as lr and lr_rule)")
    parser.add_argument("--momentum", type=float_range(0, 1, hi_open=True), default=DEFAULT_MOMENTUM, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float_range(0), default=DEFAULT_WEIGHT_DECAY, help="SGD weight decay (L2)")
    parser.add_argument("--sample-every", type=int_range(0), default=DEFAULT_SAMPLE_EVERY, metavar="N",
                        help="store full operands every N iterations (0: only the last); the whole-run "
                             "estimate's error against storing every iteration is the README's estimator-error table "
                             "(with N = iterations per epoch every sample falls at the same place of its epoch: the "
                             "demo's start-of-epoch full batches, say, never the short last batch but the run's end)")
    parser.add_argument("--s-layers", default=None, metavar="RULE",
                        help="per-layer s for --method dither: 'depth' (s·(l+1)/L in forward order: the early layers, "
                             "whose gradient carries the noise of every layer above, get less) or GLOB=S pairs, e.g. "
                             "'features.*=1,*=4' (first match wins; layer names as `hwsim inspect` prints them); "
                             "default: --s for every layer")
    parser.add_argument("--stats-every", type=int_range(1), default=DEFAULT_STATS_EVERY, metavar="N",
                        help="keep per-layer δ̃z statistics (density, bits, histogram) every N iterations; sampled "
                             "iterations always keep them, loss and accuracy are kept for every iteration, the run "
                             f"summary covers all (default {DEFAULT_STATS_EVERY}: every iteration; e.g. 10 for long runs)")
    parser.add_argument("--max-examples", type=int_range(1), default=None, metavar="N",
                        help="store only the first N examples of each batch in sampled iterations (default: all). "
                             "simulate then replays an N-example batch, which understates the speed-up and energy "
                             "gain (per-layer costs weigh more); measured error in the README's max_examples table "
                             "(benchmarks/results/max_examples.json)")
    parser.add_argument("--image-size", type=int_range(1, 4096), default=None,
                        help="resize images (default: what the model expects); for gpt_char: its context in tokens "
                             "(default 32)")
    parser.add_argument("--limit-train", type=int_range(1), default=None, metavar="N",
                        help="train on the first N examples only (default: all)")
    parser.add_argument("--seed", type=int_range(0), default=DEFAULT_SEED, help="seed of weights, data order and dither")
    parser.add_argument("--threads", type=int_range(1, 1024), default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=DEFAULT_DEVICE, metavar="DEV",
                        help="where the model trains and NSD runs: cpu (default), cuda, cuda:N, mps; a GPU keeps δz "
                             "and its statistics on the device (operands reach the host only on sampled iterations); "
                             "the counter dither (--dither-rng) draws the same bits there as on the CPU")
    parser.add_argument("--out", default=None, metavar="DIR", help="trace directory (default: traces/MODEL-DATASET-METHOD)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--int8", action="store_true",
                        help="8-bit forward weights (per output channel) and inputs (running range), Banner et al. 2018")
    parser.add_argument("--dither-attention", action="store_true",
                        help="also dither δz of attention's activation×activation products (QKᵀ, P·V); by default "
                             "they are recorded with plain δz (traces/FORMAT.md)")
    add_dither_rng(parser)
    g = parser.add_argument_group("distributed (run under torchrun --nproc-per-node N -m hwsim trace ...)")
    g.add_argument("--distributed", action="store_true",
                   help="data-parallel over the torchrun job: NSD per node, gradients averaged; traces in OUT/rank{r}")
    g.add_argument("--s-rule", default=DEFAULT_S_RULE, choices=S_RULES,
                   help="s on each of N nodes: s·√N (same averaged dither noise as 1 node), s·N, or s")
    g.add_argument("--bn", default=DEFAULT_BN, choices=BN_MODES,
                   help="BatchNorm per node: own-batch stats (eval mode where 1 value/channel), "
                        "running stats, or SyncBatchNorm (GPU only)")
    g.add_argument("--steps", type=int_range(1), default=None, metavar="N",
                   help="train exactly N iterations (instead of --epochs); same SGD steps for every N (default: epochs)")
    g.add_argument("--backend", default=None, help="torch.distributed backend (default: nccl with CUDA, else gloo)")


def run(args: argparse.Namespace) -> int:
    import atexit
    import gc

    # At interpreter exit, skip the cyclic-GC passes over torch's ~10⁶ objects (1.3 s of CPU, most of
    # the time from Ctrl-C to exit; benchmarks/bench_sigint.py): the trace is closed by then and the
    # OS frees the memory. Registered once, also when called in-process.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    from hwsim._io import check_output, mark_status_in_place, replacing_dir

    if args.dataset is None:
        args.dataset = default_dataset(args.model)
    if args.distributed:
        return _run_distributed(args)
    out = Path(args.out or f"traces/{args.model}-{args.dataset}-{args.method}")
    replacing = out.is_dir() and any(out.iterdir())
    check_output(out, overwrite=args.overwrite, kind="directory")  # before torch is imported: fail fast

    import torch

    from hwsim.capture.train import train_and_capture

    if args.threads:
        torch.set_num_threads(args.threads)
    config = _train_config(args, batch_size=DEFAULT_BATCH)
    progress = not args.quiet
    if replacing:  # --overwrite: capture aside, swap in only a finished trace; the old one survives any failure
        try:
            with replacing_dir(out, overwrite=True) as tmp:
                r = train_and_capture(config, out=tmp, progress=progress)
        except KeyboardInterrupt:
            print(f"hwsim trace: interrupted; the existing trace {out} was kept", file=sys.stderr)
            raise
    else:
        try:
            r = train_and_capture(config, out=out, progress=progress)
        except BaseException:
            # e.g. ENOSPC: the writer could not record why it stopped; say so without needing new disk space.
            mark_status_in_place(out / "manifest.json")
            raise
    dens = r.mean_density if r.mean_density is not None else float("nan")
    # meProp and none keep float δz: their levels are an int8-style view, always 8 bits wide, not a bit-width
    bits = f"max {r.max_bits} bits" if args.method == "dither" else "float δz (no level bit-width)"
    print(f"trace: {out} ({r.iterations} iteration{'' if r.iterations == 1 else 's'}, {r.seconds:.0f} s); "
          f"test accuracy {r.test_acc:.2%}; δ̃z density {dens:.4f} (sparsity {1 - dens:.2%}, mean over layers and "
          f"iterations); {bits}")
    return 0


def _train_config(args: argparse.Namespace, *, batch_size: int) -> TrainConfig:
    """The TrainConfig of these arguments (``batch_size``: the default when --batch-size is not given)."""
    from hwsim.capture.config import CaptureConfig, TrainConfig

    return TrainConfig(
        model=args.model, dataset=args.dataset, data_dir=args.data_dir,
        epochs=args.epochs, batch_size=args.batch_size if args.batch_size is not None else batch_size,
        lr=args.lr if args.lr is not None else DEFAULT_LR, momentum=args.momentum, weight_decay=args.weight_decay,
        image_size=args.image_size, limit_train=args.limit_train, int8=args.int8, device=args.device,
        capture=CaptureConfig(method=args.method, s=args.s if args.method == "dither" else None,
                              k=args.k if args.method == "meprop" else None, sample_every=args.sample_every,
                              seed=args.seed, max_examples=args.max_examples, stats_every=args.stats_every,
                              dither_attention=args.dither_attention, dither_rng=args.dither_rng,
                              s_layers=args.s_layers if args.method == "dither" else None))


def _run_distributed(args: argparse.Namespace) -> int:
    """One rank of a torchrun job: train data-parallel, write OUT/rank{r}; rank 0 prints the summary."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from hwsim.capture.distributed import DistributedOptions, shutdown, train_distributed

    config = _train_config(args, batch_size=DEFAULT_BATCH_PER_NODE)  # per node
    options = DistributedOptions(s_rule=args.s_rule, lr_rule="linear" if args.lr is None else "given", bn=args.bn,
                                 backend=args.backend, steps=args.steps)
    out = args.out or f"traces/{args.model}-{args.dataset}-{args.method}-distributed"
    ok = False
    try:
        r = train_distributed(config, options, out=out, overwrite=args.overwrite, progress=not args.quiet)
        ok = True
    finally:
        shutdown(ok=ok)  # gc + barrier before destroy_process_group: no Gloo thread left at exit
    if r.rank == 0:
        dens = r.mean_density if r.mean_density is not None else float("nan")
        print(f"traces: {out}/rank0..{r.world_size - 1} ({r.iterations} iterations, {r.seconds:.0f} s); "
              f"test accuracy {r.test_acc:.2%}; rank 0: s {r.s}, δ̃z density {dens:.4f} "
              f"(sparsity {1 - dens:.2%}), max {r.max_bits} bits")
    return 0
