"""``hwsim synth``: write a synthetic trace with chosen densities (same format as captured traces)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim.commands.args import OVERWRITE_HELP, float_range, int_range

HELP = "write a synthetic trace with given weight/activation/gradient densities"
DESCRIPTION = (
    "Synthetic trace from a model name, a SCALE-Sim topology CSV (Layer name, IFMAP Height, IFMAP Width, "
    "Filter Height, Filter Width, Channels, Num Filter, Strides; unpadded), the Han et al. 2015 pruned "
    "AlexNet (--han2015), or a density sweep (--sweep). Seeded i.i.d. masks; non-zero gradient levels "
    "are small (geometric magnitudes). Replay it with 'hwsim simulate'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--model", help="alexnet, alexnet_conv, resnet18, vgg16 or lenet5 (default with --sweep: alexnet_conv)")
    src.add_argument("--scalesim-csv", type=Path, metavar="CSV", help="SCALE-Sim conv topology file")
    src.add_argument("--han2015", action="store_true",
                     help="AlexNet conv1-5 with Han et al. 2015 pruned weight/activation densities")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="trace directory (sweep: parent directory)")
    density = float_range(0, 1, lo_open=True)
    parser.add_argument("--w-density", type=density, default=1.0, help="weight density")
    parser.add_argument("--a-density", type=density, default=1.0, help="input activation density")
    parser.add_argument("--dz-density", type=density, default=0.1, help="density of the quantized gradient δ̃z")
    parser.add_argument("--per-layer-json", metavar="FILE|JSON",
                        help='per-layer densities, e.g. \'{"conv2": {"w": 0.4, "a": 0.5}}\' or a file holding that (default: none)')
    parser.add_argument("--sparse-first-input", action="store_true",
                        help="apply --a-density to the first layer's input too (default: dense image)")
    parser.add_argument("--sweep", metavar="D1,D2,...", nargs="?", const="1.0,0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1",
                        help="one trace per density (w = a = dz = d) under OUT/d<density> (without values: 1.0, 0.9, ..., 0.1)")
    parser.add_argument("--level-p", type=float_range(0, 1, lo_open=True, hi_open=True), default=0.6, help="geometric parameter of |level| (higher: more ±1)")
    parser.add_argument("--max-level", type=int_range(1, 1 << 20), default=15, help="largest |level| (15 → 5-bit levels)")
    parser.add_argument("--batch", type=int_range(1, 1 << 16), default=1, help="examples per layer")
    parser.add_argument("--seed", type=int_range(0), default=0, help="random seed (same seed, same trace)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _per_layer(arg: str | None) -> dict | None:
    if not arg:
        return None
    if arg.lstrip().startswith("{"):
        text = arg
    else:
        from hwsim._yaml import YAMLInputError, read_text

        try:
            text = read_text(arg, what="JSON file")
        except YAMLInputError as e:
            raise ValueError(f"--per-layer-json: {e}") from None
    try:
        val = json.loads(text)
    except RecursionError:
        raise ValueError("--per-layer-json: nested too deeply; allowed: {layer: {w|a|dz: density}}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"--per-layer-json: not valid JSON ({e}); allowed: {{layer: {{w|a|dz: density}}}}") from None
    if not isinstance(val, dict) or not all(isinstance(v, dict) for v in val.values()):
        raise ValueError("--per-layer-json: must be an object {layer: {w|a|dz: density}}")
    return val


def run(args: argparse.Namespace) -> int:
    from hwsim._io import replacing_dir
    from hwsim.trace.format import load

    final = args.out
    per_layer = _per_layer(args.per_layer_json)  # validated before anything is written
    if args.model and not args.sweep:
        from hwsim.trace.topology import check_synthetic_size

        check_synthetic_size(args.model, args.batch, "--model/--batch")
    if args.scalesim_csv:  # a regular file of bounded size (a FIFO or /dev/zero would hang or exhaust memory)
        from hwsim._yaml import read_text

        read_text(args.scalesim_csv, what="SCALE-Sim topology CSV")
    with replacing_dir(final, overwrite=args.overwrite) as tmp:  # swapped in only once complete
        args.out = tmp
        _synth(args, per_layer)
    args.out = final
    if args.sweep:
        print(f"traces under {final}, index: {final / 'index.json'}")
        return 0
    trace = load(final)
    sample = trace.sample()
    print(f"{final}: {trace.meta['model']}, {len(trace.layers)} layers, {trace.sample_bytes() / 1e6:.2f} MB")
    print(f"  {'layer':<24}{'MACs':>14}{'w':>7}{'a':>7}{'dz':>7}{'bits':>6}")
    for name, s in sample.items():
        print(f"  {name:<24}{s.geometry.macs:>14,}{s.w_density:>7.3f}{s.a_density:>7.3f}{s.dz_density:>7.3f}"
              f"{s.max_bits:>6}")
    return 0


def _synth(args: argparse.Namespace, per_layer: dict | None) -> None:
    from hwsim.trace.synth import alexnet_han2015, synthesize, synthesize_density_sweep

    common = {"batch": args.batch, "level_p": args.level_p, "max_level": args.max_level, "overwrite": True}
    if args.sweep:
        try:
            dens = [float(x) for x in args.sweep.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--sweep: {args.sweep!r} is not allowed; allowed: comma-separated densities") from None
        if args.han2015 or args.per_layer_json:
            raise ValueError("--sweep: cannot be combined with --han2015 or --per-layer-json")
        src = {"scalesim_csv": args.scalesim_csv, "model": None} if args.scalesim_csv else \
            {"model": args.model or "alexnet_conv"}
        paths = synthesize_density_sweep(args.out, densities=dens, seed=args.seed,
                                         dense_first_input=not args.sparse_first_input, **src, **common)
        print(f"{len(paths)} traces: " + ", ".join(p.name for p in paths))
        return
    if args.han2015:
        alexnet_han2015(args.out, args.seed, dz_density=args.dz_density, **common)
        return
    if not args.model and not args.scalesim_csv:
        raise ValueError("synth: give --model, --scalesim-csv, --han2015 or --sweep")
    synthesize(args.out, model=args.model, scalesim_csv=args.scalesim_csv, w_density=args.w_density,
               a_density=args.a_density, dz_density=args.dz_density, per_layer=per_layer,
               seed=args.seed, dense_first_input=not args.sparse_first_input, **common)
