"""Test lines per code line, per hwsim package.

    python benchmarks/test_ratio.py [--files] [--rev REV]

Code lines of a package: the non-blank lines of ``hwsim/<package>/**/*.py`` that are neither only a comment nor
part of a module/class/function docstring (``cloc``'s convention for Python). Test lines: the same count over the ``tests/test_*.py`` files attributed to that package. A test
file is attributed to the hwsim package it imports most (``from hwsim.<package>...`` / ``import hwsim.<package>``
and a ``hwsim.<package>.`` attribute path count once per line); a tie, or a file that imports no package, goes to the
package whose name appears in the file's name (``test_unit_report_page.py`` → report), else to ``(other)``.
Top-level modules (``hwsim/cli.py``, ``hwsim/_io.py``, ...) count as the package ``(top)``.
``--rev REV`` counts a git revision instead of the working tree (``git show REV:path``).
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"\bhwsim\.([a-z_]+)\b")


def sloc(text: str) -> int:
    """Non-blank lines that are neither only a comment nor part of a docstring (as ``cloc`` counts Python)."""
    doc: set[int] = set()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        tree = None
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                doc.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return sum(1 for i, line in enumerate(text.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and i not in doc)


def packages(names: list[str]) -> list[str]:
    """hwsim sub-packages among repository paths."""
    return sorted({p.split("/")[1] for p in names if p.startswith("hwsim/") and p.count("/") >= 2
                   and p.endswith("/__init__.py") and p.count("/") == 2})


def attribute(name: str, text: str, pkgs: list[str]) -> str:
    """The package a test file targets: the one it names most on import/attribute lines, then its file name."""
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        s = line.strip()
        if not (s.startswith(("from hwsim", "import hwsim")) or "hwsim." in s):
            continue
        for pkg in set(IMPORT.findall(s)):
            if pkg in pkgs:
                counts[pkg] += 1
    stem = Path(name).stem
    by_name = [p for p in pkgs if re.search(rf"(^|_){p}(_|$)", stem.removeprefix("test_"))]
    if counts:
        top = counts.most_common()
        best = [p for p, c in top if c == top[0][1]]
        if len(best) == 1:
            return best[0]
        named = [p for p in best if p in by_name]
        if named:
            return named[0]
        return sorted(best)[0]
    return by_name[0] if by_name else "(other)"


def listing(rev: str | None) -> dict[str, str]:
    """path → text of every hwsim/ and tests/ .py file (the working tree, or a git revision)."""
    if rev is None:
        files = [p for d in ("hwsim", "tests") for p in (ROOT / d).rglob("*.py") if "__pycache__" not in p.parts]
        return {str(p.relative_to(ROOT)): p.read_text() for p in files}
    names = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "hwsim", "tests"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    return {n: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout for n in names if n.endswith(".py")}


def ratios(files: dict[str, str]) -> tuple[dict[str, int], dict[str, int], dict[str, list[str]]]:
    pkgs = packages(list(files))
    code: dict[str, int] = defaultdict(int)
    for path, text in files.items():
        if path.startswith("hwsim/"):
            parts = path.split("/")
            code[parts[1] if len(parts) > 2 else "(top)"] += sloc(text)
    tests: dict[str, int] = defaultdict(int)
    owners: dict[str, list[str]] = defaultdict(list)
    for path, text in files.items():
        if path.startswith("tests/") and Path(path).name.startswith("test_"):
            pkg = attribute(path, text, pkgs)
            tests[pkg] += sloc(text)
            owners[pkg].append(Path(path).name)
    return dict(code), dict(tests), dict(owners)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default=None, help="count this git revision instead of the working tree")
    ap.add_argument("--files", action="store_true", help="list the test files attributed to each package")
    a = ap.parse_args(argv)
    code, tests, owners = ratios(listing(a.rev))
    print(f"{'package':<14}{'code':>7}{'tests':>7}{'ratio':>7}")
    for pkg in sorted(set(code) | set(tests)):
        c, t = code.get(pkg, 0), tests.get(pkg, 0)
        print(f"{pkg:<14}{c:>7}{t:>7}{(t / c if c else float('nan')):>7.2f}")
        if a.files:
            print("    " + ", ".join(sorted(owners.get(pkg, []))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
