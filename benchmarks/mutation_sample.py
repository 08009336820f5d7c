"""Sampled mutation testing of hwsim/sim, hwsim/trace and hwsim/capture: do the tests notice a wrong operator?

    python benchmarks/mutation_sample.py [--n 42] [--seed 0] [--tests-from REV] [--timeout 300]
                                         [--packages sim,trace,capture]

A full ``mutmut`` run (thousands of mutants × the whole suite) is far out of reach on 2 shared
cores, so this samples: it lists every mutable token of ``hwsim/sim/*.py``,
``hwsim/trace/*.py`` and ``hwsim/capture/*.py`` (not the torch zoo under ``capture/zoo/``) (arithmetic ``+ - * / // %`` swapped, comparisons ``< <= > >= == !=``
flipped, ``and``/``or`` and ``True``/``False`` swapped, integer constants n → n + 1), draws ``n``
of them (split evenly over the packages, seeded, only mutants that still compile), and for each one copies the
repository to a scratch folder, applies the mutation there (the working tree is never touched),
and runs that package's test files with ``-x`` under a timeout. A mutant is *killed* if the tests
fail or time out, *survives* if they pass. Prints every mutant and the kill rate per package.

``--tests-from REV`` takes ``tests/`` from a git revision (same mutants: compare the tests of two
commits). The test files per package are listed in ``TESTS`` below (the suites that exercise the
package directly; slow end-to-end files — training captures, torchrun, experiments — are left out,
so the rate is a lower bound for the whole suite). For capture these are the fast torch-level suites
(quantisers, interception, int8, device dispatch, configs, broadcast_state), a few seconds each; the
captures that train a model (test_capture.py, test_capture_setups.py, test_distributed.py) are not.
Mutants are drawn package by package in the order of ``--packages`` from one seeded generator, so a
comparison of two test revisions must use the same ``--seed``, ``--n`` and ``--packages``.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"sim": "hwsim/sim", "trace": "hwsim/trace", "capture": "hwsim/capture"}
TESTS = {
    "sim": ["tests/test_sim_*.py", "tests/test_unit_*.py", "tests/test_bitserial.py", "tests/test_bitserial_sim.py",
            "tests/test_wholerun_golden.py"],
    "trace": ["tests/test_trace_format.py", "tests/test_synth.py", "tests/test_sim_invariants.py",
              "tests/test_unit_trace_*.py"],
    "capture": ["tests/test_quant.py", "tests/test_unit_intercept.py", "tests/test_unit_quant_device.py",
                "tests/test_int8.py", "tests/test_capture_ops.py", "tests/test_capture_device.py",
                "tests/test_unit_capture_*.py", "tests/test_unit_distributed_config.py"],
}
SWAP_OP = {"+": "-", "-": "+", "*": "/", "/": "*", "//": "*", "%": "//", "<": "<=", "<=": "<", ">": ">=",
           ">=": ">", "==": "!=", "!=": "=="}
SWAP_NAME = {"and": "or", "or": "and", "True": "False", "False": "True"}


def candidates(path: Path) -> list[tuple[int, int, str, str]]:
    """(line, col, old, new) for every mutable token of ``path`` (1-based lines)."""
    out = []
    src = path.read_text()
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.OP and tok.string in SWAP_OP:
            out.append((tok.start[0], tok.start[1], tok.string, SWAP_OP[tok.string]))
        elif tok.type == tokenize.NAME and tok.string in SWAP_NAME:
            out.append((tok.start[0], tok.start[1], tok.string, SWAP_NAME[tok.string]))
        elif tok.type == tokenize.NUMBER and tok.string.isdigit():
            out.append((tok.start[0], tok.start[1], tok.string, str(int(tok.string) + 1)))
    return out


def apply(src: str, line: int, col: int, old: str, new: str) -> str:
    lines = src.splitlines(keepends=True)
    text = lines[line - 1]
    assert text[col:col + len(old)] == old, (line, col, old, text)
    lines[line - 1] = text[:col] + new + text[col + len(old):]
    return "".join(lines)


def sample(rng: random.Random, package: str, n: int, root: Path = ROOT) -> list[tuple[Path, int, int, str, str]]:
    """``n`` compiling mutants of ``package`` as found under ``root`` (the scratch copy the tests will run in:
    sampling the working tree instead would misplace mutants when it changes during a long run)."""
    pool = [(f, *c) for f in sorted((root / PACKAGES[package]).glob("*.py")) for c in candidates(f)]
    rng.shuffle(pool)
    chosen = []
    for f, line, col, old, new in pool:
        if len(chosen) == n:
            break
        mutated = apply(f.read_text(), line, col, old, new)
        try:
            compile(mutated, str(f), "exec")
        except SyntaxError:
            continue  # e.g. ``*args`` → ``/args``: not a mutant
        if mutated.splitlines()[line - 1].lstrip().startswith(("def ", "class ", "@")) and old in SWAP_OP:
            continue  # an operator in a signature (defaults, annotations) is rarely behaviour
        chosen.append((f, line, col, old, new))
    return chosen


def scratch_copy(tests_from: str | None) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="hwsim-mutation-"))
    shutil.copytree(ROOT / "hwsim", tmp / "hwsim", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("arch_configs", "traces", "benchmarks", "docs", "reports", "README.md", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, tmp / name)
    if tests_from:
        (tmp / "tests").mkdir()
        tar = subprocess.run(["git", "archive", tests_from, "tests"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=tar.stdout, check=True)
    else:
        shutil.copytree(ROOT / "tests", tmp / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def run_tests(work: Path, package: str, timeout: float, *, show: bool = False) -> tuple[str, float]:
    files = sorted({str(p.relative_to(work)) for pat in TESTS[package] for p in work.glob(pat)})
    env = {**os.environ, "PYTHONPATH": str(work), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "timeout=0",
                            *files], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - t0
    if show and r.returncode:
        print(r.stdout[-3000:], r.stderr[-2000:])
    return ("pass" if r.returncode == 0 else "fail"), time.monotonic() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=42, help="mutants in all (split evenly over the packages)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tests-from", default=None, metavar="REV", help="take tests/ from this git revision")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per mutant's test run (timeout = killed)")
    ap.add_argument("--packages", default="sim,trace,capture")
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)
    packages = [p for p in a.packages.split(",") if p]
    work = scratch_copy(a.tests_from)
    summary = {}
    try:
        for pkg in packages:
            status, sec = run_tests(work, pkg, a.timeout, show=True)
            print(f"[{pkg}] baseline: {status} in {sec:.0f} s ({', '.join(TESTS[pkg])})", flush=True)
            if status != "pass":
                print(f"[{pkg}] the unmutated tests do not pass: no kill rate", flush=True)
                continue
            killed = 0
            muts = sample(rng, pkg, a.n // len(packages), root=work)
            for i, (f, line, col, old, new) in enumerate(muts):
                target = f
                original = target.read_text()
                target.write_text(apply(original, line, col, old, new))
                try:
                    status, sec = run_tests(work, pkg, a.timeout)
                finally:
                    target.write_text(original)
                killed += status != "pass"
                code = original.splitlines()[line - 1].strip()[:70]
                print(f"[{pkg}] {i + 1:2d} {f.relative_to(work)}:{line}  {old!r} -> {new!r}  "
                      f"{'KILLED' if status != 'pass' else 'survived'} ({status}, {sec:.0f} s)  | {code}", flush=True)
            summary[pkg] = (killed, len(muts))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for pkg, (k, n) in summary.items():
        print(f"kill rate {pkg}: {k}/{n} = {k / max(1, n):.0%}  (tests from {a.tests_from or 'working tree'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
