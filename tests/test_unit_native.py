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
                                         r"use one of \('auto', 'numpy'\)$"):
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
