"""``hwsim synth``: write a synthetic trace with chosen densities (same format as captured traces)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwsim.commands.args import OVERWRITE_HELP, float_range, int_range

HELP = "write a synthetic trace with given weight/activation/gradient densities"
DESCRIPTION = (
    "Synthetic trace from a model name (CNNs: alexnet, alexnet_conv, resnet18, vgg16, lenet5; transformers: "
    "gpt2_small, gpt2_medium, bert_base, vit_b16, llama_block), a SCALE-Sim topology CSV (convolutions: Layer name, "
    "IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides, unpadded, output sizes "
    "as SCALE-Sim computes them unless --conv-arithmetic; or GEMMs: Layer, M, N, K = (M x K)(K x N), read as a "
    "linear layer of M rows), the Han et al. 2015 pruned "
    "AlexNet (--han2015), or a density sweep (--sweep). A transformer is every GEMM of its blocks: the "
    "projections, QK^T and P.V per head (matmul layers, heads x batch products; causal models zero the "
    "attention matrix above the diagonal), the MLP (two GEMMs, or three for SwiGLU); --seq, --heads, --kv-heads "
    "(grouped-query attention), --blocks and --head shape it, --batch is sequences. Densities: global flags, then "
    "per GEMM kind (proj, attn, mlp, other) from --densities-from TRACE (a captured trace's means) and "
    "--per-kind-json, then --per-layer-json. Seeded i.i.d. masks; non-zero gradient levels are small "
    "(geometric magnitudes). Replay it with 'hwsim simulate'. Example: hwsim synth --model gpt2_small --seq 1024 "
    "--batch 8 --blocks 1 --out t"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--model", help="alexnet, alexnet_conv, resnet18, vgg16, lenet5, gpt2_small, gpt2_medium, "
                     "bert_base, vit_b16 or llama_block (default with --sweep: alexnet_conv)")
    src.add_argument("--scalesim-csv", type=Path, metavar="CSV",
                     help="SCALE-Sim topology file: convolutions or GEMMs (header 'Layer, M, N, K'), told apart by the "
                          "header; read in SCALE-Sim's conventions (output size ceil((H - R + stride) / stride)) "
                          "unless --conv-arithmetic")
    src.add_argument("--han2015", action="store_true",
                     help="AlexNet conv1-5 with Han et al. 2015 pruned weight/activation densities")
    parser.add_argument("--conv-arithmetic", action="store_true",
                        help="with --scalesim-csv: output sizes by conv arithmetic floor((H - R) / stride) + 1 on the "
                             "unpadded layers (hwsim's convention for captured traces) instead of SCALE-Sim's "
                             "ceil((H - R + stride) / stride) (default: SCALE-Sim's, so cycles match SCALE-Sim)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="trace directory (sweep: parent directory)")
    density = float_range(0, 1, lo_open=True)
    parser.add_argument("--w-density", type=density, default=1.0, help="weight density")
    parser.add_argument("--a-density", type=density, default=1.0, help="input activation density")
    parser.add_argument("--dz-density", type=density, default=0.1, help="density of the quantized gradient δ̃z")
    parser.add_argument("--per-layer-json", metavar="FILE|JSON",
                        help='per-layer densities, e.g. \'{"conv2": {"w": 0.4, "a": 0.5}}\' or a file holding that (default: none)')
    parser.add_argument("--per-kind-json", metavar="FILE|JSON",
                        help='densities per GEMM kind (proj, attn, mlp, other), e.g. \'{"attn": {"a": 0.9, "dz": 0.5}, '
                             '"mlp": {"a": 0.5}}\' or a file holding that; over --densities-from, under --per-layer-json')
    parser.add_argument("--densities-from", type=Path, metavar="TRACE",
                        help="densities per GEMM kind = the means (δ̃z over every iteration, a and w) of a captured trace")
    tf = parser.add_argument_group("transformers (--model gpt2_small|gpt2_medium|bert_base|vit_b16|llama_block)")
    tf.add_argument("--seq", type=int_range(1, 1 << 20), metavar="T",
                    help="tokens per example (default: gpt2 1024, bert_base 512, llama_block 2048; vit_b16: 197, fixed)")
    tf.add_argument("--heads", type=int_range(1, 1 << 12), metavar="H",
                    help="attention heads at the model's hidden size (head dim = hidden / H; default: the model's)")
    tf.add_argument("--kv-heads", type=int_range(1, 1 << 12), metavar="G",
                    help="K/V heads, a divisor of the heads (grouped-query attention; default: the model's, "
                         "llama_block 8 of 32)")
    tf.add_argument("--blocks", type=int_range(1, 1 << 10), metavar="L",
                    help="transformer blocks (default: the model's, llama_block 1)")
    tf.add_argument("--head", action="store_true",
                    help="add the GEMMs outside the blocks: LM head (gpt2, llama), MLM head (bert), patch embedding "
                         "and classifier (vit)")
    parser.add_argument("--sparse-first-input", action="store_true",
                        help="apply --a-density to the first layer's input too (default: dense image)")
    parser.add_argument("--sweep", metavar="D1,D2,...", nargs="?", const="1.0,0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1",
                        help="one trace per density (w = a = dz = d) under OUT/d<density> (without values: 1.0, 0.9, ..., 0.1)")
    parser.add_argument("--level-p", type=float_range(0, 1, lo_open=True, hi_open=True), default=0.6, help="geometric parameter of |level| (higher: more ±1)")
    parser.add_argument("--max-level", type=int_range(1, 1 << 20), default=15, help="largest |level| (15 → 5-bit levels)")
    parser.add_argument("--batch", type=int_range(1, 1 << 16), default=1,
                        help="examples per layer (transformers: sequences of --seq tokens)")
    parser.add_argument("--seed", type=int_range(0), default=0, help="random seed (same seed, same trace)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)


def _per_layer(arg: str | None, flag: str = "--per-layer-json", key: str = "layer") -> dict | None:
    if not arg:
        return None
    shape = f"{{{key}: {{w|a|dz: density}}}}"
    if arg.lstrip()[:1] in ("{", "[", '"') or arg.lstrip()[:1].isdigit():   # inline JSON, not a file name
        text = arg
    else:
        from hwsim._yaml import YAMLInputError, read_text

        try:
            text = read_text(arg, what="JSON file")
        except YAMLInputError as e:
            raise ValueError(f"{flag}: {e}") from None
    try:
        val = json.loads(text)
    except RecursionError:
        raise ValueError(f"{flag}: nested too deeply; allowed: {shape}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{flag}: not valid JSON ({e}); allowed: {shape}") from None
    if not isinstance(val, dict) or not all(isinstance(v, dict) for v in val.values()):
        raise ValueError(f"{flag}: must be an object {shape}")
    return val


def _transformer_options(args: argparse.Namespace) -> dict:
    """``--seq/--heads/--kv-heads/--blocks/--head`` as synthesize keywords; refused unless --model is a transformer."""
    from hwsim.trace.transformers import TRANSFORMERS

    opts = {"seq": args.seq, "heads": args.heads, "kv_heads": args.kv_heads, "blocks": args.blocks, "head": args.head}
    given = [k for k, v in opts.items() if v is not None and v is not False]
    if given and args.model not in TRANSFORMERS:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        what = f"--model {args.model}" if args.model else "--scalesim-csv" if args.scalesim_csv else \
            "--han2015" if args.han2015 else "no --model"
        raise ValueError(f"{flags}: not allowed with {what}; allowed with --model {', '.join(TRANSFORMERS)}")
    return {k: v for k, v in opts.items() if k in given}


def _per_kind(args: argparse.Namespace) -> dict | None:
    """--per-kind-json checked (kinds and roles) before anything is written."""
    from hwsim.trace.layerspec import PARTS

    val = _per_layer(args.per_kind_json, "--per-kind-json", "proj|attn|mlp|other")
    bad = sorted(set(val or {}) - set(PARTS))
    if bad:
        raise ValueError(f"--per-kind-json: unknown kind(s) {bad}; allowed: {', '.join(PARTS)}")
    for kind, roles in (val or {}).items():
        for role, v in roles.items():
            if role not in ("w", "a", "dz"):
                raise ValueError(f"--per-kind-json: {kind}.{role}: unknown role; allowed: w, a, dz")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"--per-kind-json: {kind}.{role}: density {v!r} is not allowed; allowed: a number "
                                 "in [0, 1]")
    return val


def _densities_from(args: argparse.Namespace) -> None:
    """--densities-from must be a readable trace (checked before anything is written)."""
    if args.densities_from is None:
        return
    from hwsim.trace.format import load

    try:
        load(args.densities_from, verify=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"--densities-from {args.densities_from}: {e}") from None


def run(args: argparse.Namespace) -> int:
    from hwsim._io import replacing_dir
    from hwsim.trace.format import load

    final = args.out
    per_layer = _per_layer(args.per_layer_json)  # validated before anything is written
    args.per_kind = _per_kind(args)
    args.transformer = _transformer_options(args)
    _densities_from(args)
    if args.model and not args.sweep:
        from hwsim.trace.topology import check_synthetic_size

        where = "/".join(["--model", "--batch", *("--" + k.replace("_", "-") for k in args.transformer)])
        check_synthetic_size(args.model, args.batch, where, **args.transformer)
    if args.conv_arithmetic and not args.scalesim_csv:
        raise ValueError("--conv-arithmetic: allowed with --scalesim-csv only")
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
    wn = max(24, *(len(n) + 1 for n in sample))
    print(f"  {'layer':<{wn}}{'MACs':>18}{'w':>7}{'a':>7}{'dz':>7}{'bits':>6}")
    for name, s in sample.items():
        print(f"  {name:<{wn}}{s.geometry.macs:>18,}{s.w_density:>7.3f}{s.a_density:>7.3f}{s.dz_density:>7.3f}"
              f"{s.max_bits:>6}")
    return 0


def _conventions(args: argparse.Namespace) -> str:
    return "conv" if args.conv_arithmetic else "scalesim"


def _synth(args: argparse.Namespace, per_layer: dict | None) -> None:
    from hwsim.trace.synth import alexnet_han2015, synthesize, synthesize_density_sweep

    common = {"batch": args.batch, "level_p": args.level_p, "max_level": args.max_level, "overwrite": True}
    if args.sweep:
        try:
            dens = [float(x) for x in args.sweep.split(",") if x.strip()]
        except ValueError:
            raise ValueError(f"--sweep: {args.sweep!r} is not allowed; allowed: comma-separated densities") from None
        if args.han2015 or args.per_layer_json or args.per_kind_json or args.densities_from:
            raise ValueError("--sweep: cannot be combined with --han2015, --per-layer-json, --per-kind-json or "
                             "--densities-from")
        src = {"scalesim_csv": args.scalesim_csv, "model": None, "scalesim_conventions": _conventions(args)} \
            if args.scalesim_csv else \
            {"model": args.model or "alexnet_conv", **args.transformer}
        paths = synthesize_density_sweep(args.out, densities=dens, seed=args.seed,
                                         dense_first_input=not args.sparse_first_input, **src, **common)
        print(f"{len(paths)} traces: " + ", ".join(p.name for p in paths))
        return
    if args.han2015:
        if args.per_kind_json or args.densities_from:
            raise ValueError("--han2015: cannot be combined with --per-kind-json or --densities-from")
        alexnet_han2015(args.out, args.seed, dz_density=args.dz_density, **common)
        return
    if not args.model and not args.scalesim_csv:
        raise ValueError("synth: give --model, --scalesim-csv, --han2015 or --sweep")
    if args.scalesim_csv:
        common["scalesim_conventions"] = _conventions(args)
    synthesize(args.out, model=args.model, scalesim_csv=args.scalesim_csv, w_density=args.w_density,
               a_density=args.a_density, dz_density=args.dz_density, per_layer=per_layer,
               seed=args.seed, dense_first_input=not args.sparse_first_input, per_kind=args.per_kind,
               densities_from=args.densities_from, **args.transformer, **common)
