"""``hwsim simulate TRACE --arch FILE --out results.json``: replay a trace on an architecture."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from hwsim.commands.args import OVERWRITE_HELP, int_range

if TYPE_CHECKING:
    from hwsim.results import SimResult
    from hwsim.results.run import RunResult

HELP = "replay a trace on an architecture: cycles and energy per layer and pass vs dense"
DESCRIPTION = (
    "Simulate TRACE on the architecture (sparse), its derived baselines (dense, dense_gated, dense systolic of "
    "equal multipliers and of equal area) and bounds (MAC bound, roofline bound, dense at 100 % of its "
    "multipliers), for the forward, backward-data and backward-weight GEMM of every layer. By default the whole "
    "training run: every sampled iteration, integrated over the run (as --iterations all); --iteration N replays "
    "one sampled iteration, --inference the forward pass of one (default: the last sampled with a full "
    "mini-batch). Writes the results file and prints a per-layer table of speed-up and energy ratio vs dense. "
    "The bank-conflict model runs compiled where pip install built it, else in numpy (the same cycles and energy); "
    "the environment variable HWSIM_SIM_KERNEL=auto|numpy chooses (auto, the default: that choice; numpy: never "
    "the compiled model)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="TRACE", help="trace directory (captured or synthetic)")
    parser.add_argument("--arch", required=True, metavar="FILE", help="architecture YAML or shipped name (scnn)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override an arch field, e.g. pe.mac_bits=16 (repeatable)")
    parser.add_argument("--iteration", type=int_range(0), default=None,
                        help="replay this one sampled iteration (default: the whole run; with --inference, the "
                             "last sampled iteration with a full mini-batch)")
    parser.add_argument("--seed", type=int_range(0), default=0, help="seed for masks the trace does not store")
    parser.add_argument("--inference", action="store_true",
                        help="replay the forward pass only, without the training stash of activations "
                             "(for comparisons with inference accelerators such as SCNN)")
    parser.add_argument("--iterations", default=None, metavar="all|last|LIST|every:N",
                        help="replay many sampled iterations and integrate their cost over the whole training run "
                             "(each replayed iteration stands for the iterations up to the next one; default: all, "
                             "unless --iteration or --inference asks for one): all, last, "
                             "every:N (every N-th sampled iteration and the last) or a list like 0,100,450; "
                             "writes per-iteration records, the whole-run total and the spread (the estimator's "
                             "measured error: the README's estimator-error table)")
    parser.add_argument("--jobs", "-j", type=int_range(1, 256), default=1, metavar="N",
                        help="with --iterations: local worker processes (as hwsim sweep)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="with --iterations: run on a Dask distributed scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="with --iterations: store each replayed iteration in DIR as it finishes, so an "
                             "interrupted run resumes (default: OUT without .json + '.points')")
    parser.add_argument("--out", default="results.json", metavar="FILE", help="results file to write (atomically)")
    parser.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def table(result: SimResult) -> str:
    """Per-layer speed-up and energy ratio of the sparse variant vs dense, per pass, plus totals."""
    from hwsim.results import PASSES

    short = {"forward": "fwd", "backward_data": "bwd-data", "backward_weight": "bwd-weight"}
    # the passes' columns, then the weight update and the iteration (a pass may wait on none while the update does)
    foreign = foreign_scope_shares(result, (*PASSES, "update", "iteration"))
    w = max([13] + [len(n) for n in result.layer_names()] + [len(FOREIGN_LABEL)] * bool(foreign)) + 1  # fits all
    head = f"{'layer':<{w}}" + "".join(f"{short[p] + ' speed-up':>20}{'energy':>9}" for p in PASSES)
    lines = [head, "-" * len(head)]
    ran: set[str] = set()
    for name in result.layer_names():
        row = f"{name:<{w}}"
        for p in PASSES:
            try:
                lp = result.layer(name, p)
                row += f"{lp.speedup():>19.2f}×{lp.energy_ratio():>8.2f}×"
                ran.add(p)
            except KeyError:
                row += f"{'-':>20}{'-':>9}"
        lines.append(row)
    lines.append("-" * len(head))
    row = f"{'total':<{w}}"
    for p in PASSES:
        if p in ran:
            row += f"{result.speedup(pass_name=p):>19.2f}×{result.energy_ratio(pass_name=p):>8.2f}×"
        else:  # e.g. --inference: no backward pass was replayed
            row += f"{'-':>20}{'-':>9}"
    lines.append(row)
    if foreign:  # per pass: the share of its cycles the PEs waited on other passes' DRAM transfers
        rest = ", ".join(f"{s} {foreign[s]:.1%}" for s in ("update", "iteration") if s in foreign)
        lines.append((f"{FOREIGN_LABEL:<{w}}" + "".join(f"{foreign[p]:>19.1%} {'':>9}" if p in foreign
                                                       else f"{'-':>20}{'':>9}" for p in PASSES)).rstrip()
                     + (f"   ({rest})" if rest else ""))
    lines.append(f"iteration: sparse {result.speedup():.2f}× faster, {result.energy_ratio():.2f}× less energy "
                 f"than dense (dense-gated {result.energy_ratio('dense_gated'):.2f}× energy)")
    lines.extend(bounds_lines(result))
    lines.extend(update_line(result))
    lines.extend(attribution_lines(result))
    lines.append(nongemm_line(result))
    from hwsim.trace.schema import coverage_line

    cov = result.trace.get("coverage")
    lines.append(coverage_line(cov) + (" — whole-model figures cover the captured GEMMs only"
                                       if cov and cov.get("missed") else ""))
    return "\n".join(lines)


ATTRIBUTION_SHARE = 0.01  # footnote a layer-pass whose wait on other passes' transfers is ≥ 1 % of the iteration
FOREIGN_LABEL = "waits on other passes"


def _iteration_schedule(result: SimResult) -> bool:
    return ((result.arch.get("params") or {}).get("memory") or {}).get("schedule") == "iteration"


def foreign_shares(result: SimResult) -> dict[str, float]:
    """Under ``memory.schedule: iteration``: per pass that ran, the share of its sparse cycles the PEs waited while
    the DRAM channel carried other passes' transfers (``memory_stall_foreign``, measured in the schedule,
    :mod:`hwsim.sim.schedule`); ``{}`` when no pass has any (``isolated``: never)."""
    from hwsim.results import PASSES

    return foreign_scope_shares(result, PASSES)


def foreign_scope_shares(result: SimResult, scopes) -> dict[str, float]:
    """:func:`foreign_shares` for ``scopes`` (passes, ``update``, ``iteration``) with any sparse cycles."""
    if not _iteration_schedule(result):
        return {}
    shares = {}
    for p in scopes:
        v = result.scope_total(p, "sparse")
        if v.cycles:
            shares[p] = v.cycle_breakdown.memory_stall_foreign / v.cycles
    return shares if any(shares.values()) else {}


def foreign_waits(layers, *, min_cycles: float = 0) -> list[tuple[str, str, int, int]]:
    """Sparse layer-passes that waited on other passes' DRAM transfers, most first (ties: layer order).

    Returns ``(name, pass, memory_stall, foreign)`` with ``foreign`` = ``memory_stall_foreign`` (the cycles of the
    pass's memory stall during which the DRAM channel carried other layer-passes' transfers, measured in the
    ``memory.schedule: iteration`` schedule, :mod:`hwsim.sim.schedule`) and ``foreign ≥ min_cycles`` (and > 0).
    A layer-pass is charged every cycle from the previous pass's end to its own, so it is charged such waits, e.g.
    for δW write-backs queued ahead of the tensor it reads (the writer drains in order).
    """
    out = []
    for lp in layers:
        cb = lp.sparse.cycle_breakdown
        if cb.memory_stall_foreign > 0 and cb.memory_stall_foreign >= min_cycles:
            out.append((lp.name, lp.pass_name, cb.memory_stall, cb.memory_stall_foreign))
    return sorted(out, key=lambda r: -r[3])


def attribution_lines(result: SimResult, *, most: int = 3, scope: str = "this iteration") -> list[str]:
    """Under ``memory.schedule: iteration``: how the per-pass cycles are attributed, and the layer-passes charged
    ≥ :data:`ATTRIBUTION_SHARE` of the iteration for waiting on other passes' DRAM transfers (:func:`foreign_waits`).
    Nothing for ``isolated`` (every pass pays only its own traffic) or when no pass waits that long."""
    total = result.total("sparse").cycles
    if not _iteration_schedule(result) or not total:
        return []
    waits = foreign_waits(result.layers, min_cycles=ATTRIBUTION_SHARE * total)
    if not waits:
        return []
    short = {"forward": "fwd", "backward_data": "bwd-data", "backward_weight": "bwd-weight", "update": "update"}
    arbiter = ((result.arch.get("params") or {}).get("memory") or {}).get("dram_arbiter")  # None: older results
    other = {"reads_first": "in_order", "in_order": "reads_first"}.get(arbiter)
    lines = [f"per-pass attribution ({scope}, memory.schedule: iteration"
             + (f", memory.dram_arbiter: {arbiter}" if arbiter else "")
             + "): a layer-pass is charged from the previous "
             "pass's end to its own end, so a pass that waits for DRAM is charged the wait even while the channel "
             "carries other passes' transfers",
             "  (write-backs drain in order: a pass reading a spilled tensor waits behind every write-back queued "
             "before it, e.g. earlier passes' δW); this moves cycles between passes and phases, not the "
             f"iteration's total (see '{FOREIGN_LABEL}' above); "
             + (f"--set memory.dram_arbiter={other} shows the other arbiter's split; " if other else "")
             + "--set memory.schedule=isolated charges each pass its own traffic only:"]
    for name, pname, stall, foreign in waits[:most]:
        lines.append(f"  {name} {short.get(pname, pname)}: {stall:,} memory-stall cycles, of which {foreign:,} "
                     f"({foreign / total:.1%} of the iteration's cycles) waiting on other passes' transfers")
    return lines


def nongemm_line(result: SimResult) -> str:
    """The share of the iteration the non-GEMM work takes on the vector unit, and what the trace records of it."""
    from hwsim.results.views import nongemm_share
    from hwsim.trace.nongemm import coverage_line

    sparse, dense = result.total("sparse"), result.total("dense")
    share = f"{nongemm_share(sparse) or 0:.1%} of sparse cycles, {nongemm_share(dense) or 0:.1%} of dense cycles"
    return f"{coverage_line(result.trace.get('nongemm'))} — on the vector unit: {share}"


def update_line(result: SimResult) -> list[str]:
    """The weight update's share of the iteration and the optimizer it modelled (hwsim/sim/update.py)."""
    u = result.run.get("update")
    total = result.total("sparse").cycles
    if not isinstance(u, dict) or not total:
        return []
    share = result.scope_total("update", "sparse").cycles / total
    return [f"weight update: {share:.1%} of the sparse iteration's cycles — {u.get('optimizer')} on "
            f"{u.get('params', 0):,} parameters ({u.get('from')}), W {u.get('master_weight_bits')}-bit, state "
            f"{u.get('state_bits')}-bit, {'on chip' if u.get('on_chip') else 'in DRAM'}"]


