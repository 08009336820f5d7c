"""``hwsim experiment``: the seed paper's comparison experiments (meProp, distributed N nodes, Table 1)."""

from __future__ import annotations

import argparse

from hwsim.capture.config import DEFAULT_DATASETS, S_RULES
from hwsim.commands.args import OVERWRITE_HELP, add_dither_rng, float_range, int_range
from hwsim.experiments.distributed import DistributedConfig
from hwsim.experiments.meprop import MepropConfig
from hwsim.experiments.table1 import Table1Config

# The experiments' defaults, for --help (these modules import torch only when they run).
_MEPROP, _DIST, _TABLE1 = MepropConfig(), DistributedConfig(), Table1Config()

HELP = "run the seed paper's experiments: meProp comparison, distributed N-node training, Table 1 columns"
DESCRIPTION = (
    "Real training runs aggregated into a report folder (index.md, PNG, CSV, JSON). "
    "'meprop': accuracy vs δz sparsity for plain backprop, dithered backprop (several s) and meProp (several k), "
    "mean ± std over seeds (paper Fig. 5). 'distributed': torchrun jobs with N = 1, 2, 4, 8 nodes at batch 1 per "
    "node (gloo on CPU), NSD per node before the gradient allreduce; accuracy, per-node sparsity and worst-case "
    "bit-width against N (Figs. 6-8). 'table1': accuracy and sparsity for baseline, dithered, 8-bit and "
    f"8-bit + dithered (Table 1). All run on the embedded {DEFAULT_DATASETS['image']} dataset unless "
    "--dataset/--data-dir say otherwise."
)


def _floats(text: str) -> tuple[float, ...]:
    one = float_range(0, lo_open=True)
    vals = tuple(one(x) for x in text.split(",") if x.strip())
    if not vals:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated numbers > 0")
    return vals


def _ints(text: str) -> tuple[int, ...]:
    one = int_range(1)
    vals = tuple(one(x) for x in text.split(",") if x.strip())
    if not vals:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated integers >= 1")
    return vals


def _seeds(text: str) -> tuple[int, ...]:
    """'3' = seeds 0, 1, 2; '0,5' = those seeds."""
    if "," in text:
        return tuple(int_range(0)(x) for x in text.split(",") if x.strip())
    return tuple(range(int_range(1, 1000)(text)))


def _common(p: argparse.ArgumentParser, *, out: str) -> None:
    p.add_argument("--dataset", default=None, metavar="D",
                   help=f"{DEFAULT_DATASETS['image']} (embedded), mnist, cifar10, cifar100 (default: the experiment's, "
                        f"{DEFAULT_DATASETS['image']})")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where mnist/cifar files are (never downloaded; default: none)")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="N|a,b",
                   help="number of seeds, or a list (default: the experiment's)")
    p.add_argument("--lr", type=float_range(0, lo_open=True), default=None,
                   help="learning rate (default: the experiment's)")
    p.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test, seconds)")
    p.add_argument("--out", default=out, metavar="DIR", help="report folder")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--threads", type=int_range(1, 1024), default=1, help="torch threads in this process")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-run lines")
    add_dither_rng(p)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    p = sub.add_parser("meprop", help="dithered backprop vs meProp: accuracy against δz sparsity (Fig. 5)")
    _common(p, out="reports/meprop")
    p.add_argument("--model", default=None, help=f"default: {_MEPROP.model} (2 × 500 hidden, as the paper)")
    p.add_argument("--s", dest="s_values", type=_floats, default=None, metavar="S,S,...",
                   help="dither scales (default: the experiment's)")
    p.add_argument("--k", dest="k_values", type=_ints, default=None, metavar="K,K,...",
                   help="meProp top-k values (default: the experiment's)")
    p.add_argument("--epochs", type=int_range(1), default=None, help="training epochs (default: the experiment's)")
    p.add_argument("--batch-size", type=int_range(1), default=None, help="mini-batch (default: the experiment's)")
    p = sub.add_parser("distributed", help="N nodes at batch 1 per node: accuracy, per-node sparsity, bits vs N")
    _common(p, out="reports/distributed")
    p.add_argument("--nodes", type=_ints, default=None, metavar="N,N,...", help=f"default: {','.join(map(str, _DIST.nodes))}")
    p.add_argument("--model", default=None, help=f"default: {_DIST.model}; the paper used alexnet_cifar on cifar10")
    p.add_argument("--s", dest="s", type=float_range(0, lo_open=True), default=None, help=f"single-node s (default: {_DIST.s:g})")
    p.add_argument("--s-rule", default=None, choices=S_RULES, help=f"s per node (default: {_DIST.s_rule})")
    p.add_argument("--steps", type=int_range(1), default=None, help=f"SGD steps for every N (default: {_DIST.steps})")
    p.add_argument("--batch-per-node", type=int_range(1), default=None, help=f"examples per node (default: {_DIST.batch_per_node})")
    p.add_argument("--methods", type=lambda t: tuple(t.split(",")), default=None, metavar="M,M",
                   help="dither,none (none = plain-backprop reference at every N; default: the experiment's)")
    p.add_argument("--keep-traces", action="store_true", help="keep the rank traces under OUT/traces")
    p = sub.add_parser("table1", help="accuracy and sparsity: baseline, dithered, 8-bit, 8-bit + dithered")
    _common(p, out="reports/table1")
    p.add_argument("--models", type=lambda t: tuple(t.split(",")), default=None, metavar="M,M",
                   help=f"default: {','.join(_TABLE1.models)}")
    p.add_argument("--s", dest="s", type=float_range(0, lo_open=True), default=None, help=f"dither scale (default: {_TABLE1.s:g})")
    p.add_argument("--epochs", type=int_range(1), default=None, help="training epochs (default: the experiment's)")
    p.add_argument("--batch-size", type=int_range(1), default=None, help="mini-batch (default: the experiment's)")


def _config(args: argparse.Namespace, base, quick, fields: tuple[str, ...]):
    """``base`` (or ``quick`` with --quick) with every option the user gave replaced."""
    from dataclasses import replace

    over = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    return replace(quick if args.quick else base, **over)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwsim._io import check_output, replacing_dir

    final = Path(args.out)
    check_output(final, overwrite=args.overwrite, kind="directory")  # before hours of training
    with replacing_dir(final, overwrite=args.overwrite) as tmp:
        args.out = str(tmp)
        _run(args)
    print(f"report: {final}/index.md")
    return 0


def _run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    common = ("dataset", "data_dir", "seeds", "lr", "dither_rng")
    if args.experiment == "meprop":
        from hwsim.experiments import meprop as ex

        cfg = _config(args, ex.MepropConfig(), ex.QUICK, common + ("model", "s_values", "k_values", "epochs",
                                                                  "batch_size"))
        ex.run_experiment(cfg, args.out, progress=progress)
    elif args.experiment == "distributed":
        from hwsim.experiments import distributed as ex

        cfg = _config(args, ex.DistributedConfig(), ex.QUICK, common + ("nodes", "model", "s", "s_rule", "steps",
                                                                        "batch_per_node", "methods"))
        if any(n < 1 for n in cfg.nodes):
            raise ValueError(f"--nodes: every N must be >= 1, got {cfg.nodes}")
        ex.run_experiment(cfg, args.out, keep_traces=args.keep_traces, progress=progress)
    else:
        from hwsim.experiments import table1 as ex

        quick = ex.Table1Config(models=("lenet300",), epochs=2)
        cfg = _config(args, ex.Table1Config(), quick, common + ("models", "s", "epochs", "batch_size"))
        ex.run_experiment(cfg, args.out, progress=progress)
