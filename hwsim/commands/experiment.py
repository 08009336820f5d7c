"""``hwsim experiment``: the seed paper's comparison experiments (meProp, distributed N nodes, Table 1)."""

from __future__ import annotations

import argparse

HELP = "run the seed paper's experiments: meProp comparison, distributed N-node training, Table 1 columns"
DESCRIPTION = (
    "Real training runs aggregated into a report folder (index.md, PNG, CSV, JSON). "
    "'meprop': accuracy vs δz sparsity for plain backprop, dithered backprop (several s) and meProp (several k), "
    "mean ± std over seeds (paper Fig. 5). 'distributed': torchrun jobs with N = 1, 2, 4, 8 nodes at batch 1 per "
    "node (gloo on CPU), NSD per node before the gradient allreduce; accuracy, per-node sparsity and worst-case "
    "bit-width against N (Figs. 6-8). 'table1': accuracy and sparsity for baseline, dithered, 8-bit and "
    "8-bit + dithered (Table 1). All run on the embedded digits dataset unless --dataset/--data-dir say otherwise."
)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _seeds(text: str) -> tuple[int, ...]:
    """'3' = seeds 0, 1, 2; '0,5' = those seeds."""
    return _ints(text) if "," in text else tuple(range(int(text)))


def _common(p: argparse.ArgumentParser, *, out: str) -> None:
    p.add_argument("--dataset", default=None, metavar="D", help="digits (embedded), mnist, cifar10, cifar100")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="where mnist/cifar files are (never downloaded)")
    p.add_argument("--seeds", type=_seeds, default=None, metavar="N|a,b", help="number of seeds, or a list")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--quick", action="store_true", help="a tiny configuration (smoke test, seconds)")
    p.add_argument("--out", default=out, metavar="DIR", help="report folder")
    p.add_argument("--threads", type=int, default=1, help="torch threads in this process")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-run lines")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    p = sub.add_parser("meprop", help="dithered backprop vs meProp: accuracy against δz sparsity (Fig. 5)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p, out="reports/meprop")
    p.add_argument("--model", default=None, help="default mlp500 (2 × 500 hidden, as the paper)")
    p.add_argument("--s", dest="s_values", type=_floats, default=None, metavar="S,S,...", help="dither scales")
    p.add_argument("--k", dest="k_values", type=_ints, default=None, metavar="K,K,...", help="meProp top-k values")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p = sub.add_parser("distributed", help="N nodes at batch 1 per node: accuracy, per-node sparsity, bits vs N",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p, out="reports/distributed")
    p.add_argument("--nodes", type=_ints, default=None, metavar="N,N,...", help="default 1,2,4,8")
    p.add_argument("--model", default=None, help="default lenet300; the paper used alexnet_cifar on cifar10")
    p.add_argument("--s", dest="s", type=float, default=None, help="single-node s (default 2)")
    p.add_argument("--s-rule", default=None, choices=("sqrt", "linear", "const"), help="s per node (default sqrt)")
    p.add_argument("--steps", type=int, default=None, help="SGD steps for every N (default 400)")
    p.add_argument("--batch-per-node", type=int, default=None)
    p.add_argument("--methods", type=lambda t: tuple(t.split(",")), default=None, metavar="M,M",
                   help="dither,none (none = plain-backprop reference at every N)")
    p.add_argument("--keep-traces", action="store_true", help="keep the rank traces under OUT/traces")
    p = sub.add_parser("table1", help="accuracy and sparsity: baseline, dithered, 8-bit, 8-bit + dithered",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _common(p, out="reports/table1")
    p.add_argument("--models", type=lambda t: tuple(t.split(",")), default=None, metavar="M,M",
                   help="default mlp500,lenet300,lenet5")
    p.add_argument("--s", dest="s", type=float, default=None, help="dither scale (default 4)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)


def _config(args: argparse.Namespace, base, quick, fields: tuple[str, ...]):
    """``base`` (or ``quick`` with --quick) with every option the user gave replaced."""
    from dataclasses import replace

    over = {f: getattr(args, f) for f in fields if getattr(args, f, None) is not None}
    return replace(quick if args.quick else base, **over)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    progress = None if args.quiet else (lambda line: print(line, flush=True))
    common = ("dataset", "data_dir", "seeds", "lr")
    if args.experiment == "meprop":
        from hwsim.experiments import meprop as ex

        cfg = _config(args, ex.MepropConfig(), ex.QUICK, common + ("model", "s_values", "k_values", "epochs",
                                                                  "batch_size"))
        out = ex.run_experiment(cfg, args.out, progress=progress)
    elif args.experiment == "distributed":
        from hwsim.experiments import distributed as ex

        cfg = _config(args, ex.DistributedConfig(), ex.QUICK, common + ("nodes", "model", "s", "s_rule", "steps",
                                                                        "batch_per_node", "methods"))
        if any(n < 1 for n in cfg.nodes):
            raise ValueError(f"--nodes: every N must be >= 1, got {cfg.nodes}")
        out = ex.run_experiment(cfg, args.out, keep_traces=args.keep_traces, progress=progress)
    else:
        from hwsim.experiments import table1 as ex

        quick = ex.Table1Config(models=("lenet300",), epochs=2)
        cfg = _config(args, ex.Table1Config(), quick, common + ("models", "s", "epochs", "batch_size"))
        out = ex.run_experiment(cfg, args.out, progress=progress)
    print(f"report: {out}/index.md")
    return 0