def bounds_lines(result: SimResult) -> list[str]:
    """The iteration's sparse cycles against each baseline and bound, each named for what it is (issue 17)."""
    from hwsim.results import LABELS

    sparse = result.total("sparse").cycles
    ea = result.arch.get("dense_equal_area") or {}
    shape = f" {ea['shape'][0]}×{ea['shape'][1]}" if ea.get("shape") else ""
    vs = []
    for name in ("dense_systolic", "dense_equal_area", "dense_full"):
        c = result.scope_cycles("iteration", name)
        if c:  # absent in results that predate the baseline
            vs.append(f"{LABELS[name]}{shape if name == 'dense_equal_area' else ''} {c / sparse:.2f}×"
                      if sparse else f"{LABELS[name]} –")
    reach = [f"{result.speedup(baseline=b):.1%} of the {LABELS[b]} ({result.bound(b):,} cycles)"
             for b in ("mac_bound", "roofline")]
    return [f"sparse vs {', '.join(vs)}", f"sparse reaches {'; '.join(reach)}; the MAC bound is "
            f"{result.speedup('mac_bound'):.2f}× faster than dense"]


def run_table(run: RunResult) -> str:
    """Whole run vs last iteration: speed-up and energy gain per pass, with the spread over iterations."""
    from hwsim.results import ALL_PASSES

    whole, last, sp = run.integrated, run.last, run.spread()
    foreign = foreign_scope_shares(whole, (*ALL_PASSES, "iteration"))  # whole run, sparse
    lines = [f"{'pass':<16}{'whole-run speed-up':>20}{'last it.':>10}{'spread p10–p90 [min, max]':>30}"
             f"{'whole-run energy':>18}{'last it.':>10}" + (f"{FOREIGN_LABEL:>23}" if foreign else "")]
    for p in (*ALL_PASSES, None):
        if p is not None and not any(lp.pass_name == p for lp in whole.layers):
            continue
        s = (sp["passes"][p] if p else sp["iteration"])["speedup"]
        lines.append(f"{p or 'iteration':<16}{whole.speedup(pass_name=p):>19.2f}×{last.speedup(pass_name=p):>9.2f}×"
                     f"{s['p10']:>12.2f}–{s['p90']:.2f} [{s['min']:.2f}, {s['max']:.2f}]"
                     f"{whole.energy_ratio(pass_name=p):>17.2f}×{last.energy_ratio(pass_name=p):>9.2f}×"
                     + (f"{foreign.get(p or 'iteration', 0.0):>23.1%}" if foreign else ""))
    n, total = len(run.iterations), run.total_iterations
    lines.append(f"{n} replayed iteration{'s' * (n != 1)} {run.replayed[:6]}{' …' if len(run.replayed) > 6 else ''}"
                 f" standing for {total} training iteration{'s' * (total != 1)} (left-hold estimator)"
                 + ("; one iteration: the whole run is that iteration, with no spread" if n == 1 else ""))
    lines.extend(attribution_lines(run.last, scope="the last replayed iteration"))
    lines.append(nongemm_line(whole))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from hwsim._io import check_output
    from hwsim.arch import load_arch, parse_overrides
    from hwsim.results import save_results
    from hwsim.sim import simulate

    check_output(args.out, overwrite=args.overwrite)  # before simulating: an existing or unwritable --out fails now
    if args.iterations is None and args.iteration is None and not args.inference:
        args.iterations = "all"  # the default: the whole run (one iteration is biased, e.g. an epoch's short batch)
        if not args.quiet:
            print("replaying the whole training run: every sampled iteration (--iteration N for one, "
                  "--iterations every:N for fewer)")
    if args.iterations is not None:
        return _run_whole(args)
    if args.jobs != 1 or args.scheduler or args.cache:
        from hwsim.commands.args import UserError
        raise UserError("--jobs/--scheduler/--cache: only with --iterations (one iteration runs in-process)")
    arch = load_arch(args.arch, overrides=parse_overrides(args.overrides) if args.overrides else None)
    result = simulate(args.trace, arch, iteration=args.iteration, seed=args.seed, progress=not args.quiet,
                      training=not args.inference)
    path = save_results(result, args.out)
    if not args.quiet:
        print(table(result))
    if result.run.get("iteration_choice"):
        print(f"replayed {result.run['iteration_choice']}")
    print(f"wrote {path}")
    return 0


def _run_whole(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hwsim.arch import parse_overrides
    from hwsim.commands.args import UserError
    from hwsim.results.run import save_run_results
    from hwsim.sweep.replays import simulate_run
    from hwsim.trace.format import load

    if args.inference:
        raise UserError("--inference: a whole-run replay (--iterations) replays training iterations; drop one of them")
    if args.iteration is not None:
        raise UserError("--iteration and --iterations: give one of them")
    overrides = parse_overrides(args.overrides) if args.overrides else {}  # simulate_run validates before any replay
    out = Path(args.out)
    cache = args.cache or str(out.with_suffix("")) + ".points"
    result = simulate_run(load(args.trace, verify=False), args.arch, iterations=args.iterations, seed=args.seed,
                          progress=not args.quiet, jobs=args.jobs, scheduler=args.scheduler, cache_dir=cache,
                          overrides=overrides)
    path = save_run_results(result, out)
    if not args.quiet:
        print(run_table(result))
    print(f"wrote {path} (per-iteration records in it; replayed points cached in {cache})")
    return 0
