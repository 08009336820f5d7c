"""Architectures: YAML → validator → frozen dataclasses, plus the energy table and dense baselines.

numpy/yaml only (never torch or matplotlib): the simulator and the sweep import this.

>>> arch = load_arch("scnn", overrides={"pe.mac_bits": 16})
>>> arch.total_multipliers, arch.energy.mult_pj_for(arch.pe.mac_bits)
(1024, 0.8)
"""

from hwsim.arch.area import AreaTable
from hwsim.arch.costs import QuantizerConfig, ReductionConfig
from hwsim.arch.dataflows import BACKWARD_DATAFLOWS, DATAFLOWS, SYSTOLIC_DATAFLOWS, Dataflows, GatherConfig
from hwsim.arch.energy import BIT_OP_PJ, HOROWITZ_45NM, EnergyTable
from hwsim.arch.errors import ArchError
from hwsim.arch.loader import (
    ARCH_DIR,
    apply_overrides,
    arch_from_dict,
    load_arch,
    parse_overrides,
    resolve_arch_path,
    shipped_arch_names,
)
from hwsim.arch.silicon import area_breakdown_um2, area_mm2, leakage_mw
from hwsim.arch.spec import (
    ARCH_VERSION,
    BIT_SERIAL_MODES,
    COMPRESSIONS,
    MAC_KINDS,
    Arch,
    MemoryConfig,
    PEArray,
    PEConfig,
    ZeroSkip,
)
from hwsim.arch.tensordash import TensorDashConfig
from hwsim.arch.update import OPTIMIZERS, UpdateConfig
from hwsim.arch.variants import (
    dense_equal_area_variant,
    dense_gated_variant,
    dense_systolic_variant,
    dense_variant,
    equal_area_shape,
    systolic_shape,
)
from hwsim.arch.vector import VECTOR_OPS, VectorConfig

__all__ = [
    "ARCH_DIR", "ARCH_VERSION", "BACKWARD_DATAFLOWS", "Dataflows", "GatherConfig", "BIT_OP_PJ", "BIT_SERIAL_MODES",
    "COMPRESSIONS", "DATAFLOWS", "HOROWITZ_45NM", "MAC_KINDS", "SYSTOLIC_DATAFLOWS", "VECTOR_OPS", "VectorConfig",
    "OPTIMIZERS", "UpdateConfig", "TensorDashConfig",
    "AreaTable", "QuantizerConfig", "ReductionConfig", "area_breakdown_um2", "area_mm2", "dense_equal_area_variant", "dense_systolic_variant",
    "equal_area_shape",
    "leakage_mw", "systolic_shape",
    "Arch", "ArchError", "EnergyTable", "MemoryConfig", "PEArray", "PEConfig", "ZeroSkip",
    "apply_overrides", "arch_from_dict", "dense_gated_variant", "dense_variant", "load_arch",
    "parse_overrides", "resolve_arch_path", "shipped_arch_names",
]
