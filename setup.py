"""Build of hwsim's one optional C extension, ``hwsim.capture._nsdkernel`` (everything else is in pyproject.toml).

The extension is the compiled NSD of :mod:`hwsim.capture.quant_compiled`. It is optional: without a C compiler
(or if the build fails) ``pip install`` still succeeds and capture uses its numpy path, with the same traces.
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
                           depends=[f"hwsim/capture/_nsdkernel_{h}.h" for h in ("common", "nsd", "view")])],
    cmdclass={"build_ext": _BuildExt},
)
