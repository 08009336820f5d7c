"""hwsim._native: the optional compiled parts' import and the environment switches (one home for both)."""

import pytest

from hwsim import _native


def test_env_choice_defaults_to_the_first_allowed_value(monkeypatch):
    monkeypatch.delenv("HWSIM_TEST_SWITCH", raising=False)
    assert _native.env_choice("HWSIM_TEST_SWITCH", ("auto", "numpy")) == "auto"
    monkeypatch.setenv("HWSIM_TEST_SWITCH", "  ")
    assert _native.env_choice("HWSIM_TEST_SWITCH", ("auto", "numpy")) == "auto"
    monkeypatch.setenv("HWSIM_TEST_SWITCH", " NumPy ")                     # trimmed, any case
    assert _native.env_choice("HWSIM_TEST_SWITCH", ("auto", "numpy")) == "numpy"


def test_env_choice_names_the_variable_and_what_it_may_be(monkeypatch):
    monkeypatch.setenv("HWSIM_TEST_SWITCH", "fast")
    with pytest.raises(ValueError, match=r"^environment variable HWSIM_TEST_SWITCH='fast' is not allowed; "
                                         r"use one of: auto, numpy$"):
        _native.env_choice("HWSIM_TEST_SWITCH", ("auto", "numpy"))


def test_an_extension_that_was_not_built_is_none_with_the_reason():
    mod, why = _native.optional_extension("hwsim._no_such_kernel")
    assert mod is None and "_no_such_kernel" in why
    mod, why = _native.optional_extension("hwsim._version")                # any importable module: (module, None)
    assert mod is not None and why is None and mod.__name__ == "hwsim._version"


def test_both_kernels_go_through_it():
    from hwsim.capture import quant, quant_compiled
    from hwsim.sim import banks

    assert (banks._ext is None) == (banks.IMPORT_ERROR is not None)
    assert (quant_compiled._ext is None) == (quant_compiled.IMPORT_ERROR is not None)
    assert quant.QUANT_PATHS[0] == "auto" and banks.SIM_KERNELS[0] == "auto"   # the default of each switch


def _fake_module(monkeypatch, name, **attrs):
    import sys
    import types

    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


def test_a_stale_build_is_refused_with_a_warning_that_says_how_to_rebuild(monkeypatch):
    _fake_module(monkeypatch, "hwsim._stale_kernel", API=1)
    with pytest.warns(RuntimeWarning, match=r"hwsim\._stale_kernel was built from other sources \(interface 1, this "
                                            r"code needs 2\); rebuild it with `pip install -e \.`"):
        mod, why = _native.optional_extension("hwsim._stale_kernel", api=2)
    assert mod is None and "numpy path runs" in why
    _fake_module(monkeypatch, "hwsim._older_kernel")                       # built before the interface had a number
    with pytest.warns(RuntimeWarning, match="interface None"):
        assert _native.optional_extension("hwsim._older_kernel", api=2)[0] is None


def test_a_build_of_the_right_interface_is_taken(monkeypatch, recwarn):
    fake = _fake_module(monkeypatch, "hwsim._fresh_kernel", API=2)
    assert _native.optional_extension("hwsim._fresh_kernel", api=2) == (fake, None)
    assert _native.optional_extension("hwsim._fresh_kernel") == (fake, None)   # no api asked: not checked
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_the_bank_kernels_interface_number_is_the_one_its_c_source_declares():
    import re
    from pathlib import Path

    from hwsim.sim import banks

    src = (Path(banks.__file__).with_name("_bankkernel.c")).read_text()
    assert int(re.search(r"#define BANK_KERNEL_API (\d+)", src).group(1)) == banks.BANK_KERNEL_API
    if banks._ext is not None:                                             # built here: it is this source's build
        assert banks._ext.API == banks.BANK_KERNEL_API


def test_the_nsd_kernels_interface_number_is_the_one_its_c_source_declares():
    import re
    from pathlib import Path

    from hwsim.capture import quant_compiled, quant_counter

    src = (Path(quant_compiled.__file__).with_name("_nsdkernel.c")).read_text()
    assert int(re.search(r"#define NSD_KERNEL_API (\d+)", src).group(1)) == quant_compiled.NSD_KERNEL_API
    assert quant_counter._ext is quant_compiled.extension()               # one import of the kernel
    if quant_compiled.extension() is not None:
        assert quant_compiled.extension().API == quant_compiled.NSD_KERNEL_API


def test_check_switches_names_the_first_bad_switch(monkeypatch):
    for var in _native.SWITCHES:
        monkeypatch.delenv(var, raising=False)
    _native.check_switches()                                                # unset: the defaults
    monkeypatch.setenv("HWSIM_SIM_KERNEL", "NUMPY")
    _native.check_switches()                                                # any case
    monkeypatch.setenv("HWSIM_SIM_KERNEL", "torch")                         # allowed for capture, not here
    with pytest.raises(ValueError, match=r"^environment variable HWSIM_SIM_KERNEL='torch' is not allowed; "
                                         r"use one of: auto, numpy$"):
        _native.check_switches()


def test_the_kernels_read_their_switches_from_the_one_table():
    from hwsim.capture import quant
    from hwsim.sim import banks

    assert quant.QUANT_PATHS == _native.SWITCHES[quant.QUANT_PATH_ENV] == ("auto", "numpy", "torch")
    assert banks.SIM_KERNELS == _native.SWITCHES[banks.SIM_KERNEL_ENV] == ("auto", "numpy")
