"""hwsim's version, read once from the installed package's metadata (a leaf: imports nothing from hwsim).

Everything that records a version — ``hwsim --version``, results files, provenance — reads it here, so one
results file cannot carry two different versions.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hwsim")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
