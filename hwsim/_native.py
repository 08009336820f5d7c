"""hwsim's optional compiled parts, and the environment switches that choose a path (one home for both).

Two C extensions are built by ``setup.py`` when a C compiler is present (``optional=True``: without one ``pip
install`` still succeeds): capture's NSD kernel (``hwsim.capture._nsdkernel``, switched by ``HWSIM_QUANT_PATH``)
and the simulator's bank-conflict model (``hwsim.sim._bankkernel``, ``HWSIM_SIM_KERNEL``). Each has a numpy path
that gives the same results bit for bit; the callers pick between them with :func:`env_choice` and import the
extension with :func:`optional_extension`. A leaf: it imports nothing from hwsim, and the extensions import
nothing from hwsim either.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType


def optional_extension(name: str, api: int | None = None) -> tuple[ModuleType | None, str | None]:
    """(the compiled module ``name``, None) if it was built, else (None, why not).

    ``api``: the interface version the Python side was written against; a module built from older sources (an
    editable install pulled without a rebuild) exposes another ``API`` and is refused with a warning that says how to
    rebuild it — the numpy path serves meanwhile, with the same results, instead of a missing function failing a run."""
    try:  # by name: a C module imported by its full dotted name, never through the package that wraps it
        mod = importlib.import_module(name)
    except ImportError as e:  # no compiler at install time: the numpy path serves
        return None, str(e)
    built = getattr(mod, "API", None)
    if api is not None and built != api:
        why = (f"{name} was built from other sources (interface {built}, this code needs {api}); rebuild it with "
               "`pip install -e .` (or `python setup.py build_ext --inplace` in a checkout) — the numpy path runs "
               "until then")
        warnings.warn(why, RuntimeWarning, stacklevel=2)
        return None, why
    return mod, None


def env_choice(var: str, allowed: tuple[str, ...]) -> str:
    """The value of environment variable ``var`` (trimmed, lower case; unset or empty: ``allowed[0]``), one of
    ``allowed``; anything else is a ValueError naming the variable and what it may be."""
    v = os.environ.get(var, allowed[0]).strip().lower() or allowed[0]
    if v not in allowed:
        raise ValueError(f"environment variable {var}={v!r} is not allowed; use one of: {', '.join(allowed)}")
    return v


# The environment switches of the compiled parts (their first value is the default); their modules read them through
# env_choice, and the command line checks them all before a command starts (check_switches), so a bad value fails
# at once instead of minutes into a run, in a worker process.
SWITCHES: dict[str, tuple[str, ...]] = {
    "HWSIM_QUANT_PATH": ("auto", "numpy", "torch"),  # capture's NSD on CPU (hwsim.capture.quant)
    "HWSIM_SIM_KERNEL": ("auto", "numpy"),            # the simulator's compiled counting steps (hwsim.sim.banks)
}


def check_switches() -> None:
    """A ValueError naming the first environment switch of :data:`SWITCHES` whose value is not allowed."""
    for var, allowed in SWITCHES.items():
        env_choice(var, allowed)

