"""``hwsim.capture`` is a callable module: ``inspect.signature`` and ``help()`` show the capture function's own
signature, not the ``(*args, **kwargs)`` of the module's ``__call__``."""

from __future__ import annotations

import inspect
import pydoc
import subprocess
import sys
import types


def test_signature_of_the_callable_module_is_the_capture_functions():
    import hwsim
    import hwsim.capture
    from hwsim.capture.session import capture

    assert isinstance(hwsim.capture, types.ModuleType)  # the package, bound by the import above
    sig = inspect.signature(hwsim.capture)
    assert sig == inspect.signature(capture)
    assert list(sig.parameters)[:3] == ["model", "method", "s"] and sig.parameters["method"].default == "dither"


def test_help_lists_capture_with_its_signature():
    import hwsim.capture
    from hwsim.capture.session import capture

    text = pydoc.render_doc(hwsim.capture, renderer=pydoc.plaintext)
    assert f"capture{inspect.signature(capture)}" in text
    assert "capture" in dir(hwsim.capture)


def test_importing_the_package_and_reading_its_names_stays_torch_free():
    # the signature is read from the function on first use, so the package itself still imports without torch
    code = ("import sys, hwsim.capture as c; names = dir(c); "
            "assert 'capture' in names and 'torch' not in sys.modules, sorted(sys.modules)[:5]")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
