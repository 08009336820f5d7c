"""Build of hwsim's two optional C extensions (everything else is in pyproject.toml).

``hwsim.capture._nsdkernel`` is the compiled NSD of :mod:`hwsim.capture.quant_compiled`; ``hwsim.sim._bankkernel``
the compiled bank-conflict model of :mod:`hwsim.sim.banks`. Both are optional: without a C compiler (or if a build
fails) ``pip install`` still succeeds, and capture and the simulator use their numpy paths, with the same results.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# -ffp-contract=off: "x·alpha + u rounded twice" must not be fused into an FMA by the compiler (the kernel picks
# fused or unfused to match torch / numpy bit for bit); -O3 vectorises the per-block loops.
_GCC_LIKE = ["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
_MSVC = ["/O2", "/fp:precise"]


class _BuildExt(build_ext):
    """Compiler flags by compiler family (MSVC does not take GCC's)."""

    def build_extensions(self) -> None:
        flags = _MSVC if self.compiler.compiler_type == "msvc" else _GCC_LIKE
        for ext in self.extensions:
            ext.extra_compile_args = list(flags)
        super().build_extensions()


setup(
    ext_modules=[Extension("hwsim.capture._nsdkernel", ["hwsim/capture/_nsdkernel.c"], optional=True,
                           depends=[f"hwsim/capture/_nsdkernel_{h}.h" for h in ("common", "nsd", "view", "ctr")]),
                 Extension("hwsim.sim._bankkernel", ["hwsim/sim/_bankkernel.c"], optional=True,
                           depends=[f"hwsim/sim/_bank{h}.h" for h in ("units", "counts", "queue")])],
    cmdclass={"build_ext": _BuildExt},
)
