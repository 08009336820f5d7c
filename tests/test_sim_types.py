"""Types through the simulator: every parameter of every function in ``hwsim/sim/`` is annotated.

Walks the source with ``ast`` (nothing is imported), so an unannotated ``arch``, ``trace`` or ``ops``
parameter, or any other, fails here with its file, line and name. ``arch`` must be an ``Arch``,
``trace`` a ``Trace``, ``ops`` an ``Operands``. Lambdas cannot carry annotations and are not checked.
"""

from __future__ import annotations

import ast
from pathlib import Path

SIM = Path(__file__).resolve().parents[1] / "hwsim" / "sim"
TYPED = {"arch": "Arch", "trace": "Trace", "ops": "Operands"}  # parameter name -> the type it must name


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    a = fn.args
    return [*a.posonlyargs, *a.args, *a.kwonlyargs, *([a.vararg] if a.vararg else []),
            *([a.kwarg] if a.kwarg else [])]


def untyped_parameters(source: str, file: str = "<src>") -> list[str]:
    """``file:line function(param)`` for every parameter without an annotation, or whose annotation does not
    name the type its name promises (:data:`TYPED`)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for i, arg in enumerate(_params(node)):
            if i == 0 and arg.arg in ("self", "cls"):
                continue
            where = f"{file}:{node.lineno} {node.name}({arg.arg})"
            if arg.annotation is None:
                out.append(where)
            elif arg.arg in TYPED and TYPED[arg.arg] not in ast.unparse(arg.annotation):
                out.append(f"{where}: {ast.unparse(arg.annotation)} is not {TYPED[arg.arg]}")
    return out


def test_every_simulator_parameter_is_annotated():
    files = sorted(SIM.glob("*.py"))
    assert len(files) > 20  # the walk sees the package
    bad = [b for f in files for b in untyped_parameters(f.read_text(), f.name)]
    assert not bad, "unannotated simulator parameters:\n" + "\n".join(bad)


def test_the_walk_finds_an_untyped_or_mistyped_parameter():
    src = ("def f(ops: Operands, pass_name, arch, *, rng: np.random.Generator): ...\n"
           "def g(trace: dict, arch: Arch | None, ops: Operands, *, skip: ZeroSkip) -> None:\n"
           "    def inner(x): return lambda y: y\n"
           "class C:\n    def m(self, arch: Arch) -> None: ...\n")
    assert untyped_parameters(src) == ["<src>:1 f(pass_name)", "<src>:1 f(arch)",
                                       "<src>:2 g(trace): dict is not Trace", "<src>:3 inner(x)"]
