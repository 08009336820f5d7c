"""Imports flow one way: the simulator never needs torch or matplotlib; reports never need the simulator;
no module of hwsim imports, however indirectly or lazily, a module that imports it back."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwsim"


def _modules_after_import(*mods: str) -> set[str]:
    code = "import sys\n" + "".join(f"import {m}\n" for m in mods) + "print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_sim_arch_results_and_trace_do_not_import_torch_or_matplotlib():
    loaded = _modules_after_import("hwsim.sim", "hwsim.arch", "hwsim.results", "hwsim.trace",
                                   "hwsim.trace.format", "hwsim.trace.schema", "hwsim.trace.synth",
                                   "hwsim.trace.topology", "hwsim.trace.writer", "hwsim.results.breakdown")
    assert "hwsim.sim" in loaded
    assert not {m for m in loaded if m == "torch" or m.startswith("torch.")}
    assert not {m for m in loaded if m == "matplotlib" or m.startswith("matplotlib.")}


def test_report_does_not_import_sim_or_torch():
    loaded = _modules_after_import("hwsim.report")
    assert "hwsim.report" in loaded
    assert not {m for m in loaded if m.startswith("hwsim.sim")}
    assert "torch" not in loaded


def test_cli_help_does_not_import_torch():
    """``hwsim --help`` and every ``hwsim COMMAND --help`` import every command module, never torch."""
    code = ("import sys\n"
            "from hwsim.cli import COMMANDS, build_parser, main\n"
            "build_parser()\n"
            "for argv in [['--help']] + [[c, '--help'] for c in COMMANDS]:\n"
            "    try:\n"
            "        main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('MODULES', ' '.join(sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.rsplit("MODULES", 1)[1].split())
    from hwsim.cli import COMMANDS

    missing = {f"hwsim.commands.{c}" for c in COMMANDS} - loaded
    assert not missing, f"the parser did not import {missing}: the check below would not cover them"
    torchy = sorted(m for m in loaded if m == "torch" or m.startswith("torch."))
    assert not torchy, f"--help imported torch ({torchy[:3]}...)"


def test_import_linter_contracts_hold():
    assert shutil.which("lint-imports"), "import-linter is a dev requirement (pip install -e '.[dev]')"
    out = subprocess.run(["lint-imports"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_capture_package_is_also_the_capture_function():
    """``hwsim.capture(model, ...)`` keeps working after ``import hwsim.capture.session`` binds the package."""
    code = ("import hwsim, hwsim.capture.session, torch\n"
            "m = torch.nn.Linear(3, 2)\n"
            "with hwsim.capture(m, method='none') as cap:\n"
            "    m(torch.ones(4, 3)).sum().backward(); cap.step()\n"
            "print(type(cap).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Capture"


# ----------------------------------------------------------------------------- import cycles


def _module_names(root: Path) -> dict[str, tuple[Path, bool]]:
    """``{"hwsim.sim.replay": (path, is_package)}`` for every module under ``root``."""
    out = {}
    for p in sorted(root.rglob("*.py")):
        parts = list(p.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return out


def _owner(name: str, modules: Mapping[str, object]) -> str | None:
    """The module ``name`` refers to: itself, or the nearest enclosing module (``pkg.mod.attr`` → ``pkg.mod``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, is_pkg: bool, modules: Mapping[str, object]) -> set[str]:
    """Every hwsim module ``module`` imports: top-level, inside functions, under ``TYPE_CHECKING``, and by name
    (``importlib.import_module("hwsim.x")``, a lazy table of names, ``f"hwsim.commands.{name}"``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    not_imports = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    not_imports |= {id(a) for n in ast.walk(tree) if isinstance(n, ast.Call) and _callee(n) == "getLogger"
                    for a in n.args}  # a logger named after its module is not an import
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[:len(base) - node.level + 1]
                node_mod = ".".join(base + ([node.module] if node.module else []))
            else:
                node_mod = node.module or ""
            for a in node.names:  # a submodule (``from hwsim.sim import work``), or a name of node_mod
                found.add(f"{node_mod}.{a.name}" if f"{node_mod}.{a.name}" in modules else node_mod)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in not_imports:
            if node.value.startswith("hwsim.") and node.value in modules:  # "hwsim" alone: a distribution name
                found.add(node.value)
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            prefix = str(node.values[0].value)
            if prefix.endswith(".") and prefix[:-1] in modules:
                found.update(m for m in modules if m.startswith(prefix))
    owners = {_owner(n, modules) for n in found if n == "hwsim" or n.startswith("hwsim.")}
    return {o for o in owners if o is not None and o != module}


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = _module_names(root)
    return {m: _imports(m, p, is_pkg, modules) for m, (p, is_pkg) in modules.items()}


def test_the_cycle_finder_finds_a_lazy_and_a_type_only_cycle(tmp_path):
    pkg = tmp_path / "hwsim"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('_LAZY = {"f": ("hwsim.sub.b", "f")}\n')
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from hwsim.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import X\n")
    (pkg / "c.py").write_text("import hwsim\n")
    graph = import_graph(pkg)
    assert graph["hwsim"] == {"hwsim.sub.b"} and graph["hwsim.c"] == {"hwsim"}
    assert _cycles(graph) == [["hwsim.sub.a", "hwsim.sub.b"]]
    (pkg / "sub" / "b.py").write_text("import hwsim.c\n")  # b → c → the root → b, through the lazy table
    assert _cycles(import_graph(pkg)) == [["hwsim", "hwsim.c", "hwsim.sub.b"]]


def test_no_import_cycles_anywhere_in_hwsim():
    graph = import_graph()
    assert len(graph) > 100 and "hwsim.sim.replay" in graph["hwsim.sim"] | graph["hwsim.sim.replay"] | {"hwsim.sim.replay"}
    assert {f"hwsim.commands.{c}" for c in ("simulate", "trace")} <= graph["hwsim.cli"], "importlib edges are seen"
    cycles = _cycles(graph)
    assert not cycles, "import cycles (function-level, TYPE_CHECKING and importlib imports count):\n" + "\n".join(
        " ↔ ".join(c) for c in cycles)
